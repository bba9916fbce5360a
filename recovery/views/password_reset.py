"""Forgot password pages.

/help/forgot-password/ (username) → 303 → /help/forgot-password/sent/ (one page for every input)
/help/reset/<token>/ (recovery.landing) → /help/reset/set-password/ → /help/reset/done/
"""

from django import forms
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from recovery import tokens
from recovery.flows import password_reset
from recovery.forms import SetPasswordForm
from recovery.help_requests import HelpRequestThrottled
from recovery.landing import forget_session_token, session_token
from recovery.views.rate_limited import rate_limited_response

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


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class PasswordResetSetPasswordView(FormView):
    """Ask for a new password; the POST spends the link (PasswordResetConfirmView's shape)."""

    form_class = SetPasswordForm
    template_name = "recovery/password_reset/set_password.html"
    invalid_template_name = "recovery/password_reset/invalid.html"
    success_url = reverse_lazy("recovery:password_reset_done")

    def dispatch(self, request, *args, **kwargs):
        self.token = session_token(request, PURPOSE)
        self.user = password_reset.reset_user(token=self.token)
        if self.user is None:
            if request.method == "POST":
                password_reset.record_reset_refused(request=request, reason="unusable_link")
            return self.link_invalid()
        return super().dispatch(request, *args, **kwargs)

    def link_invalid(self):
        forget_session_token(self.request, PURPOSE)
        status = 200 if self.request.method in ("GET", "HEAD") else 400
        return render(self.request, self.invalid_template_name, status=status)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.user}

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "account_username": self.user.get_username()}

    def form_valid(self, form):
        try:
            password_reset.complete_password_reset(
                token=self.token, password=form.new_password, request=self.request
            )
        except tokens.TokenError:
            return self.link_invalid()
        forget_session_token(self.request, PURPOSE)
        return redirect(self.get_success_url())


@method_decorator(never_cache, name="dispatch")
class PasswordResetDoneView(TemplateView):
    template_name = "recovery/password_reset/done.html"
