"""Sign-in (issue 3 item 4; checklist I1, J1-J4, K4): one generic failure, the throttle, timing."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from portal import login_throttle
from portal.hashers import FastTestArgon2PasswordHasher
from recovery.audit import hash_identifier
from recovery.models import AuditEvent
from tests.portal.login_helpers import (
    DEFAULT,
    PASSWORD,
    clean_login_counters,  # noqa: F401 (fixture)
    login_error,
    make_parent,
    make_student,
    page_without_csrf,
    sign_in,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("clean_login_counters")

# The top of an hour, so fixed windows (10 an hour for student numbers) do not roll over.
START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
INVALID = "The username or password is not right."


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


# --- one generic failure (J1) ------------------------------------------------------------------


@pytest.fixture
def accounts(db):
    """One account of each kind that must fail like an unknown username."""
    make_parent("parent.ok")
    make_parent("parent.inactive", is_active=False)
    awaiting = make_parent("parent.awaiting")
    awaiting.set_unusable_password()
    awaiting.save()
    make_student("5550001", since=timezone.now() - dt.timedelta(days=61))  # expired default
    make_student("5550002", birth_date=None)  # no default at all
    return {
        "unknown": ("nobody.here", "wrong password 1"),
        "wrong password": ("parent.ok", "wrong password 1"),
        "inactive, right password": ("parent.inactive", PASSWORD),
        "not yet activated": ("parent.awaiting", PASSWORD),
        "expired default": ("5550001", DEFAULT),
        "student without a birth date": ("5550002", "AG"),
    }


def test_every_failure_reads_the_same(client, accounts):
    pages = {}
    for case, (username, password) in accounts.items():
        response = sign_in(client, username, password)
        assert response.status_code == 200, case
        assert not signed_in(client), case
        assert login_error(response).startswith(INVALID), case
        # The page is the same but for the CSRF token and the username echoed back.
        pages[case] = page_without_csrf(response).replace(f'value="{username}"', 'value=""')
    assert len(set(pages.values())) == 1, list(pages)


def test_an_inactive_account_is_refused_even_with_the_right_password(client, db):
    make_parent("parent.gone", is_active=False)
    assert login_error(sign_in(client, "parent.gone", PASSWORD)).startswith(INVALID)
    assert not signed_in(client)


class CountingHasher(FastTestArgon2PasswordHasher):
    """The suite's Argon2, counting how often the expensive work runs."""

    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)

    def verify(self, password, encoded):
        type(self).calls += 1
        return super().verify(password, encoded)


def test_the_hasher_runs_once_on_every_path(client, accounts, settings):
    # Equal timing by construction (J2, CVE-2024-39329): whatever the account's state, one
    # Argon2 computation per attempt; a path that skipped it would answer measurably sooner.
    # (Django clears its hasher cache when the setting changes.)
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    cases = {**accounts, "student on the default, wrong": ("5550003", "AG010101")}
    make_student("5550003")
    for case, (username, password) in cases.items():
        CountingHasher.calls = 0
        sign_in(client, username, password)
        assert CountingHasher.calls == 1, case
    CountingHasher.calls = 0
    sign_in(client, "5550003", DEFAULT)  # a right default: the hasher still runs once
    assert CountingHasher.calls == 1


# --- sessions (I1) and audit -------------------------------------------------------------------


def test_the_session_key_changes_at_sign_in(client, db):
    parent = make_parent()
    client.get(reverse("login"))
    session = client.session
    session["before"] = True
    session.save()
    before = session.session_key
    response = sign_in(client, "parent.one", PASSWORD)
    assert response.status_code == 302
    after = client.session.session_key
    assert after != before
    assert client.session["_auth_user_id"] == str(parent.pk)
    # The old key no longer exists server-side: replaying it is anonymous.
    client.cookies["sessionid"] = before
    assert client.get(reverse("portal:home")).status_code == 302


def test_sign_ins_are_audited_with_the_username_hashed(client, db):
    parent = make_parent()
    sign_in(client, "parent.one", "wrong password 1")
    sign_in(client, "no.such.person", "wrong password 1")
    sign_in(client, "parent.one", PASSWORD)
    failed = list(AuditEvent.objects.filter(action="login.failed").order_by("pk"))
    assert [e.identifier_hash for e in failed] == [
        hash_identifier("parent.one"),
        hash_identifier("no.such.person"),
    ]
    assert [e.subject_id for e in failed] == [parent.pk, None]
    succeeded = AuditEvent.objects.get(action="login.succeeded")
    assert succeeded.subject_id == parent.pk
    text = " ".join(str(e.detail) + e.identifier_hash for e in AuditEvent.objects.all())
    assert "parent.one" not in text and PASSWORD not in text


# --- growing, capped delays that end (SPEC §6.2, J3) --------------------------------------------


def test_delays_grow_double_and_are_capped():
    assert [login_throttle.delay_after(n) for n in range(12)] == [
        0, 0, 0, 0, 0, 60, 120, 240, 480, 900, 900, 900,
    ]  # fmt: skip
    assert login_throttle.delay_after(10**6) == 900


def test_failures_slow_down_and_the_reply_says_when(client, db, clock):
    make_parent()
    replies = [login_error(sign_in(client, "parent.one", "wrong password 1")) for _ in range(5)]
    assert replies[:4] == [replies[0]] * 4 and "try again" not in replies[0]
    assert replies[4] == f"{replies[0]} Too many attempts to sign in. Please try again in 1 minute."
    # Throttled: even the right password is not checked, and nobody signs in.
    response = sign_in(client, "parent.one", PASSWORD)
    assert login_error(response) == "Too many attempts to sign in. Please try again in 1 minute."
    assert not signed_in(client)
    clock.shift(30)
    assert "1 minute" in login_error(sign_in(client, "parent.one", PASSWORD))
    clock.shift(31)
    sign_in(client, "parent.one", "wrong password 1")  # 6th failure: now 2 minutes
    assert "2 minutes" in login_error(sign_in(client, "parent.one", PASSWORD))
    clock.shift(120)
    assert sign_in(client, "parent.one", PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_successful_sign_in_resets_the_count(client, db, clock):
    parent = make_parent()
    for _ in range(4):
        sign_in(client, "parent.one", "wrong password 1")
    assert sign_in(client, "parent.one", PASSWORD).status_code == 302
    parent.refresh_from_db()
    assert (parent.failed_login_count, parent.last_failed_login_at) == (0, None)
    client.logout()
    for _ in range(4):  # four more: still no delay, the run started again
        assert "try again" not in login_error(sign_in(client, "parent.one", "wrong password 1"))


def _replies(client, username, steps, clock):
    """What each of `steps` attempts (wrong password) gets, waiting `wait` seconds before each."""
    out = []
    for wait in steps:
        clock.shift(wait)
        response = sign_in(client, username, "wrong password 1")
        out.append((response.status_code, login_error(response)))
    return out


@pytest.mark.parametrize(
    ("known", "unknown"),
    [("parent.one", "nobody.here"), ("4815162", "4815163")],
    ids=["parent-shaped", "student-number-shaped"],
)
def test_known_and_unknown_usernames_get_the_same_replies_at_every_step(
    client, db, known, unknown, settings
):
    # A4-style: the attempt where the reply changes, and the changed reply, are the same.
    make_parent("parent.one")
    make_student("4815162")
    steps = [0] * 7 + [60, 0, 120, 30, 90, 240, 480, 900, 0, 900]
    with time_machine.travel(START, tick=False) as clock:
        known_replies = _replies(client, known, steps, clock)
    with time_machine.travel(START + dt.timedelta(days=1), tick=False) as clock:
        unknown_replies = _replies(client, unknown, steps, clock)
    assert known_replies == unknown_replies
    assert len({reply for _, reply in known_replies}) >= 3  # it did change, more than once


# --- 100 consecutive failures lock the account (J3, J4) ------------------------------------------


def _fail_until_locked(client, username, clock):
    replies = []
    for attempt in range(100):
        clock.shift(login_throttle.delay_max())
        # From a different address every time, with forged headers too: no per-IP escape.
        ip = f"198.51.{attempt // 250}.{attempt % 250 + 1}"
        response = sign_in(
            client, username, "wrong password 1", ip=ip, HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}"
        )
        replies.append(login_error(response))
    return replies


def test_one_hundred_failures_lock_even_the_right_password(client, db, clock):
    parent = make_parent()
    other = make_parent("parent.two")
    replies = _fail_until_locked(client, "parent.one", clock)
    assert all(reply.startswith(INVALID) for reply in replies)
    assert "closed" in replies[-1] and "closed" not in replies[-2]
    parent.refresh_from_db()
    assert parent.failed_login_count == 100 and parent.login_locked_at is not None
    clock.shift(30 * 24 * 3600)  # no delay ends a lock
    response = sign_in(client, "parent.one", PASSWORD)
    assert not signed_in(client)
    assert "Sign-in is closed for this username until its password is reset" in login_error(
        response
    )
    # The lock is the account's alone.
    assert sign_in(client, "parent.two", PASSWORD).status_code == 302
    assert other.pk == int(client.session["_auth_user_id"])


def test_an_unknown_username_locks_with_the_same_words(client, db, clock):
    make_parent()
    known = _fail_until_locked(client, "parent.one", clock)
    unknown = _fail_until_locked(client, "nobody.here", clock)
    assert known == unknown
    assert login_error(sign_in(client, "nobody.here", PASSWORD)) == login_error(
        sign_in(client, "parent.one", PASSWORD)
    )


def test_a_password_reset_opens_a_locked_account(client, db, clock):
    from portal.services import user_set_password

    parent = make_parent()
    _fail_until_locked(client, "parent.one", clock)
    parent.refresh_from_db()
    user_set_password(user=parent, password="a brand new passphrase", reason="reset")
    parent.refresh_from_db()
    assert (parent.failed_login_count, parent.login_locked_at) == (0, None)
    assert sign_in(client, "parent.one", "a brand new passphrase").status_code == 302


def test_a_staff_unlock_opens_a_locked_account_and_is_audited(client, db, clock):
    parent = make_parent()
    staff = make_parent("staff.one", role="staff", is_staff=True)
    _fail_until_locked(client, "parent.one", clock)
    parent.refresh_from_db()
    login_throttle.unlock_account(user=parent, staff=staff)
    event = AuditEvent.objects.get(action="login.unlocked")
    assert (event.actor_id, event.subject_id, event.detail) == (
        staff.pk,
        parent.pk,
        {"was_locked": True},
    )
    assert sign_in(client, "parent.one", PASSWORD).status_code == 302


def test_clear_account_forgets_failures(db, clock, client):
    parent = make_parent()
    for _ in range(6):
        sign_in(client, "parent.one", "wrong password 1")
    login_throttle.clear_account(parent)
    parent.refresh_from_db()
    assert (parent.failed_login_count, parent.last_failed_login_at) == (0, None)
    assert sign_in(client, "parent.one", PASSWORD).status_code == 302


def test_clear_account_takes_the_lazy_request_user(db, clock, client):
    # Views pass request.user, a SimpleLazyObject whose type() is not the model.
    parent = make_parent()
    for _ in range(6):
        sign_in(client, "parent.one", "wrong password 1")
    login_throttle.clear_account(SimpleLazyObject(lambda: parent))
    parent.refresh_from_db()
    assert parent.failed_login_count == 0


# --- per client IP (J4) --------------------------------------------------------------------------


def test_a_forged_x_forwarded_for_does_not_escape_the_per_ip_limit(client, db, clock, settings):
    settings.RATELIMIT_LOGIN_PER_IP = "3/m"
    make_parent()
    replies = [
        login_error(
            sign_in(client, f"guess.{n}", "wrong password 1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        )
        for n in range(3)
    ]
    assert ["Too many" in reply for reply in replies] == [False, False, True]  # the 3rd says when
    response = sign_in(client, "parent.one", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert login_error(response) == "Too many attempts to sign in. Please try again in 1 minute."
    assert not signed_in(client)
    # Another address is not affected; the window ends.
    assert sign_in(client, "parent.one", PASSWORD, ip="203.0.113.8").status_code == 302


def test_behind_a_trusted_proxy_the_limit_is_per_real_client(client, db, clock, settings):
    settings.RATELIMIT_LOGIN_PER_IP = "3/m"
    settings.TRUSTED_PROXY_COUNT = 1
    make_parent()
    for n in range(3):
        sign_in(
            client, f"guess.{n}", "x", ip="10.0.0.1", HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 192.0.2.1"
        )
    forged = sign_in(
        client, "parent.one", PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.9, 192.0.2.1"
    )
    assert "Too many" in login_error(forged)
    other = sign_in(client, "parent.one", PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.2")
    assert other.status_code == 302


# --- student-number-shaped usernames: stricter (K4) ----------------------------------------------


def _wait_and_fail(client, username, clock, count):
    for n in range(count):
        clock.shift(login_throttle.delay_after(n))
        sign_in(client, username, "AG010101")


@pytest.mark.parametrize("username", ["4815162", "4815163"], ids=["existing", "not existing"])
def test_student_number_names_get_ten_failures_an_hour(client, db, clock, username):
    make_student("4815162")
    make_parent("parent.one")
    _wait_and_fail(client, username, clock, 10)
    clock.shift(login_throttle.delay_max())  # the account's own delay has passed
    reply = login_error(sign_in(client, username, DEFAULT))
    assert reply.startswith("Too many attempts to sign in. Please try again in")
    assert not signed_in(client)
    # A parent-shaped name after the same ten failures is only delayed, not stopped.
    _wait_and_fail(client, "parent.one", clock, 10)
    clock.shift(login_throttle.delay_max())
    assert sign_in(client, "parent.one", PASSWORD).status_code == 302
    # Staff are told once, by the name's hash.
    alert = AuditEvent.objects.get(action="login.student_number_throttled")
    assert alert.identifier_hash == hash_identifier(username)


def test_student_number_window_ends_and_the_right_default_then_works(client, db, clock):
    make_student("4815162")
    _wait_and_fail(client, "4815162", clock, 10)
    clock.shift(3600)
    assert sign_in(client, "4815162", DEFAULT).status_code == 302


def test_the_student_number_shape_is_a_setting(settings):
    assert login_throttle.is_student_number_shaped("4815162")
    assert not login_throttle.is_student_number_shaped("1234")
    assert not login_throttle.is_student_number_shaped("parent.one")
    settings.STUDENT_NUMBER_PATTERN = r"^S\d{6}$"
    assert login_throttle.is_student_number_shaped("s123456")  # as typed, case-folded
    assert not login_throttle.is_student_number_shaped("4815162")


# --- every sign-in form passes through the throttle ----------------------------------------------


def test_the_admin_sign_in_is_throttled_too(client, db, clock):
    # /admin/login/ leads to the staff console's sign-in (recovery.staff.admin_site), whose
    # password step goes through the same backend and throttle.
    staff = make_parent("staff.one", role="staff", is_staff=True, is_superuser=True)
    assert client.post("/admin/login/", {"username": "staff.one", "password": PASSWORD})[
        "Location"
    ].startswith("/staff/login/")
    assert not signed_in(client)
    for _ in range(5):
        client.post(
            "/staff/login/",
            {"username": "staff.one", "password": "wrong password 1"},
            REMOTE_ADDR="203.0.113.7",
        )
    staff.refresh_from_db()
    assert staff.failed_login_count == 5
    # Throttled: the right password does not sign in from the staff form either...
    client.post("/staff/login/", {"username": "staff.one", "password": PASSWORD})
    assert not signed_in(client)
    # ...and the portal's form says the same wait.
    assert "1 minute" in login_error(sign_in(client, "staff.one", PASSWORD))
    clock.shift(60)
    client.post("/staff/login/", {"username": "staff.one", "password": PASSWORD})
    assert signed_in(client)


def test_authenticate_without_a_request_checks_the_password_only(db, clock):
    from django.contrib.auth import authenticate

    parent = make_parent()
    for _ in range(8):
        assert authenticate(None, username="parent.one", password="wrong password 1") is None
    parent.refresh_from_db()
    assert parent.failed_login_count == 0  # shell and scripts are not throttled or counted
    assert authenticate(None, username="parent.one", password=PASSWORD) == parent


def test_without_redis_unknown_names_still_follow_the_same_steps(client, db, settings, clock):
    # The `make run` demo has no Redis: the cache keeps unknown names' failures instead.
    settings.REDIS_URL = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    make_parent()
    known = [login_error(sign_in(client, "parent.one", "wrong password 1")) for _ in range(6)]
    unknown = [login_error(sign_in(client, "nobody.here", "wrong password 1")) for _ in range(6)]
    assert known == unknown
    assert known[-1].startswith("Too many attempts to sign in.")
