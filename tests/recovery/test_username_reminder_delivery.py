"""Forgot username end to end: the page, a real Celery worker, PostgreSQL, Redis and an
aiosmtpd server. The test types addresses into the form and reads what the SMTP server
received. Nothing is mocked; every wait is a poll with a deadline."""

import re

import pytest
from django.conf import settings
from django.test import Client

from recovery.models import HelpRequest, OutboundEmail
from tests.recovery.test_username_reminder import FULL_WIDTH_EXAMPLE, LOOK_ALIKES, UNKNOWN
from tests.recovery.username_reminder_helpers import (
    DISABLED,
    FORM,
    NEW_PARENT,
    NO_SELF_SERVE,
    SENT,
    SHARED,
    STAFF,
    STUDENT_BIRTH,
    STUDENT_NAMES,
    STUDENT_NUMBER,
    clear_rate_limits,
    make_accounts,
    with_recovery_email,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    clear_rate_limits()
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1000/h"
    settings.RATELIMIT_RESET_PER_IP = "1000/m"
    yield
    clear_rate_limits()


@pytest.fixture
def accounts(transactional_db):
    return make_accounts()


def ask(*addresses):
    client = Client()
    for address in addresses:
        response = client.post(FORM, {"email": address})
        # The form refuses what is not one address (a 200 with the error); all else: one page.
        assert (response.status_code, response.get("Location")) in ((303, SENT), (200, None))


def settle(smtp_server):
    """Wait until the worker resolved every request and sent every email; return the mail."""
    wait_until(
        lambda: (
            not HelpRequest.objects.filter(resolved_at__isnull=True).exists()
            and not OutboundEmail.objects.exclude(status__in=["sent", "failed"]).exists()
        ),
        message=lambda: f"requests and emails settled: {list(OutboundEmail.objects.values())}",
    )
    assert not OutboundEmail.objects.filter(status="failed").exists()
    return smtp_server.wait_for_messages(OutboundEmail.objects.count())


def to(messages, address):
    return [m for m in messages if m.rcpt_tos == [address]]


def links_in(text):
    return re.findall(r"https?://\S+", text)


def assert_minimal(message):
    """SPEC §6.6 / checklist P2: no birth date, no student name, not even in the subject."""
    for part in (message.text, message.html, message.subject):
        for date_form in ("%m%d%y", "%m/%d/%Y", "%Y-%m-%d"):
            assert STUDENT_BIRTH.strftime(date_form) not in part
        for name in STUDENT_NAMES:
            assert name not in part


def test_forgot_username_round_trip(worker_process, smtp_server, accounts):
    ask(
        "  Family.GARCIA@example.org ",  # two accounts, typed in another case
        NEW_PARENT.upper(),  # a parent provisioned but not yet activated
        DISABLED,
        STAFF,
        NO_SELF_SERVE,
        "ana.g@students.example.org",  # a student's SIS email, no Self Serve
        UNKNOWN,
    )
    messages = settle(smtp_server)
    assert len(messages) == 3

    # Every username tied to the address, one line each, at the address as stored.
    [reminder] = to(messages, SHARED)
    lines = reminder.text.replace("\r\n", "\n").split("\n")
    assert [line for line in lines if line.startswith("Username:")] == [
        f"Username: {STUDENT_NUMBER}",
        "Username: rosa.garcia",
    ]
    assert reminder.subject == f"Your {settings.DISTRICT_NAME} portal username"
    assert links_in(reminder.text) == [] and "href=" not in reminder.html  # a notice: no link
    assert_minimal(reminder)

    # The parent waiting to activate gets the welcome again, with a fresh link.
    [welcome] = to(messages, NEW_PARENT)
    assert "Username: luis.ortega" in welcome.text
    [link] = links_in(welcome.text)
    assert link.startswith(settings.PORTAL_BASE_URL + "/activate/")
    assert_minimal(welcome)

    # An address with no account at all: the fixed text, nothing about anyone.
    [no_account] = to(messages, UNKNOWN)
    assert "Username" not in no_account.text and links_in(no_account.text) == []
    assert "request form" in no_account.text
    assert_minimal(no_account)

    # Disabled, staff, not set up: nothing at all (not even the "no account" text).
    for address in (DISABLED, STAFF, NO_SELF_SERVE, "ana.g@students.example.org"):
        assert to(messages, address) == []
    assert {request.identifier for request in HelpRequest.objects.all()} == {""}


def test_look_alikes_never_receive_a_username(worker_process, smtp_server, accounts):
    kate = with_recovery_email(accounts["parent"], "kate@example.org")
    ask(
        *LOOK_ALIKES[1:],
        "\u212aate@example.org",  # the Kelvin sign K: normalises to kate@example.org
        "family.garcia@example.org\r\nBcc: attacker@evil.example",
        "family.garcia@example.org%0d%0aBcc:attacker@evil.example",
    )
    client = Client()  # email=victim&email=attacker in one body: refused whole
    response = client.post(
        FORM,
        "email=family.garcia%40example.org&email=attacker%40evil.example",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    messages = settle(smtp_server)
    recipients = [address for m in messages for address in m.rcpt_tos]
    assert not [address for address in recipients if "attacker" in address or "evil" in address]
    # Look-alikes that normalise equal reach only the stored addresses; the others nothing.
    assert sorted(recipients) == ["family.garcia@example.org"] * 2 + ["kate@example.org"]
    for message in messages:
        assert links_in(message.text) == []
    [to_kate] = to(messages, "kate@example.org")
    assert "Username: rosa.garcia" in to_kate.text.splitlines()
    assert kate.recovery_email == "kate@example.org"
    assert FULL_WIDTH_EXAMPLE not in "".join(recipients)


def test_no_account_email_is_off_with_the_setting(start_worker, smtp_server, accounts):
    start_worker(env={"RECOVERY_EMAIL_UNKNOWN_ACCOUNTS": "false"})
    ask(UNKNOWN, "another.stranger@example.org", SHARED)
    messages = settle(smtp_server)
    assert [m.rcpt_tos for m in messages] == [[SHARED]]  # the worker ran: only the reminder
    assert set(HelpRequest.objects.values_list("outcome", flat=True)) == {
        "unknown",
        "reminded_1_welcomed_0",
    }


def test_an_smtp_failure_never_changes_the_page(worker_process, smtp_server, accounts):
    """Checklist A3/N1: the relay refusing the address changes nothing the person sees; the
    failure is kept in the outbox (a short code, never the server's text)."""
    from tests.recovery.username_reminder_helpers import signature

    smtp_server.reject_recipient(SHARED)
    refused = signature(SHARED)
    unknown = signature("stranger@example.org")
    assert refused == unknown
    wait_until(
        lambda: OutboundEmail.objects.filter(to_address=SHARED, status="failed").exists(),
        message="the refused reminder marked failed",
    )
    assert OutboundEmail.objects.get(to_address=SHARED).last_error == "smtp_550"
    assert signature(SHARED) == unknown  # after the failure too
