"""Students on the district default (SPEC §2.5, §6.4; checklist K1-K3): checked against the SIS
record at sign-in, forced to change it before anything else, refused as the new password, and
expired when unused."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.portal.login_helpers import (
    DEFAULT,
    clean_login_counters,  # noqa: F401 (fixture)
    login_error,
    make_student,
    sign_in,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("clean_login_counters")

CHANGE = "/login/change-password/"
NEW_PASSWORD = "seven purple kettles sing"


@pytest.fixture
def student(db):
    return make_student()


def test_the_change_page_is_where_the_contract_says():
    assert reverse("first_login_change") == CHANGE


def test_the_default_signs_a_student_in_and_forces_a_change(client, student):
    response = sign_in(client, student.username, DEFAULT)
    assert response.status_code == 302 and signed_in(client)
    student.refresh_from_db()
    assert student.must_change_password
    assert client.get(response.url).url == CHANGE


def test_the_default_is_checked_against_the_sis_record_now(client, student):
    # Nothing was stored at provisioning: a corrected birth date in the SIS changes the default.
    student.student.birth_date = dt.date(2012, 4, 15)
    student.student.save()
    assert not signed_in(client) and sign_in(client, student.username, DEFAULT).status_code == 200
    assert sign_in(client, student.username, "AG041512").status_code == 302


def test_the_default_is_case_sensitive_and_exact(client, student):
    for typed in ("ag030912", "AG030912 ", "AG03091", "AG030912!"):
        assert sign_in(client, student.username, typed).status_code == 200, typed
        assert not signed_in(client)


@pytest.mark.parametrize(
    "path",
    [
        "/portal/",
        "/portal/account/",
        "/portal/contact-changes/",
        "/admin/",
        "/help/",
        "/login/",
        "/login/code/",
        "/no-such-page/",
        "/portal/?next=/admin/",
    ],
)
def test_every_other_url_sends_a_student_on_the_default_to_the_change_page(client, student, path):
    sign_in(client, student.username, DEFAULT)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == CHANGE
    assert client.post(path, {}).status_code in (302, 403)  # 403: a CSRF-less POST, refused


def test_the_change_page_sign_out_language_and_static_files_stay_reachable(client, student):
    sign_in(client, student.username, DEFAULT)
    page = client.get(CHANGE)
    assert page.status_code == 200
    assert 'name="new_password1"' in page.content.decode()
    assert 'autocomplete="new-password"' in page.content.decode()
    assert client.post(reverse("set_language"), {"language": "es", "next": CHANGE}).url == CHANGE
    assert client.get("/static/css/portal.css").status_code != 302
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert not signed_in(client)


def _change(client, password, again=None):
    return client.post(CHANGE, {"new_password1": password, "new_password2": again or password})


@pytest.mark.parametrize(
    "refused",
    [DEFAULT, "ag030912", "AG030912!", "my birthday 03/09/2012", "ana garcia rocks", "4815162abc"],
)
def test_the_default_and_directory_facts_are_refused_as_the_new_password(client, student, refused):
    sign_in(client, student.username, DEFAULT)
    response = _change(client, refused)
    assert response.status_code == 200
    assert response.context["form"].errors["new_password1"]
    student.refresh_from_db()
    assert student.default_password_active and student.must_change_password


def test_after_the_change_the_default_never_works_again(client, student):
    sign_in(client, student.username, DEFAULT)
    session_key = client.session.session_key
    response = _change(client, NEW_PASSWORD)
    assert response.status_code == 302 and response.url == reverse("portal:home")
    # The student stays signed in on this browser, and reaches the portal now.
    assert client.session.session_key == session_key or signed_in(client)
    assert client.get(reverse("portal:home")).status_code == 200
    student.refresh_from_db()
    assert not student.must_change_password and not student.default_password_active
    client.post(reverse("logout"))
    assert sign_in(client, student.username, DEFAULT).status_code == 200
    assert not signed_in(client)
    assert sign_in(client, student.username, NEW_PASSWORD).status_code == 302
    # ...and the page is only for those who must change: it now leads home.
    assert client.get(CHANGE).url == reverse("portal:home")


def test_a_mismatched_repeat_is_refused(client, student):
    sign_in(client, student.username, DEFAULT)
    response = _change(client, NEW_PASSWORD, again=NEW_PASSWORD + "x")
    assert response.context["form"].errors["new_password2"]


def test_the_change_page_needs_a_signed_in_user(client, db):
    response = client.get(CHANGE)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


# --- expiry of unused defaults (K3) --------------------------------------------------------------


@pytest.mark.parametrize(("days", "works"), [(59, True), (60, False), (400, False)])
def test_an_unused_default_expires(client, db, settings, days, works):
    settings.STUDENT_DEFAULT_PASSWORD_DAYS = 60
    start = dt.datetime(2026, 2, 2, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        student = make_student(since=timezone.now())
        clock.shift(dt.timedelta(days=days))
        response = sign_in(client, student.username, DEFAULT)
        assert signed_in(client) is works
    if not works:
        # The same words as any wrong password (J1); staff then issue a code.
        assert login_error(response) == login_error(sign_in(client, "9999999", DEFAULT))


def test_the_expiry_is_a_setting(client, db, settings):
    settings.STUDENT_DEFAULT_PASSWORD_DAYS = 14
    make_student(since=timezone.now() - dt.timedelta(days=15))
    assert sign_in(client, "4815162", DEFAULT).status_code == 200


def test_an_inactive_student_cannot_use_the_default(client, student):
    student.is_active = False
    student.save()
    assert sign_in(client, student.username, DEFAULT).status_code == 200
    assert not signed_in(client)


def test_a_student_session_ends_when_the_account_is_disabled(client, student):
    sign_in(client, student.username, DEFAULT)
    student.is_active = False
    student.save()
    # The backend refuses inactive users on every request: the session is anonymous now.
    for path in (CHANGE, reverse("portal:home")):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), path
