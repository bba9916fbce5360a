"""The staff console's URLs (namespace "staff"), included at /staff/ by portal.urls.

Every view here uses recovery.staff_access (StaffRequiredMixin or SupervisorRequiredMixin),
except the sign-in pages themselves.
"""

from django.urls import path

from recovery.views import (
    staff_audit,
    staff_auth,
    staff_contact_changes,
    staff_dashboard,
    staff_guardians,
    staff_requests,
    staff_team,
)

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
    # The queue of manual requests, the request page and its actions (Q).
    path("", staff_requests.StaffHomeView.as_view(), name="home"),
    path("requests/", staff_requests.QueueView.as_view(), name="requests"),
    path(
        "requests/<str:reference>/",
        staff_requests.RequestDetailView.as_view(),
        name="request_detail",
    ),
    path(
        "requests/<str:reference>/act/<slug:action>/",
        staff_requests.RequestActionView.as_view(),
        name="request_action",
    ),
    path(
        "requests/<str:reference>/code/",
        staff_requests.PrintableCodeView.as_view(),
        name="request_code",
    ),
    # Guardians without accounts, contact changes, the audit log, the dashboard (O).
    path("guardians/", staff_guardians.GuardianListView.as_view(), name="guardians"),
    path(
        "guardians/<str:sourced_id>/",
        staff_guardians.GuardianDetailView.as_view(),
        name="guardian",
    ),
    path(
        "contact-changes/",
        staff_contact_changes.ContactChangeListView.as_view(),
        name="contact_changes",
    ),
    path(
        "contact-changes/<int:pk>/",
        staff_contact_changes.ContactChangeDetailView.as_view(),
        name="contact_change",
    ),
    path("audit/", staff_audit.AuditLogView.as_view(), name="audit"),
    path("audit/export.csv", staff_audit.AuditExportView.as_view(), name="audit_export"),
    path("dashboard/", staff_dashboard.DashboardView.as_view(), name="dashboard"),
]
