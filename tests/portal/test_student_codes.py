"""The `codes` policy (SPEC §6.4): staff-issued one-time codes and the /login/code/ page."""

import datetime as dt
import math
import re

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from portal.student_codes import issue_student_code
from recovery import tokens
from recovery.models import AuditEvent, IssuedToken
from tests.portal.login_helpers import (
    DEFAULT,
    clean_login_counters,  # noqa: F401 (fixture)
    make_parent,
    make_student,
    sign_in,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("clean_login_counters")

CODE_PAGE = "/login/code/"
NEW_PASSWORD = "seven purple kettles sing"
REFUSED = "That username and code do not go together"
CODE_SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


@pytest.fixture
def codes_policy(settings):
    settings.STUDENT_INITIAL_PASSWORD = "codes"


@pytest.fixture
def staff(db):
    return make_parent("staff.one", role="staff", is_staff=True)


@pytest.fixture
def student(db):
    return make_student()


def redeem(client, username, code, password=NEW_PASSWORD, *, again=None, ip="203.0.113.7"):
    return client.post(
        CODE_PAGE,
        {
            "username": username,
            "code": code,
            "new_password1": password,
            "new_password2": again or password,
        },
        REMOTE_ADDR=ip,
    )


def errors(response):
    form = response.context["form"]
    return " ".join(str(e) for e in form.non_field_errors()), form.errors


def test_the_login_page_links_to_the_code_page(client, db):
    assert reverse("student_code") == CODE_PAGE
    assert f'href="{CODE_PAGE}"' in client.get(reverse("login")).content.decode()


def test_a_code_is_random_printable_and_stored_only_hashed(student, staff):
    codes = {issue_student_code(student_user=student, staff_user=staff) for _ in range(20)}
    assert len(codes) == 20 and all(CODE_SHAPE.match(code) for code in codes)
    assert 12 * math.log2(len(tokens.CODE_ALPHABET)) >= 60
    stored = " ".join(IssuedToken.objects.values_list("token_id_hash", flat=True))
    assert not any(code.replace("-", "") in stored for code in codes)
    # Each new code revoked the one before.
    assert IssuedToken.objects.filter(purpose="staff_code", revoked_at__isnull=True).count() == 1
    event = AuditEvent.objects.filter(action="student_code.issued").first()
    assert (event.actor_id, event.subject_id) == (staff.pk, student.pk)


def test_codes_are_only_for_active_students_and_only_from_staff(student, staff, db):
    parent = make_parent("parent.one")
    with pytest.raises(ValueError):
        issue_student_code(student_user=parent, staff_user=staff)
    with pytest.raises(PermissionDenied):
        issue_student_code(student_user=student, staff_user=parent)
    student.is_active = False
    student.save()
    with pytest.raises(ValueError):
        issue_student_code(student_user=student, staff_user=staff)
    assert not IssuedToken.objects.exists()


def test_the_codes_policy_end_to_end(client, codes_policy, student, staff):
    # Under "codes" the default never works, even fresh.
    assert sign_in(client, student.username, DEFAULT).status_code == 200
    assert not signed_in(client)
    code = issue_student_code(student_user=student, staff_user=staff)
    page = client.get(CODE_PAGE).content.decode()
    for field in ("username", "code", "new_password1", "new_password2"):
        assert f'name="{field}"' in page
    # Typed loosely: lower case, spaces instead of dashes.
    response = redeem(client, student.username, code.lower().replace("-", " "))
    assert response.status_code == 302 and response.url == reverse("login")
    assert not signed_in(client)  # no automatic sign-in (G2)
    student.refresh_from_db()
    assert not student.must_change_password and not student.default_password_active
    assert sign_in(client, student.username, NEW_PASSWORD).status_code == 302
    assert client.get(reverse("portal:home")).status_code == 200
    client.post(reverse("logout"))
    # Single use.
    response = redeem(client, student.username, code, "another long passphrase here")
    assert REFUSED in errors(response)[0]
    assert sign_in(client, student.username, NEW_PASSWORD).status_code == 302


def test_every_refusal_reads_the_same(client, student, staff, db):
    code = issue_student_code(student_user=student, staff_user=staff)
    other = make_student("7777777", given="Bao", family="Tran")
    other_code = issue_student_code(student_user=other, staff_user=staff)
    cases = [
        ("unknown username", "1234567", code),
        ("wrong code", student.username, "ABCD-EFGH-JKMN"),
        ("someone else's code", student.username, other_code),
        ("garbage", student.username, "not a code at all!"),
    ]
    for case, username, typed in cases:
        response = redeem(client, username, typed, ip=f"198.51.100.{len(case)}")
        assert response.status_code == 200, case
        non_field, field_errors = errors(response)
        assert non_field.startswith(REFUSED), case
        assert set(field_errors) == {"__all__"}, case  # the password is not judged
    student.refresh_from_db()
    assert student.default_password_active  # nothing changed


def test_an_expired_code_is_refused(client, student, staff, settings):
    settings.STAFF_CODE_MAX_AGE = 3600
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        code = issue_student_code(student_user=student, staff_user=staff)
        clock.shift(3601)
        assert REFUSED in errors(redeem(client, student.username, code))[0]


def test_a_weak_password_keeps_the_code_usable(client, student, staff):
    code = issue_student_code(student_user=student, staff_user=staff)
    response = redeem(client, student.username, code, "AG030912")  # the default itself
    assert response.context["form"].errors["new_password1"]
    mismatch = redeem(client, student.username, code, NEW_PASSWORD, again="something else")
    assert mismatch.context["form"].errors["new_password2"]
    assert redeem(client, student.username, code).status_code == 302


def test_a_code_also_helps_a_student_whose_default_expired(client, student, staff):
    student.default_password_since -= dt.timedelta(days=365)
    student.save()
    assert sign_in(client, student.username, DEFAULT).status_code == 200
    code = issue_student_code(student_user=student, staff_user=staff)
    assert redeem(client, student.username, code).status_code == 302
    assert sign_in(client, student.username, NEW_PASSWORD).status_code == 302


def test_the_code_page_is_rate_limited_per_username(client, student, settings):
    settings.RATELIMIT_STUDENT_CODE_PER_USERNAME = "3/h"
    for n in range(3):
        redeem(client, student.username, "ABCD-EFGH-JKMN", ip=f"198.51.100.{n}")
    non_field, _ = errors(redeem(client, student.username, "ABCD-EFGH-JKMN", ip="198.51.100.9"))
    assert non_field.startswith("Too many attempts. Please try again in")
    # Unknown names are throttled the same way.
    for n in range(3):
        redeem(client, "1234567", "ABCD-EFGH-JKMN", ip=f"198.51.100.{n}")
    assert errors(redeem(client, "1234567", "ABCD-EFGH-JKMN", ip="198.51.100.9"))[0] == non_field


def test_the_code_page_is_rate_limited_per_ip(client, student, settings, staff):
    settings.RATELIMIT_STUDENT_CODE_PER_IP = "3/h"
    for n in range(3):
        redeem(client, f"12345{n}0", "ABCD-EFGH-JKMN", ip="198.51.100.1")
    code = issue_student_code(student_user=student, staff_user=staff)
    response = redeem(client, student.username, code, ip="198.51.100.1")
    assert errors(response)[0].startswith("Too many attempts.")
    student.refresh_from_db()
    assert student.default_password_active  # the code was not even looked at
