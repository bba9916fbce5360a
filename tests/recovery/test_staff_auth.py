"""Staff sign-in: password (staff only, throttled), then a TOTP or backup code; sessions."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import User
from recovery.models import AuditEvent
from recovery.staff import otp
from tests.portal.login_helpers import clean_login_counters, make_parent, make_student  # noqa: F401
from tests.recovery.staff_helpers import (
    STAFF_PASSWORD,
    current_code,
    make_staff,
    page_errors,
    post_code,
    post_password,
    sign_in_staff,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_login_counters")]

START = dt.datetime(2026, 3, 2, 9, 0, 5, tzinfo=dt.UTC)  # 5 s into a 30 s TOTP step
TEAM = "/staff/team/"


def _session_key(client):
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return cookie.value if cookie else None


def _verified(client):
    return DEVICE_ID_SESSION_KEY in client.session


# --- the password step -----------------------------------------------------------------------


def test_password_step_signs_in_unverified_and_sends_to_the_code_page(client):
    member = make_staff(supervisor=True)
    response = post_password(client, member.username, next_url=TEAM)
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:login_code") + "?next=%2Fstaff%2Fteam%2F"
    assert client.session["_auth_user_id"] == str(member.pk)
    assert not _verified(client)
    # Signed in with the password only: every staff page sends back to the code page.
    page = client.get(TEAM)
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("staff:login_code"))
    assert AuditEvent.objects.filter(action="staff.login.password", subject=member).exists()


@pytest.mark.parametrize("kind", ["parent", "student", "unknown", "wrong_password"])
def test_anyone_but_staff_gets_the_one_generic_refusal(client, kind):
    member = make_staff()
    if kind == "parent":
        make_parent("parent.one")
        username, password = "parent.one", "correct horse battery staple"
    elif kind == "student":
        student = make_student(on_default=False)
        student.set_password("a student's own long password")
        student.save()
        username, password = student.username, "a student's own long password"
    elif kind == "unknown":
        username, password = "nobody.here", STAFF_PASSWORD
    else:
        username, password = member.username, "not the password at all"
    response = post_password(client, username, password)
    assert response.status_code == 200
    assert page_errors(response) == "The username or password is not right."
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_meet_the_portal_login_throttle(client, settings):
    settings.LOGIN_FREE_FAILURES = 2
    member = make_staff()
    for _ in range(2):
        post_password(client, member.username, "wrong password, again")
    response = post_password(client, member.username)  # right, but throttled: not even checked
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "Too many attempts" in page_errors(response) or "Wait" in page_errors(response)
    member.refresh_from_db()
    assert member.failed_login_count == 2


def test_code_page_without_password_step_goes_to_sign_in(client):
    response = client.get(reverse("staff:login_code") + "?next=/staff/team/")
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:login") + "?next=%2Fstaff%2Fteam%2F"
    response = post_code(client, "123456")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:login"))


def test_a_parent_signed_in_on_the_portal_gets_403_on_staff_pages(client):
    parent = make_parent("parent.one")
    client.force_login(parent)
    assert client.get(TEAM).status_code == 403
    # ...and the code page does not help them either.
    assert client.get(reverse("staff:login_code"))["Location"].startswith(reverse("staff:login"))


def test_offsite_next_is_ignored(client):
    member = make_staff(supervisor=True)
    post_password(client, member.username, next_url="https://evil.example/")
    response = post_code(client, current_code(member), next_url="https://evil.example/")
    assert response.status_code == 302
    assert "evil" not in response["Location"]


# --- the code step ---------------------------------------------------------------------------


def test_valid_code_verifies_and_goes_to_next(client):
    member = make_staff(supervisor=True)
    post_password(client, member.username)
    response = post_code(client, current_code(member), next_url=TEAM)
    assert response.status_code == 302
    assert response["Location"] == TEAM
    assert _verified(client)
    assert client.get(TEAM).status_code == 200
    assert AuditEvent.objects.filter(action="staff.login.verified", subject=member).exists()


def test_session_key_changes_after_each_step_and_old_keys_are_gone(client):
    member = make_staff(supervisor=True)
    session = client.session
    session["probe"] = 1
    session.save()
    anonymous_key = _session_key(client)
    post_password(client, member.username)
    password_key = _session_key(client)
    post_code(client, current_code(member))
    verified_key = _session_key(client)
    assert len({anonymous_key, password_key, verified_key}) == 3
    assert not SessionStore().exists(anonymous_key)
    assert not SessionStore().exists(password_key)
    assert client.get(TEAM).status_code == 200


def test_the_same_code_twice_is_refused(client):
    member = make_staff()
    with time_machine.travel(START, tick=False):
        code = current_code(member)
        post_password(client, member.username)
        assert post_code(client, code).status_code == 302
        other = client.__class__()
        post_password(other, member.username)
        replay = post_code(other, code)
        assert replay.status_code == 200
        assert "That code is not right" in page_errors(replay)
        assert not _verified(other)


def test_an_older_code_than_the_last_used_is_refused(client):
    member = make_staff()
    with time_machine.travel(START, tick=False):
        previous = current_code(member, offset_steps=-1)
        post_password(client, member.username)
        assert post_code(client, current_code(member)).status_code == 302
        other = client.__class__()
        post_password(other, member.username)
        assert post_code(other, previous).status_code == 200
        assert not _verified(other)


def test_tolerance_one_step_either_side_not_two(client):
    member = make_staff()
    with time_machine.travel(START, tick=False):
        post_password(client, member.username)
        assert post_code(client, current_code(member, offset_steps=-2)).status_code == 200
    # The refused code started the throttle; let it pass (1 s) before the next try.
    with time_machine.travel(START + dt.timedelta(seconds=2), tick=False):
        assert post_code(client, current_code(member, offset_steps=-1)).status_code == 302
        assert _verified(client)  # (inside: the session expires in real time)


def test_wrong_codes_throttle_even_a_correct_code(client):
    member = make_staff()
    with time_machine.travel(START, tick=False) as traveller:
        post_password(client, member.username)
        for attempt in range(3):
            if attempt:
                traveller.shift(dt.timedelta(seconds=5))  # past each delay: each one counts
            post_code(client, "000000" if current_code(member) != "000000" else "111111")
        device = TOTPDevice.objects.get(user=member)
        assert device.throttling_failure_count == 3
        # Now 4 s must pass: inside that window the right code (and a backup code) is refused.
        refused = post_code(client, current_code(member))
        assert refused.status_code == 200
        assert "Too many wrong codes" in page_errors(refused)
        refused = post_code(client, member.backup_codes[0])
        assert "Too many wrong codes" in page_errors(refused)
        assert not _verified(client)
        traveller.shift(dt.timedelta(seconds=5))
        assert post_code(client, current_code(member)).status_code == 302
        assert _verified(client)
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_no_authenticator_means_no_way_in(client):
    member = make_staff()
    TOTPDevice.objects.filter(user=member).delete()
    post_password(client, member.username)
    page = client.get(reverse("staff:login_code"))
    assert "No authenticator is set up" in page.content.decode()
    assert post_code(client, member.backup_codes[0]).status_code == 200
    assert not _verified(client)


# --- backup codes ----------------------------------------------------------------------------


def test_backup_codes_are_stored_hashed_and_work_once(client):
    member = make_staff()
    stored = set(StaticToken.objects.filter(device__user=member).values_list("token", flat=True))
    assert len(stored) == otp.BACKUP_CODE_COUNT
    assert not stored & set(member.backup_codes)  # never in clear
    code = member.backup_codes[0]
    post_password(client, member.username)
    assert post_code(client, otp.format_backup_code(code).upper()).status_code == 302
    assert _verified(client)
    assert otp.remaining_backup_codes(member) == otp.BACKUP_CODE_COUNT - 1
    other = client.__class__()
    post_password(other, member.username)
    assert post_code(other, code).status_code == 200
    assert not _verified(other)


def test_a_stored_hash_typed_as_a_code_is_refused(client):
    member = make_staff()
    stored = StaticToken.objects.filter(device__user=member).first().token
    post_password(client, member.username)
    assert post_code(client, stored).status_code == 200
    assert not _verified(client)
    assert otp.remaining_backup_codes(member) == otp.BACKUP_CODE_COUNT


def test_backup_codes_of_another_staff_member_do_not_work(client):
    member = make_staff("sam.staff")
    other = make_staff("kim.staff")
    post_password(client, member.username)
    assert post_code(client, other.backup_codes[0]).status_code == 200
    assert not _verified(client)


# --- idle timeout ----------------------------------------------------------------------------


def test_idle_staff_session_ends_and_asks_password_and_code_again(client, settings):
    assert settings.STAFF_IDLE_TIMEOUT_SECONDS == 30 * 60
    member = make_staff(supervisor=True)
    with time_machine.travel(START, tick=False) as traveller:
        sign_in_staff(client, member)
        assert client.get(TEAM).status_code == 200
        traveller.shift(dt.timedelta(minutes=29))
        assert client.get(TEAM).status_code == 200  # activity restarts the clock
        traveller.shift(dt.timedelta(minutes=29))
        assert client.get(TEAM).status_code == 200
        old_key = _session_key(client)
        traveller.shift(dt.timedelta(minutes=31))
        response = client.get(TEAM)
        assert response.status_code == 302
        assert response["Location"] == reverse("staff:login") + "?next=/staff/team/"
        assert not SessionStore().exists(old_key)
        assert "_auth_user_id" not in client.session
        # The password alone is not enough again: the code too.
        post_password(client, member.username)
        assert client.get(TEAM)["Location"].startswith(reverse("staff:login_code"))
        assert post_code(client, current_code(member)).status_code == 302
        assert client.get(TEAM).status_code == 200


def test_idle_timeout_applies_between_the_password_and_the_code(client):
    member = make_staff()
    with time_machine.travel(START, tick=False) as traveller:
        post_password(client, member.username)
        traveller.shift(dt.timedelta(minutes=31))
        response = post_code(client, current_code(member))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff:login"))
        assert "_auth_user_id" not in client.session


def test_parent_sessions_have_no_staff_idle_timeout(client):
    parent = make_parent("parent.one")
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(parent)
        traveller.shift(dt.timedelta(minutes=90))
        assert client.get(reverse("portal:home")).status_code == 200
        assert client.session["_auth_user_id"] == str(parent.pk)


# --- sign-out, admin -------------------------------------------------------------------------


def test_sign_out_ends_the_staff_session(client):
    member = make_staff(supervisor=True)
    sign_in_staff(client, member)
    response = client.post(reverse("staff:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:login")
    assert client.get(TEAM)["Location"].startswith(reverse("staff:login"))


def test_admin_needs_the_code_too_and_its_login_page_is_the_staff_sign_in(client):
    superuser = User.objects.create_superuser(
        "root.admin", "root@staff.example.org", STAFF_PASSWORD
    )
    response = client.get("/admin/")
    assert response.status_code == 302
    login = client.get(response["Location"])
    assert login.status_code == 302
    assert login["Location"] == reverse("staff:login") + "?next=%2Fadmin%2F"
    post_password(client, superuser.username)
    response = client.get("/admin/")
    assert response.status_code == 302  # not verified: not admitted
    otp.issue_authenticator(user=superuser, confirmed=True)
    post_code(client, current_code(superuser))
    assert client.get("/admin/").status_code == 200


def test_a_staff_session_opened_elsewhere_starts_its_idle_clock_at_its_first_request(client):
    member = make_staff(supervisor=True)
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(member)  # as the portal's own sign-in would leave it
        assert client.get(reverse("portal:home")).status_code == 200
        traveller.shift(dt.timedelta(minutes=31))
        response = client.get(reverse("portal:home"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("staff:login"))
        assert "_auth_user_id" not in client.session
