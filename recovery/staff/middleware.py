"""Staff sessions end after STAFF_IDLE_TIMEOUT_SECONDS without a request (SPEC §6.6).

Placed after django_otp's OTPMiddleware. For a staff account's session (signed in with the
password, with or without the second factor) the time of the last request is kept in the
session; a request after more than the timeout flushes the session (a new key, nothing kept)
and goes to the staff sign-in, where both the password and the code are asked again. The stamp
is rewritten at most once a minute, so a busy console does not write its session row on every
request; a session can therefore end up to a minute early, never late.
"""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from recovery.staff_access import is_staff_user

SESSION_KEY = "staff.last_seen"
STAMP_EVERY_SECONDS = 60


def mark_active(request):
    """Start (or restart) the idle clock: called at each staff sign-in step."""
    request.session[SESSION_KEY] = int(time.time())


class StaffIdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and is_staff_user(user):
            now = int(time.time())
            last_seen = request.session.get(SESSION_KEY)
            timeout = int(settings.STAFF_IDLE_TIMEOUT_SECONDS)
            if not isinstance(last_seen, int):
                # A staff session opened elsewhere (the portal's own sign-in): its clock starts
                # now, at its first request.
                last_seen = now
                request.session[SESSION_KEY] = now
            if now - last_seen > timeout:
                logout(request)  # flushes the session and rotates its key
                if request.path_info == reverse("staff:login"):
                    return self.get_response(request)
                response = redirect_to_login(request.get_full_path(), reverse("staff:login"))
                add_never_cache_headers(response)
                return response
            if now - last_seen >= STAMP_EVERY_SECONDS:
                request.session[SESSION_KEY] = now
        return self.get_response(request)
