"""Writes to portal accounts, one keyword-only function per job (reads are in portal.selectors)."""

from django.contrib.auth import update_session_auth_hash
from django.db import transaction
from django.utils import timezone

from portal.login_throttle import clear_account
from portal.passwords import normalise_password
from portal.selectors import notice_address
from recovery.audit import record_event
from recovery.emails import queue_email
from recovery.tokens import revoke_tokens

PASSWORD_CHANGE_REASONS = ("changed", "reset", "activation", "first_login", "staff")

# Browser and system names for the "password changed" notice, most specific first. Only these
# fixed words reach the email: a User-Agent is typed by whoever sends the request.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("Macintosh", "Mac"),
    ("Linux", "Linux"),
)


def describe_browser(user_agent):
    """ "Firefox, Windows" from a User-Agent; "" when it names nothing we know."""
    user_agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    return ", ".join(part for part in (browser, system) if part)


def user_set_password(*, user, password, request=None, reason="changed"):
    """Set `user`'s password and do everything a password change entails (SPEC §6.5).

    In one transaction: the new hash (Argon2, of the NFKC form: portal.passwords), the
    password_changed_at stamp, the forced-change and student-default flags cleared, the login
    throttle cleared, every outstanding link revoked, the "password changed" notice queued to
    notice_address(user) and an audit event. The new hash ends every other session at once
    (Django checks each session's hash of the password); if `request` is the user's own signed-in
    request, that session is kept (update_session_auth_hash). Validation is the caller's job
    (the forms run AUTH_PASSWORD_VALIDATORS with the user).
    """
    if reason not in PASSWORD_CHANGE_REASONS:
        raise ValueError(f"unknown password change reason {reason!r}")
    # Decide before the hash changes: request.user is lazy, and read after the change it would
    # fail Django's session-hash check and sign this request out too.
    request_user = getattr(request, "user", None)
    own_request = bool(
        request_user is not None and request_user.is_authenticated and request_user.pk == user.pk
    )
    now = timezone.now()
    with transaction.atomic():
        user.set_password(normalise_password(password))
        user.password_changed_at = now
        user.must_change_password = False
        user.default_password_active = False
        user.failed_login_count = 0
        user.login_locked_at = None
        user.save(
            update_fields=[
                "password",
                "password_changed_at",
                "must_change_password",
                "default_password_active",
                "failed_login_count",
                "login_locked_at",
            ]
        )
        revoke_tokens(user=user)
        address = notice_address(user)
        if address:
            user_agent = request.META.get("HTTP_USER_AGENT", "") if request is not None else ""
            queue_email(
                kind="password_changed",
                to_address=address,
                user=user,
                context={"changed_at": now, "browser": describe_browser(user_agent)},
            )
        record_event(
            action=f"password.{reason}",
            request=request,
            subject=user,
            detail={"notice_sent": bool(address)},
        )
        # The throttle's own clearing (its Redis counters too) once the new password is in force.
        transaction.on_commit(lambda: clear_account(user))
    if own_request:
        update_session_auth_hash(request, user)
