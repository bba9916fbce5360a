"""Activation pages: /activate/<token>/ (recovery.landing) → set-password → done."""

from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from recovery import tokens
from recovery.flows import activation
from recovery.forms import SetPasswordForm
from recovery.landing import forget_session_token, session_token

PURPOSE = activation.PURPOSE


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class ActivationSetPasswordView(FormView):
    """Ask for a new password; the POST activates (Django's PasswordResetConfirmView shape)."""

    form_class = SetPasswordForm
    template_name = "recovery/activation/set_password.html"
    invalid_template_name = "recovery/activation/invalid.html"
    success_url = reverse_lazy("recovery:activation_done")

    def dispatch(self, request, *args, **kwargs):
        self.token = session_token(request, PURPOSE)
        self.user = activation.activation_user(token=self.token)
        if self.user is None:
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
            activation.complete_activation(
                token=self.token, password=form.new_password, request=self.request
            )
        except tokens.TokenError:
            return self.link_invalid()
        forget_session_token(self.request, PURPOSE)
        return redirect(self.get_success_url())


@method_decorator(never_cache, name="dispatch")
class ActivationDoneView(TemplateView):
    template_name = "recovery/activation/done.html"
