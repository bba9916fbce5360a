"""Audit events: what is recorded, how typed identifiers are hashed, what is refused."""

import hashlib
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory, override_settings

from portal.middleware import TrustedProxyMiddleware
from recovery import audit, tokens
from recovery.models import AuditEvent, IssuedToken

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 9, 8, 15, tzinfo=UTC)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="helpdesk1", is_staff=True)


@pytest.fixture
def parent(django_user_model):
    return django_user_model.objects.create_user(username="garcia.maria")


def request_via_proxy(user=None, **meta):
    """A request as a view sees it behind TrustedProxyMiddleware (one trusted proxy)."""
    seen = {}

    def view(request):
        seen["request"] = request

    request = RequestFactory().post("/help/forgot-password/", **meta)
    request.user = user or AnonymousUser()
    with override_settings(TRUSTED_PROXY_COUNT=1):
        TrustedProxyMiddleware(view)(request)
    return seen["request"]


def test_records_who_what_when_where(staff, parent):
    request = request_via_proxy(
        user=staff,
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.8",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    )
    with time_machine.travel(WHEN, tick=False):
        event = audit.record_event(
            action="staff.request_resolved",
            request=request,
            subject=parent,
            identifier="Maria.Garcia@Example.org",
            detail={"request_id": 42, "outcome": "reset_link_sent", "schools": ["104"]},
        )
    event.refresh_from_db()
    assert event.action == "staff.request_resolved"
    assert event.at == WHEN
    assert event.actor == staff  # taken from request.user
    assert event.subject == parent
    assert event.ip == "203.0.113.8"  # the trusted hop, not the forged entry
    assert event.user_agent == "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    assert event.identifier_hash == audit.hash_identifier("maria.garcia@example.org")
    assert event.detail == {"request_id": 42, "outcome": "reset_link_sent", "schools": ["104"]}


def test_without_a_request_or_with_an_anonymous_one(parent):
    bare = audit.record_event(action="provisioning.account_created", subject=parent)
    assert (bare.actor, bare.ip, bare.user_agent, bare.identifier_hash) == (None, None, "", "")
    anonymous = audit.record_event(
        action="password_reset.requested",
        request=request_via_proxy(REMOTE_ADDR="198.51.100.3"),
        identifier="garcia.maria",
    )
    assert anonymous.actor is None and anonymous.ip == "198.51.100.3"
    explicit = audit.record_event(action="staff.unlock", actor=parent, request=request_via_proxy())
    assert explicit.actor == parent


def test_user_agent_is_truncated_and_cleaned():
    request = request_via_proxy(HTTP_USER_AGENT="Bot\x00\r\nInjected: yes " + "x" * 1000)
    event = audit.record_event(action="password_reset.requested", request=request)
    event.refresh_from_db()
    assert len(event.user_agent) == 255
    assert event.user_agent.startswith("BotInjected: yes x")


@pytest.mark.parametrize(
    ("remote_addr", "stored"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("garbage", None),
        ("", None),
    ],
)
def test_ip_is_the_exact_trusted_address(remote_addr, stored):
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    event = audit.record_event(action="token.landing_opened", request=request)
    event.refresh_from_db()
    assert event.ip == stored


def test_identifier_hash_is_stable_over_typing_variants():
    for canonical, variants in {
        "maria.garcia@example.org": [" Maria.Garcia@EXAMPLE.org ", "\uff4daria.garcia@example.org"],
        "garcia.maria": ["Garcia.Maria", "  garcia.maria\t"],
        "s123456": ["S123456", "\uff33123456"],
    }.items():
        expected = audit.hash_identifier(canonical)
        assert len(expected) == 64
        assert all(audit.hash_identifier(v) == expected for v in variants)
    assert audit.hash_identifier("garcia.maria") != audit.hash_identifier("garcia.mario")
    assert audit.hash_identifier("") == audit.hash_identifier(None) == ""


def test_identifier_hash_is_keyed():
    value = "maria.garcia@example.org"
    here = audit.hash_identifier(value)
    # Not a plain digest anyone could compute from a list of guesses...
    assert here != hashlib.sha256(value.encode()).hexdigest()
    # ...but an HMAC under SECRET_KEY.
    with override_settings(SECRET_KEY="another-district-key-" + "z" * 40):
        assert audit.hash_identifier(value) != here
    assert audit.hash_identifier(value) == here


def test_correlation_reaches_back_past_a_key_rotation():
    old, new = "old-district-key-" + "o" * 40, "new-district-key-" + "n" * 40
    with override_settings(SECRET_KEY=old, SECRET_KEY_FALLBACKS=[]):
        audit.record_event(action="username_reminder.requested", identifier="a@example.org")
    with override_settings(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old]):
        audit.record_event(action="username_reminder.requested", identifier="A@example.org")
        hashes = audit.identifier_hashes("a@example.org")
        assert hashes[0] == audit.hash_identifier("a@example.org")
    assert AuditEvent.objects.filter(identifier_hash__in=hashes).count() == 2
    assert audit.identifier_hashes(" ") == []


def test_typed_identifier_is_not_stored_in_clear(parent):
    audit.record_event(
        action="username_reminder.requested",
        request=request_via_proxy(),
        identifier="Maria.Garcia@Example.org",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM recovery_auditevent AS t")
        (row,) = cursor.fetchone()
    assert "garcia@" not in row.casefold()


def test_correlation_query_finds_every_event_for_one_identifier():
    for typed in ("Maria.Garcia@example.org", "maria.garcia@EXAMPLE.ORG", "someone@example.org"):
        audit.record_event(action="username_reminder.requested", identifier=typed)
    found = AuditEvent.objects.filter(
        identifier_hash=audit.hash_identifier("maria.garcia@example.org")
    )
    assert found.count() == 2


@pytest.mark.parametrize(
    "detail",
    [
        {"password": "hunter2hunter2"},
        {"new_password1": "x"},
        {"old-password": "x"},
        {"Birth Date": "2012-03-09"},
        {"student": {"birthdate": "2012-03-09"}},
        {"dob": "030912"},
        {"otp_token": "123456"},
        {"otp": "123456"},
        {"pin": "1234"},
        {"dobValue": "030912"},
        {"newPassword": "x"},
        {"student.pin": "1234"},
        {"passWord": "x"},
        {"api-key": "x"},
        {"One Time Code": "x"},
        {"reset_link": "https://portal.example.org/help/reset/abc/"},
        {"next_url": "/x"},
        {"token_id": "abc"},
        {"items": [{"ok": 1}, {"SECRET_KEY": "x"}]},
        {"activation_code": "ABCD-EFGH"},
        {"csrfmiddlewaretoken": "x"},
        {"sessionid": "x"},
        {"note": "link was {TOKEN}"},
        {"when": datetime(2026, 1, 1)},
        {"tags": {"a", "b"}},
        {"ratio": float("nan")},
        {1: "non-string key"},
        ["not", "a", "dict"],
        "text",
    ],
)
def test_guard_refuses_secrets_and_non_json(parent, detail):
    if isinstance(detail, dict) and detail.get("note") == "link was {TOKEN}":
        token = tokens.mint(user=parent, purpose=IssuedToken.Purpose.RESET)
        detail = {"note": f"link was {token}"}
    with pytest.raises(audit.UnsafeAuditDetail):
        audit.record_event(action="password_reset.requested", detail=detail)
    assert not AuditEvent.objects.exists()


def test_guard_allows_ordinary_facts():
    detail = {
        "reason": "expired",
        "attempts": 3,
        "smtp_code": 550,
        "footprint": True,
        "schools": ["104", "221"],
        "nested": {"status": "ok", "share": 0.25, "none": None},
    }
    assert audit.record_event(action="outbox.failed", detail=detail).detail == detail


@pytest.mark.parametrize("action", ["", "requested", "Password.Reset", "a b.c", "x." + "y" * 70])
def test_action_must_be_a_short_dotted_name(action):
    with pytest.raises(ValueError):
        audit.record_event(action=action)
