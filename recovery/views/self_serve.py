"""Self Serve confirmation pages: the emailed link, then a POST button (flows.self_serve).

    /portal/account/confirm-email/<token>/  TokenLandingView: token into the session, 302
    /portal/account/confirm-email/          "Confirm this email address" and a button

No sign-in is needed (the link is often opened on a phone), and only the POST confirms: a mail
scanner that opens the link, even several times, changes nothing.
"""

from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from recovery import tokens
from recovery.flows.self_serve import PURPOSE, confirm_recovery_email, confirmation_address
from recovery.landing import TokenLandingView, forget_session_token, session_token


class ConfirmEmailLandingView(TokenLandingView):
    purpose = PURPOSE
    redirect_url_name = "recovery:self_serve_confirm_email"


@method_decorator(never_cache, name="dispatch")
class ConfirmEmailView(TemplateView):
    template_name = "recovery/self_serve/confirm_email.html"
    done_template_name = "recovery/self_serve/confirm_email_done.html"
    invalid_template_name = "recovery/self_serve/confirm_email_invalid.html"

    def get(self, request, *args, **kwargs):
        token = session_token(request, PURPOSE)
        try:
            address = confirmation_address(token=token)
        except tokens.TokenError:
            return self.invalid()
        return self.render_to_response(self.get_context_data(address=address))

    def post(self, request, *args, **kwargs):
        token = session_token(request, PURPOSE)
        try:
            user = confirm_recovery_email(token=token, request=request)
        except tokens.TokenError:
            return self.invalid()
        forget_session_token(request, PURPOSE)
        return self.response_class(
            request=request,
            template=[self.done_template_name],
            context=self.get_context_data(address=user.recovery_email),
        )

    def invalid(self):
        forget_session_token(self.request, PURPOSE)
        return self.response_class(
            request=self.request,
            template=[self.invalid_template_name],
            context=self.get_context_data(),
            status=200 if self.request.method in ("GET", "HEAD") else 400,
        )
