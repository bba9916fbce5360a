"""Recovery journeys' URLs (namespace "recovery"), included at the site root by portal.urls."""

from django.urls import path

from recovery.landing import TokenLandingView
from recovery.views import activation, self_serve

app_name = "recovery"

urlpatterns = [
    # Activation (the welcome email's link): the fixed paths before the token pattern.
    path(
        "activate/set-password/",
        activation.ActivationSetPasswordView.as_view(),
        name="activation_set_password",
    ),
    path("activate/done/", activation.ActivationDoneView.as_view(), name="activation_done"),
    path(
        "activate/<str:token>/",
        TokenLandingView.as_view(
            purpose="activation", redirect_url_name="recovery:activation_set_password"
        ),
        name="activation",
    ),
    # Self Serve: confirming a recovery email (the link in the confirmation email).
    path(
        "portal/account/confirm-email/",
        self_serve.ConfirmEmailView.as_view(),
        name="self_serve_confirm_email",
    ),
    path(
        "portal/account/confirm-email/<str:token>/",
        self_serve.ConfirmEmailLandingView.as_view(),
        name="self_serve_confirm_email_landing",
    ),
]
