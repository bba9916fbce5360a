"""The page behind an emailed link's landing: ask for a new password, spend the link on POST.

Activation and password reset differ only in which flow reads and spends the token; this base
holds the rest (Django's PasswordResetConfirmView shape, token taken from the session).
"""

from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from recovery import tokens
from recovery.forms import SetPasswordForm
from recovery.landing import forget_session_token, session_token


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class TokenSetPasswordView(FormView):
    """Subclasses set `purpose`, the templates and `success_url`, and the two flow hooks."""

    form_class = SetPasswordForm
    purpose = None
    invalid_template_name = None

    def token_user(self, token):
        """The account the session's token may set a password for, or None."""
        raise NotImplementedError

    def complete(self, *, token, password):
        """Spend the token and set the password (raises tokens.TokenError if it lost a race)."""
        raise NotImplementedError

    def unusable_link_posted(self):
        """Hook: a POST arrived with no usable link (for the audit trail)."""

    def dispatch(self, request, *args, **kwargs):
        self.token = session_token(request, self.purpose)
        self.user = self.token_user(self.token)
        if self.user is None:
            if request.method == "POST":
                self.unusable_link_posted()
            return self.link_invalid()
        return super().dispatch(request, *args, **kwargs)

    def link_invalid(self):
        forget_session_token(self.request, self.purpose)
        status = 200 if self.request.method in ("GET", "HEAD") else 400
        return render(self.request, self.invalid_template_name, status=status)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.user}

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "account_username": self.user.get_username()}

    def form_valid(self, form):
        try:
            self.complete(token=self.token, password=form.new_password)
        except tokens.TokenError:
            return self.link_invalid()
        forget_session_token(self.request, self.purpose)
        return redirect(self.get_success_url())
