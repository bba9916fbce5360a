"""Staff accounts and signed-in staff clients for the staff console's tests.

    member = make_staff("sam.staff", schools=[school])
    sign_in_staff(client, member)          # password, then a backup code: a verified session
    supervisor = make_staff("sue.super", supervisor=True)

Other helpers' tests (queue, actions, audit...) may use these too.
"""

import re
from html import unescape

from django.contrib.auth import get_user_model
from django.urls import reverse
from django_otp.oath import totp

from recovery.models import StaffProfile
from recovery.staff import otp

STAFF_PASSWORD = "staff-console correct horse 42"
_ERRORS = re.compile(r'<div id="login-errors"[^>]*>(.*?)</div>', re.S)
_FIELD_ERROR = re.compile(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', re.S)


def make_staff(username="sam.staff", *, supervisor=False, schools=(), email=None, **fields):
    """A staff account with a profile and a confirmed authenticator (as createstaff makes)."""
    user = get_user_model().objects.create_user(
        username=username,
        password=STAFF_PASSWORD,
        email=email if email is not None else f"{username}@staff.example.org",
        role=get_user_model().Role.STAFF,
        is_staff=True,
        **fields,
    )
    profile = StaffProfile.objects.create(user=user, is_supervisor=supervisor)
    profile.schools.set(schools)
    issued = otp.issue_authenticator(user=user, confirmed=True)
    user.backup_codes = list(issued.backup_codes)  # handy for tests; never stored like this
    return user


def current_code(user, *, offset_steps=0):
    device = otp.authenticator_device(user)
    return f"{totp(device.bin_key, drift=offset_steps):06d}"


def post_password(client, username, password=STAFF_PASSWORD, *, next_url=None, **extra):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("staff:login"), data, **extra)


def post_code(client, code, *, next_url=None, **extra):
    data = {"otp_token": code}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("staff:login_code"), data, **extra)


def sign_in_staff(client, user):
    """Sign `user` in to the console (password, then one of their backup codes)."""
    response = post_password(client, user.get_username())
    assert response.status_code == 302, response.content.decode()[:500]
    code = user.backup_codes.pop()
    response = post_code(client, code)
    assert response.status_code == 302, response.content.decode()[:500]
    return client


def page_errors(response):
    """The sign-in pages' error text, whitespace-collapsed ("" when none)."""
    body = response.content.decode()
    found = _ERRORS.findall(body) + _FIELD_ERROR.findall(body)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", " ".join(found))).split())
