"""The portal's authentication backend: Django's ModelBackend plus the student default password.

- Ordinary accounts: the Argon2 hash, on the NFKC form of what was typed (portal.passwords).
- A student still on the district default (SPEC §2.5, §6.4) while STUDENT_INITIAL_PASSWORD is
  "default" and the default is younger than STUDENT_DEFAULT_PASSWORD_DAYS: the typed password
  is compared, in constant time, with the default computed from the SIS record at this moment
  (nothing is hashed per student at provisioning). Success marks must_change_password, so
  ForcePasswordChangeMiddleware sends the student to the change page before anything else.
- Every path runs the password hasher exactly once, whether the name is unknown, the account
  has an unusable password (a parent not yet activated, a student on the default), is inactive
  or locked, or the password is right: the time taken does not say which (checklist J2,
  Django CVE-2024-39329).
- Inactive accounts never authenticate; ModelBackend.get_user also drops their sessions on the
  next request (a locked account keeps its sessions: a guesser must not sign the owner out).
- The login throttle (portal.login_throttle) is applied here, so no sign-in form can bypass it.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django.utils.crypto import constant_time_compare, get_random_string
from django.views.decorators.debug import sensitive_variables

from portal import login_throttle
from portal.passwords import normalise_password
from portal.student_passwords import default_password_for

UserModel = get_user_model()


def default_policy_active():
    return getattr(settings, "STUDENT_INITIAL_PASSWORD", "default") == "default"


def default_password_expires_at(user):
    """When `user`'s default stops working (None: it has none that can work)."""
    if not user.default_password_active or user.default_password_since is None:
        return None
    days = int(getattr(settings, "STUDENT_DEFAULT_PASSWORD_DAYS", 60))
    return user.default_password_since + timedelta(days=days)


def default_password_usable(user):
    """Is `user` a student whose SIS-derived default may be used to sign in right now?"""
    if user.role != UserModel.Role.STUDENT or user.student_id is None:
        return False
    if not default_policy_active():
        return False
    expires_at = default_password_expires_at(user)
    return expires_at is not None and timezone.now() < expires_at


def _run_hasher_once():
    # What verify_password() does for an unusable hash: one full hash of a random string.
    make_password(get_random_string(40))


class PortalBackend(ModelBackend):
    """Every sign-in form (the portal's, the admin's, the staff console's) passes through here,
    so the login throttle is applied here too when there is a request: a throttled attempt is
    refused before the password is checked, and the verdict is left on the request for the
    form's reply (portal.login_throttle.attempt_outcome)."""

    @sensitive_variables("password", "default")
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(UserModel.USERNAME_FIELD)
        if username is None or password is None:
            return None
        password = normalise_password(password)
        try:
            user = UserModel._default_manager.get_by_natural_key(username)
        except UserModel.DoesNotExist:
            user = None
        if request is not None and not login_throttle.admit(
            request=request, username=username, user=user
        ):
            return None

        if user is None:
            _run_hasher_once()
            correct = False
        elif default_password_usable(user):
            # The account's own hash is unusable while on the default; check_password on it
            # runs the hasher once, as for everyone else.
            user.check_password(password)
            default = default_password_for(user.student)
            correct = default is not None and constant_time_compare(password, default)
        else:
            correct = user.check_password(password)  # the hasher runs once, usable or not

        if not correct or not self.user_can_authenticate(user) or user.login_locked_at:
            if request is not None:
                login_throttle.fail(request=request, username=username, user=user)
            return None
        if request is not None:
            login_throttle.succeed(request=request, username=username, user=user)
        if default_password_usable(user) and not user.must_change_password:
            user.must_change_password = True
            user.save(update_fields=["must_change_password"])
        return user
