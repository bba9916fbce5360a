"""/admin/ behind the staff sign-in: the same password + code, nothing weaker.

protect_admin_site() turns Django's default site into django-otp's OTPAdminSite (has_permission
also requires a session verified by a second factor) and replaces its own login page with a
redirect to the staff sign-in, so the admin never offers a password form of its own (and
django-otp's admin form, which would check backup codes as typed, is never used: see
recovery.staff.otp).
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django_otp.admin import OTPAdminSite


class StaffOTPAdminSite(OTPAdminSite):
    def login(self, request, extra_context=None):
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        url = reverse("staff:login") + "?" + urlencode({REDIRECT_FIELD_NAME: next_url})
        response = HttpResponseRedirect(url)
        add_never_cache_headers(response)
        return response


def protect_admin_site():
    """Make django.contrib.admin.site require the staff password + code (idempotent)."""
    admin.site.__class__ = StaffOTPAdminSite
