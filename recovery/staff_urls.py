"""The staff console's URLs (namespace "staff"), included at /staff/ by portal.urls.

Every view here uses recovery.staff_access (StaffRequiredMixin or SupervisorRequiredMixin),
except the sign-in pages themselves.
"""

from django.urls import path

from recovery.views import staff_auth, staff_team

app_name = "staff"

urlpatterns = [
    path("login/", staff_auth.StaffLoginView.as_view(), name="login"),
    path("login/code/", staff_auth.StaffCodeView.as_view(), name="login_code"),
    path("logout/", staff_auth.StaffLogoutView.as_view(), name="logout"),
    path("team/", staff_team.TeamView.as_view(), name="team"),
    path(
        "team/<int:user_id>/authenticator/",
        staff_team.ReissueAuthenticatorView.as_view(),
        name="team_reissue_authenticator",
    ),
    path(
        "team/<int:user_id>/password-reset/",
        staff_team.SendPasswordResetView.as_view(),
        name="team_password_reset",
    ),
]
