"""Recovery journeys' URLs (namespace "recovery"), included at the site root by portal.urls."""

from django.urls import path

from recovery.landing import TokenLandingView
from recovery.views import activation, password_reset, self_serve
from recovery.views.help import HelpView
from recovery.views.login_help import LoginHelpView
from recovery.views.manual_request import ManualRequestSentView, ManualRequestView
from recovery.views.username_reminder import UsernameReminderSentView, UsernameReminderView

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
    # Forgot password: the request (one sent page for every input), then the emailed link.
    path(
        "help/forgot-password/", password_reset.PasswordResetView.as_view(), name="password_reset"
    ),
    path(
        "help/forgot-password/sent/",
        password_reset.PasswordResetSentView.as_view(),
        name="password_reset_sent",
    ),
    path(
        "help/reset/set-password/",
        password_reset.PasswordResetSetPasswordView.as_view(),
        name="password_reset_set_password",
    ),
    path(
        "help/reset/done/",
        password_reset.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "help/reset/<str:token>/",
        TokenLandingView.as_view(
            purpose="reset", redirect_url_name="recovery:password_reset_set_password"
        ),
        name="password_reset_landing",
    ),
    # Help: the three choices, the triage of sign-in problems, and forgot username.
    path("help/", HelpView.as_view(), name="help"),
    path("help/problems/", LoginHelpView.as_view(), name="login_help"),
    path("help/forgot-username/", UsernameReminderView.as_view(), name="username_reminder"),
    # The manual request form: one sent page whatever was typed.
    path("help/request/", ManualRequestView.as_view(), name="manual_request"),
    path("help/request/sent/", ManualRequestSentView.as_view(), name="manual_request_sent"),
    path(
        "help/forgot-username/sent/",
        UsernameReminderSentView.as_view(),
        name="username_reminder_sent",
    ),
]
