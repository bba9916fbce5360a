"""Activation pages: /activate/<token>/ (recovery.landing) → set-password → done."""

from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from recovery.flows import activation
from recovery.views.token_set_password import TokenSetPasswordView

PURPOSE = activation.PURPOSE


class ActivationSetPasswordView(TokenSetPasswordView):
    """Ask for a new password; the POST activates."""

    purpose = PURPOSE
    template_name = "recovery/activation/set_password.html"
    invalid_template_name = "recovery/activation/invalid.html"
    success_url = reverse_lazy("recovery:activation_done")

    def token_user(self, token):
        return activation.activation_user(token=token)

    def complete(self, *, token, password):
        activation.complete_activation(token=token, password=password, request=self.request)


@method_decorator(never_cache, name="dispatch")
class ActivationDoneView(TemplateView):
    template_name = "recovery/activation/done.html"
