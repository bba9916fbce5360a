"""Accounts and requests for the login journey's tests (tests/portal/test_login*.py)."""

import datetime as dt
import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from portal.models import Student
from portal.provisioning import unusable_password
from recovery import ratelimit

PASSWORD = "correct horse battery staple"
STUDENT_NUMBER = "4815162"
BIRTH_DATE = dt.date(2012, 3, 9)
DEFAULT = "AG030912"  # Ana Garcia, 2012-03-09 (SPEC §2.5)

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
_ALERT = re.compile(r'<div id="login-errors"[^>]*>(.*?)</div>', re.S)


def make_parent(username="parent.one", **fields):
    return get_user_model().objects.create_user(
        username=username, password=PASSWORD, first_name="Rosa", last_name="Nguyen", **fields
    )


def make_student(
    number=STUDENT_NUMBER,
    *,
    given="Ana",
    family="Garcia",
    birth_date=BIRTH_DATE,
    since=None,
    on_default=True,
):
    """A student account as provisioning leaves it: unusable password, on the default."""
    record = Student.objects.create(
        sourced_id=f"stu-{number}",
        student_number=number,
        given_name=given,
        family_name=family,
        birth_date=birth_date,
        grade="07",
    )
    return get_user_model().objects.create(
        username=number,
        password=unusable_password(),
        role=get_user_model().Role.STUDENT,
        student=record,
        first_name=given,
        last_name=family,
        provisioned_at=since or timezone.now(),
        must_change_password=True,
        default_password_active=on_default,
        default_password_since=(since or timezone.now()) if on_default else None,
    )


def sign_in(client, username, password, *, ip="203.0.113.7", **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip, **extra
    )


def page_without_csrf(response):
    return _CSRF.sub("", response.content.decode())


def login_error(response):
    """The text of the sign-in form's error box ("" when there is none)."""
    match = _ALERT.search(response.content.decode())
    if not match:
        return ""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def signed_in(client):
    return "_auth_user_id" in client.session


@pytest.fixture
def clean_login_counters():
    """Remove the login and code-page counters from Redis before and after a test."""
    client = ratelimit.redis_client()

    def wipe():
        for pattern in ("portal:rl:login.*", "portal:rl:student_code.*", "portal:login:*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)

    wipe()
    yield
    wipe()
