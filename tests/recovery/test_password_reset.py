"""Forgot password (issue 4 items 2, 3, 6, 7; SPEC §6.1, §6.2, §6.5; checklist A-G).

The request side and the reset page, in-process; the worker's resolution is called as the worker
calls it. The real worker + SMTP round trips are in test_password_reset_delivery.py.
"""

import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.contrib import auth
from django.db import connections
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from portal.models import User
from recovery import ratelimit, tokens
from recovery.audit import hash_identifier
from recovery.models import AuditEvent, HelpRequest, IssuedToken, OutboundEmail
from recovery.resolution import resolve_help_requests
from tests.recovery.password_reset_accounts import (
    NEW_PASSWORD,
    PASSWORD,
    RECOVERY_EMAIL,
    SIS_EMAIL,
    make_awaiting_parent,
    make_disabled_account,
    make_every_kind,
    make_self_serve_parent,
    make_staff_account,
)

FORM = "/help/forgot-password/"
SENT = "/help/forgot-password/sent/"
SET_PASSWORD = "/help/reset/set-password/"
DONE = "/help/reset/done/"
INVALID_HEADING = "This reset link cannot be used"
CSRF_INPUT = re.compile(rb'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def clear_help_counters():
    """Help counters live in Redis per identifier/IP and window: every test starts clean."""
    client = ratelimit.redis_client()
    for pattern in ("portal:rl:help.*", "portal:rl:landing.reset.*"):
        keys = list(client.scan_iter(pattern))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def fresh_counters():
    clear_help_counters()
    yield
    clear_help_counters()


def ask(client, username, **extra):
    return client.post(FORM, {"username": username}, **extra)


def resolve_all():
    """What the worker does with every waiting request (recovery.tasks.resolve_help_requests)."""
    resolve_help_requests()


def link_path(token):
    return f"/help/reset/{token}/"


def reset(client, password=NEW_PASSWORD, password2=None):
    return client.post(
        SET_PASSWORD, {"new_password1": password, "new_password2": password2 or password}
    )


def signed_in_user(client):
    request = HttpRequest()
    request.session = client.session
    return auth.get_user(request)


def assert_invalid_page(response, status=200):
    assert response.status_code == status
    body = response.content.decode()
    assert INVALID_HEADING in body
    assert f'href="{FORM}"' in body
    assert "new_password1" not in body
    assert_uncached(response)


def assert_uncached(response):
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"


# --- the request: one page for every input (A1) -------------------------------------------------


def test_the_form_page(db):
    response = Client().get(FORM)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body and 'autocomplete="username"' in body
    assert_uncached(response)


def test_a_valid_post_writes_one_row_and_wakes_the_resolver_on_commit(
    db, django_capture_on_commit_callbacks
):
    user = make_self_serve_parent()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = ask(Client(), " Rosa.Nguyen ", HTTP_USER_AGENT="Firefox/130.0")
    assert response.status_code == 303
    assert response["Location"] == SENT
    assert len(callbacks) == 1
    [row] = HelpRequest.objects.all()
    assert row.kind == HelpRequest.Kind.FORGOT_PASSWORD
    assert row.identifier == "Rosa.Nguyen"
    assert row.identifier_hash == hash_identifier("rosa.nguyen")
    assert row.ip == "127.0.0.1" and row.user_agent == "Firefox/130.0"
    assert row.resolved_at is None
    # The request looked nothing up, sent nothing and wrote nothing else.
    assert not AuditEvent.objects.exists()
    assert not OutboundEmail.objects.exists() and not IssuedToken.objects.exists()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # The worker logs the request, dated when it was made, from where it came.
    resolve_all()
    event = AuditEvent.objects.get(action="help_request.submitted")
    assert event.at == row.created_at and event.ip == "127.0.0.1"
    assert event.user_agent == "Firefox/130.0"
    assert event.identifier_hash == row.identifier_hash and event.subject is None
    assert "Rosa" not in str(event.detail)


def strip_csrf(body):
    return CSRF_INPUT.sub(b"", body)


def cookie_shapes(response):
    return sorted(
        (name, tuple(sorted((k, str(v)) for k, v in morsel.items() if k != "expires" and v)))
        for name, morsel in response.cookies.items()
    )


def test_every_kind_of_identifier_gets_the_identical_page(db):
    typed = make_every_kind()
    seen = {}
    for label, identifier in typed.items():
        client = Client()
        form = client.get(FORM)
        posted = ask(client, identifier)
        sent = client.get(posted["Location"])
        seen[label] = (
            posted.status_code,
            posted["Location"],
            sorted(posted.headers),
            cookie_shapes(form) + cookie_shapes(posted) + cookie_shapes(sent),
            sent.status_code,
            sorted(sent.headers),
            strip_csrf(sent.content),
        )
    first = seen["self_serve"]
    assert first[0] == 303 and first[1] == SENT and first[4] == 200
    for label, shape in seen.items():
        assert shape == first, label
    assert b"/help/request/" in first[6]
    assert HelpRequest.objects.count() == len(typed)


def test_what_the_worker_sends_for_each_kind(db, settings):
    settings.RECOVERY_EMAIL_UNKNOWN_ACCOUNTS = False
    typed = make_every_kind()
    for identifier in typed.values():
        ask(Client(), identifier)
    resolve_all()
    outcomes = {
        label: HelpRequest.objects.get(identifier_hash=hash_identifier(identifier)).outcome
        for label, identifier in typed.items()
    }
    assert outcomes["self_serve"] == "reset_sent"
    assert outcomes["awaiting_activation"] == "welcome_sent"
    assert outcomes["no_self_serve"] == "not_set_up"
    assert outcomes["disabled"] == "disabled"
    assert outcomes["staff"] == "staff"
    assert outcomes["unknown"] == outcomes["odd_name"] == "unknown"
    emails = {
        (e.kind, e.to_address, e.token_purpose, e.stream) for e in OutboundEmail.objects.all()
    }
    assert emails == {
        ("password_reset", RECOVERY_EMAIL, "reset", "email"),
        ("welcome", SIS_EMAIL, "activation", "email"),
    }
    # The typed identifiers are gone once resolved; their keyed hashes stay.
    assert set(HelpRequest.objects.values_list("identifier", flat=True)) == {""}
    assert not HelpRequest.objects.filter(resolved_at__isnull=True).exists()
    # Every resolution is audited, with the identifier hashed only.
    assert AuditEvent.objects.filter(action="help_request.resolved").count() == len(typed)
    for identifier in typed.values():
        assert not AuditEvent.objects.filter(detail__icontains=identifier).exists()


def test_an_email_address_is_handled_as_a_username_reminder(db):
    response = ask(Client(), "Someone@Example.org")
    assert response.status_code == 303 and response["Location"] == SENT
    [row] = HelpRequest.objects.all()
    assert row.kind == HelpRequest.Kind.FORGOT_USERNAME


def test_the_username_is_matched_in_any_case_and_width(db):
    make_self_serve_parent()
    ask(Client(), "\uff32\uff2f\uff33\uff21.nguyen")  # full-width letters, NFKC
    resolve_all()
    assert HelpRequest.objects.get().outcome == "reset_sent"


def test_a_get_with_a_username_in_the_query_sends_nothing(db):
    make_self_serve_parent()
    response = Client().get(FORM, {"username": "rosa.nguyen"})
    assert response.status_code == 200
    # Not shown back in the form (the language switcher's "next" keeps the URL as it was).
    assert 'value="rosa.nguyen"' not in response.content.decode()
    assert not HelpRequest.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"username": "x" * 20_000},
        {"username": "rosa\x00nguyen"},
        {"username": "🙂🙃" * 10},
        {"username": ["rosa.nguyen", "other.person"]},
        {"username": ""},
        {"username": " \t "},
        {},
    ],
    ids=["20kB", "nul", "emoji", "pollution", "empty", "blank", "missing"],
)
def test_bad_input_is_a_4xx_or_the_normal_page(db, data):
    make_self_serve_parent()
    response = Client().post(FORM, data)
    assert response.status_code in (200, 303, 400)
    if response.status_code == 303:
        assert response["Location"] == SENT
    if response.status_code == 200:
        assert 'name="username"' in response.content.decode()
    assert_uncached(response)


@pytest.mark.parametrize(
    "body",
    [b"username=%ED%A0%80", b"username=%FF%FE", b"username=" + b"%00" * 5000, b"\xff\xfe=1"],
    ids=["surrogate", "bad-utf8", "many-nuls", "binary-key"],
)
def test_undecodable_bodies_are_a_4xx_or_the_normal_page(db, body):
    response = Client().post(FORM, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 303, 400)
    assert not any("\x00" in row.identifier for row in HelpRequest.objects.all())


def test_a_forged_host_is_refused_and_queues_nothing(db):
    make_self_serve_parent()
    response = ask(Client(), "rosa.nguyen", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not HelpRequest.objects.exists()


def test_the_sent_page_stands_alone(db):
    response = Client().get(SENT)
    assert response.status_code == 200
    assert_uncached(response)
    assert "/help/request/" in response.content.decode()


# --- rate limits (B1, B2, A4) ---------------------------------------------------------------------


def _until_refused(identifier, *, limit=8):
    statuses = []
    for _ in range(limit):
        response = ask(Client(), identifier)
        statuses.append(response.status_code)
        if response.status_code != 303:
            return len(statuses) - 1, response, statuses
    raise AssertionError(f"never refused: {statuses}")


def test_the_identifier_limit_reads_the_same_for_known_and_unknown(db, settings):
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "5/h"
    settings.RATELIMIT_RESET_PER_IP = "1000/m"
    make_self_serve_parent()
    with time_machine.travel(timezone.now(), tick=False):
        known_at, known, _ = _until_refused("rosa.nguyen")
        unknown_at, unknown, _ = _until_refused("nobody.here")
    assert known_at == unknown_at == 5
    assert known.status_code == unknown.status_code == 429
    assert known["Retry-After"] == unknown["Retry-After"]
    assert sorted(known.headers) == sorted(unknown.headers)
    assert strip_csrf(known.content) == strip_csrf(unknown.content)
    body = known.content.decode()
    assert "Too many requests." in body and "Please try again in" in body
    assert 1 <= int(known["Retry-After"]) <= 3600
    assert_uncached(known)
    # Five rows each: the refused requests wrote none, but were audited.
    assert HelpRequest.objects.count() == 10
    assert AuditEvent.objects.filter(action="help_request.throttled").count() == 2


def test_the_identifier_limit_counts_the_normal_form(db, settings):
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "2/h"
    assert ask(Client(), "rosa.nguyen").status_code == 303
    assert ask(Client(), "  ROSA.NGUYEN ").status_code == 303
    assert ask(Client(), "Rosa.Nguyen").status_code == 429


def test_the_ip_limit_ignores_forged_forwarding_headers(db, settings):
    settings.RATELIMIT_RESET_PER_IP = "3/m"
    statuses = [
        ask(
            Client(),
            f"person{i}",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
            HTTP_X_REAL_IP=f"203.0.113.{i}",
        ).status_code
        for i in range(5)
    ]
    assert statuses == [303, 303, 303, 429, 429]
    assert ask(Client(), "person9", REMOTE_ADDR="198.51.100.7").status_code == 303


def test_ipv6_clients_are_counted_by_their_64(db, settings):
    settings.RATELIMIT_RESET_PER_IP = "2/m"
    statuses = [
        ask(Client(), f"person{i}", REMOTE_ADDR=f"2001:db8:1:2::{i + 1}").status_code
        for i in range(3)
    ]
    assert statuses == [303, 303, 429]


def test_the_429_page_says_when_and_is_translated(db, settings):
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1/h"
    ask(Client(), "rosa.nguyen")
    response = ask(Client(), "rosa.nguyen", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 429
    assert "Too many requests" not in response.content.decode()
    assert 'lang="es"' in response.content.decode()


def test_twenty_requests_never_change_or_lock_the_account_and_mail_is_capped(db, settings):
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "100/h"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "3/h"
    user = make_self_serve_parent()
    for _ in range(20):
        assert ask(Client(), "rosa.nguyen").status_code == 303
    resolve_all()
    user.refresh_from_db()
    assert user.is_active and user.login_locked_at is None and user.failed_login_count == 0
    assert user.check_password(PASSWORD)
    assert OutboundEmail.objects.filter(kind="password_reset").count() == 3
    outcomes = list(HelpRequest.objects.values_list("outcome", flat=True))
    assert outcomes.count("reset_sent") == 3 and outcomes.count("address_capped") == 17
    # And the password still signs in.
    client = Client()
    assert client.login(username="rosa.nguyen", password=PASSWORD)


def test_the_email_cap_counts_the_stored_address_across_accounts(db, settings):
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1/h"
    make_self_serve_parent("first.parent", recovery_email="Shared@Example.org")
    make_self_serve_parent("second.parent", recovery_email="shared@example.org")
    ask(Client(), "first.parent")
    ask(Client(), "second.parent")
    resolve_all()
    assert OutboundEmail.objects.count() == 1


# --- the reset page: opening the link changes nothing (F1-F4), the POST does the work


@pytest.fixture
def user(db):
    return make_self_serve_parent()


@pytest.fixture
def token(user):
    return tokens.mint(user=user, purpose="reset")


def test_the_landing_moves_the_token_into_the_session_and_redirects_without_it(user, token):
    client = Client()
    response = client.get(link_path(token))
    assert response.status_code == 302 and response["Location"] == "/help/reset/set-password/"
    assert_uncached(response)
    page = client.get(SET_PASSWORD)
    assert page.status_code == 200
    body = page.content.decode()
    assert token not in body
    assert "rosa.nguyen" in body and 'name="new_password1"' in body
    assert_uncached(page)
    assert IssuedToken.objects.get().used_at is None


def test_scanners_change_nothing(user, token):
    for _ in range(3):
        Client().head(link_path(token))
    for _ in range(3):
        Client().get(link_path(token), follow=True)
    row = IssuedToken.objects.get()
    assert row.used_at is None and row.revoked_at is None
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_reset_sets_the_password_ends_sessions_clears_the_throttle_and_signs_nobody_in(
    user, token, settings
):
    elsewhere = Client()
    elsewhere.force_login(user)
    User.objects.filter(pk=user.pk).update(failed_login_count=100, login_locked_at=timezone.now())
    client = Client()
    client.get(link_path(token))
    response = reset(client)
    assert response.status_code == 302 and response["Location"] == DONE
    done = client.get(DONE)
    assert done.status_code == 200
    assert_uncached(done)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.login_locked_at is None and user.failed_login_count == 0
    assert not signed_in_user(client).is_authenticated
    assert not signed_in_user(elsewhere).is_authenticated
    assert Client().login(username=user.username, password=NEW_PASSWORD)  # the lock is gone
    [notice] = OutboundEmail.objects.filter(kind="password_changed")
    assert notice.to_address == RECOVERY_EMAIL and not notice.token_purpose
    assert IssuedToken.objects.get().used_at is not None
    assert AuditEvent.objects.filter(action="password.reset", subject=user).count() == 1


def test_a_used_link_gets_the_clear_page_and_its_post_is_refused(user, token):
    client = Client()
    client.get(link_path(token))
    assert reset(client).status_code == 302
    assert_invalid_page(Client().get(link_path(token), follow=True))
    again = Client()
    again.get(link_path(token))
    assert_invalid_page(reset(again, "another fine long passphrase"), status=400)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_post_after_the_link_was_used_elsewhere_is_refused(user, token):
    first, second = Client(), Client()
    first.get(link_path(token))
    second.get(link_path(token))
    assert reset(first).status_code == 302
    assert_invalid_page(reset(second, "another fine long passphrase"), status=400)
    assert AuditEvent.objects.filter(action="password_reset.refused").count() == 1


def test_an_expired_link_gets_the_clear_page(user):
    with time_machine.travel(timezone.now() - timedelta(seconds=3601), tick=False):
        token = tokens.mint(user=user, purpose="reset")
    assert_invalid_page(Client().get(link_path(token), follow=True))


def test_a_link_expiring_between_landing_and_post_is_refused(user, token):
    client = Client()
    client.get(link_path(token))
    with time_machine.travel(timezone.now() + timedelta(seconds=3601), tick=False):
        assert_invalid_page(reset(client), status=400)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("spoil", ["flip_last", "flip_first", "truncate", "append", "garbage"])
def test_a_tampered_link_gets_the_clear_page(user, token, spoil):
    bad = {
        "flip_last": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "flip_first": ("A" if token[0] != "A" else "B") + token[1:],
        "truncate": token[:-4],
        "append": token + "x",
        "garbage": "not-a-token",
    }[spoil]
    assert_invalid_page(Client().get(link_path(bad), follow=True))
    assert IssuedToken.objects.get().used_at is None


def test_an_activation_token_is_not_a_reset_token(db):
    parent = make_awaiting_parent()
    activation = tokens.mint(user=parent, purpose="activation")
    assert_invalid_page(Client().get(link_path(activation), follow=True))


def test_a_newer_link_revokes_the_older(user, token):
    newer = tokens.mint(user=user, purpose="reset")
    assert_invalid_page(Client().get(link_path(token), follow=True))
    assert Client().get(link_path(newer), follow=True).status_code == 200
    client = Client()
    client.get(link_path(newer))
    assert reset(client).status_code == 302


def test_a_password_change_revokes_every_link(user, token):
    from portal.services import user_set_password

    client = Client()
    client.get(link_path(token))  # landed before the change
    user_set_password(user=user, password="a different long password", reason="changed")
    assert_invalid_page(reset(client), status=400)
    assert_invalid_page(Client().get(link_path(token), follow=True))


def test_the_set_password_page_without_a_link_is_the_clear_page(db):
    assert_invalid_page(Client().get(SET_PASSWORD))
    assert_invalid_page(reset(Client()), status=400)


@pytest.mark.parametrize("make", [make_disabled_account, make_staff_account])
def test_disabled_and_staff_accounts_cannot_reset_even_with_a_link(db, make):
    account = make()
    token = tokens.mint(user=account, purpose="reset")
    client = Client()
    assert_invalid_page(client.get(link_path(token), follow=True))
    assert_invalid_page(reset(client), status=400)
    account.refresh_from_db()
    assert account.check_password(PASSWORD)


def test_a_refused_password_keeps_the_link_unused(user, token):
    client = Client()
    client.get(link_path(token))
    response = reset(client, "short", "short")
    assert response.status_code == 200
    assert 'name="new_password1"' in response.content.decode()
    assert IssuedToken.objects.get().used_at is None


def test_posts_need_csrf(user, token):
    client = Client(enforce_csrf_checks=True)
    client.get(link_path(token))
    assert reset(client).status_code == 403
    assert Client(enforce_csrf_checks=True).post(FORM, {"username": "x"}).status_code == 403


def test_the_landing_is_rate_limited_per_ip(user, token, settings):
    settings.RATELIMIT_LANDING_PER_IP = "2/m"
    statuses = [Client().get(link_path(token)).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]


@pytest.mark.parametrize("language", ["es", "vi"])
def test_the_pages_follow_the_language(user, token, language):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    for path in (FORM, SENT, DONE):
        body = client.get(path).content.decode()
        assert f'lang="{language}"' in body
    assert "Forgot your password?" not in client.get(FORM).content.decode()
    assert "Check your email" not in client.get(SENT).content.decode()
    assert INVALID_HEADING not in client.get(SET_PASSWORD).content.decode()
    client.get(link_path(token))
    assert "Choose a new password" not in client.get(SET_PASSWORD).content.decode()


# --- concurrency: one link, one reset ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_posts_reset_once():
    user = make_self_serve_parent()
    token = tokens.mint(user=user, purpose="reset")
    clients = [Client() for _ in range(10)]
    for client in clients:
        client.get(link_path(token))
    barrier = threading.Barrier(len(clients))
    results = []

    def post(client, index):
        try:
            barrier.wait()
            response = reset(client, f"{NEW_PASSWORD} {index}")
            results.append((response.status_code, index))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(c, i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(status for status, _ in results)
    assert statuses == [302] + [400] * 9
    [winner] = [index for status, index in results if status == 302]
    user.refresh_from_db()
    assert user.check_password(f"{NEW_PASSWORD} {winner}")
    assert AuditEvent.objects.filter(action="password.reset").count() == 1
    assert OutboundEmail.objects.filter(kind="password_changed").count() == 1


def test_the_account_look_up_matches_any_case_and_prefers_the_exact_spelling(db):
    from django.contrib.auth import get_user_model

    from recovery.flows.password_reset import accounts_named

    users = get_user_model().objects
    for username in ("Ana.Lee", "ana.lee", "bo.chen", "Zoë.Ng"):
        users.create_user(username=username)
    expected = {
        "ANA.LEE": None,  # two accounts differ only in case: only an exact spelling names one
        "ana.lee": "ana.lee",
        "Ana.Lee": "Ana.Lee",
        " Bo.Chen ": "bo.chen",
        "BO.CHEN": "bo.chen",
        "zoë.ng": "Zoë.Ng",
        "\uff22\uff2f.\uff23\uff28\uff25\uff2e": "bo.chen",  # full-width letters: NFKC folds them
        "nobody": None,
        "": None,
        "\u3000": None,
    }
    rows = [HelpRequest(kind="forgot_password", identifier=name) for name in expected]
    found = accounts_named(help_requests=rows)
    assert {name: user and user.username for name, user in found.items()} == expected
