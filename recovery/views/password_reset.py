"""Forgot password pages.

/help/forgot-password/ (username) → 303 → /help/forgot-password/sent/ (one page for every input)
/help/reset/<token>/ (recovery.landing) → /help/reset/set-password/ → /help/reset/done/
"""

from django import forms
from django.http import HttpResponseRedirect
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic import FormView, TemplateView

from recovery.flows import password_reset
from recovery.help_requests import HelpRequestThrottled
from recovery.views.rate_limited import rate_limited_response
from recovery.views.token_set_password import TokenSetPasswordView

PURPOSE = password_reset.PURPOSE


class ForgotPasswordForm(forms.Form):
    # 320: an email address typed here is accepted too (handled as a username reminder).
    username = forms.CharField(
        label=_("Username"),
        max_length=320,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


@method_decorator([csrf_protect, never_cache], name="dispatch")
class PasswordResetView(FormView):
    """Ask for a username; every valid POST gets the same 303 to the same page."""

    form_class = ForgotPasswordForm
    template_name = "recovery/password_reset/form.html"
    success_url = reverse_lazy("recovery:password_reset_sent")
    http_method_names = ["get", "head", "post", "options"]

    def get_form_kwargs(self):
        # A GET never fills the form from the query string (?username=...): nothing is sent,
        # nothing is shown back (checklist E5).
        kwargs = super().get_form_kwargs()
        kwargs.pop("initial", None)
        return kwargs

    def form_valid(self, form):
        try:
            password_reset.request_password_reset(
                username=form.cleaned_data["username"], request=self.request
            )
        except HelpRequestThrottled as throttled:
            return rate_limited_response(self.request, retry_after=throttled.retry_after)
        response = HttpResponseRedirect(self.get_success_url())
        response.status_code = 303  # See Other: reloading the sent page never re-posts
        return response


@method_decorator(never_cache, name="dispatch")
class PasswordResetSentView(TemplateView):
    template_name = "recovery/password_reset/sent.html"


class PasswordResetSetPasswordView(TokenSetPasswordView):
    """Ask for a new password; the POST spends the reset link."""

    purpose = PURPOSE
    template_name = "recovery/password_reset/set_password.html"
    invalid_template_name = "recovery/password_reset/invalid.html"
    success_url = reverse_lazy("recovery:password_reset_done")

    def token_user(self, token):
        return password_reset.reset_user(token=token)

    def complete(self, *, token, password):
        password_reset.complete_password_reset(token=token, password=password, request=self.request)

    def unusable_link_posted(self):
        password_reset.record_reset_refused(request=self.request, reason="unusable_link")


@method_decorator(never_cache, name="dispatch")
class PasswordResetDoneView(TemplateView):
    template_name = "recovery/password_reset/done.html"
