from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal.views import (
    account,
    auth,
    contact_changes,
    dev_mail,
    first_login,
    health,
    home,
    language,
    student_code,
)
from recovery.staff.admin_site import protect_admin_site

protect_admin_site()

portal_patterns = (
    [
        path("", home.home, name="home"),
        path("account/", account.AccountView.as_view(), name="account"),
        path(
            "contact-changes/",
            contact_changes.ContactChangesView.as_view(),
            name="contact_changes",
        ),
    ],
    "portal",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:home"), name="root"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("login/change-password/", first_login.first_login_change, name="first_login_change"),
    path("login/code/", student_code.StudentCodeView.as_view(), name="student_code"),
    path("portal/", include(portal_patterns)),
    path("", include("recovery.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/", health.healthz),
    path("i18n/setlang/", language.set_language, name="set_language"),
    path("dev/mail/", dev_mail.message_list, name="dev_mail_list"),
    path(
        "dev/mail/<str:file_name>/<int:index>/",
        dev_mail.message_detail,
        name="dev_mail_detail",
    ),
    path(
        "dev/mail/<str:file_name>/<int:index>/html/",
        dev_mail.message_html,
        name="dev_mail_html",
    ),
    # The staff console (recovery.staff_urls); /admin/ needs the same password + code.
    path("staff/", include("recovery.staff_urls")),
    path("admin/", admin.site.urls),
]
