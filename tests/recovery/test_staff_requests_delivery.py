"""Staff actions end to end: a signed-in staff member clicks, a real Celery worker sends through
a real SMTP server (aiosmtpd), and the test reads what arrived and where. Nothing is mocked;
every wait is a poll with a deadline.

The request in these tests was typed by someone at an attacker's address, naming Rosa and Ana
correctly: whatever staff do, that address gets only the fixed outcome text (checklist O6)."""

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.models import Guardian
from portal.student_codes import redeem_student_code
from recovery.models import AuditEvent, ManualRequestEvent, OutboundEmail
from tests.recovery.staff_helpers import sign_in_staff
from tests.recovery.staff_requests_helpers import (
    ATTACKER,
    HOUSEHOLD,
    ROSA_OWN,
    STUDENT_NUMBER,
    make_district,
    make_request,
)
from tests.recovery.username_reminder_helpers import clear_rate_limits
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

NOTE = "Mother called from the SIS phone number; confirmed the student's grade and school."


@pytest.fixture(autouse=True)
def fresh_counters():
    clear_rate_limits()
    yield
    clear_rate_limits()


def act(client, manual_request, action, **data):
    response = client.post(
        reverse("staff:request_action", args=[manual_request.reference, action]),
        {"note": NOTE, **data},
    )
    assert response.status_code == 303, action
    return response


def settle(smtp_server, expected):
    """Wait until the outbox is empty of unsent mail and `expected` messages arrived."""
    wait_until(
        lambda: not OutboundEmail.objects.exclude(status__in=["sent", "failed"]).exists(),
        message=lambda: f"emails sent: {list(OutboundEmail.objects.values('kind', 'status'))}",
    )
    assert not OutboundEmail.objects.filter(status="failed").exists()
    messages = smtp_server.wait_for_messages(expected)
    assert len(messages) == expected
    return messages


def to(messages, address):
    return [message for message in messages if message.rcpt_tos == [address]]


def links_in(text):
    return re.findall(r"https?://\S+", text)


def test_every_action_reaches_only_the_contact_on_record(worker_process, smtp_server):
    district = make_district()
    # A guardian of Ana whom the nightly job has not reached: her own SIS address is on record.
    nadia = Guardian.objects.create(
        sourced_id="g-nadia",
        given_name="Nadia",
        family_name="Rahman",
        email="nadia.sis@example.org",
        email_normalised="nadia.sis@example.org",
        role=Guardian.Role.GUARDIAN,
    )
    nadia.students.add(district.student)
    rosa = district.rosa_account
    rosa.failed_login_count, rosa.login_locked_at = 100, timezone.now()
    rosa.save()
    manual_request = make_request(school=district.school_a)
    client = sign_in_staff(Client(), district.staff_a)

    act(client, manual_request, "reset-link", account=rosa.pk)
    act(client, manual_request, "username-reminder", account=rosa.pk)
    act(client, manual_request, "unlock", account=rosa.pk)
    act(
        client,
        manual_request,
        "create-account",
        guardian=district.luis.pk,
        email="luis@own.example",
    )
    act(client, manual_request, "create-account", guardian=nadia.pk, email="nadia@new.example")
    response = act(client, manual_request, "issue-code", account=district.student_account.pk)
    code_page = client.get(response["Location"]).content.decode()
    code = re.search(r'class="one-time-code">([^<]+)<', code_page)[1]
    act(client, manual_request, "resolve")

    messages = settle(smtp_server, 6)
    assert {tuple(m.rcpt_tos) for m in messages} == {
        (ROSA_OWN,),  # reset link + username reminder, to the verified address as stored
        ("luis@own.example",),  # welcome at the address staff verified
        ("nadia@new.example",),  # welcome
        ("nadia.sis@example.org",),  # notice at her own SIS address
        (ATTACKER,),  # the fixed outcome, nothing else
    }
    assert not to(messages, HOUSEHOLD)  # a shared household address never gets a thing
    base = settings.PORTAL_BASE_URL

    reset, reminder = sorted(to(messages, ROSA_OWN), key=lambda m: "Username" in m.text)
    [reset_link] = links_in(reset.text)
    assert reset_link.startswith(f"{base}/")
    landing = Client().get(reset_link)  # the link works: it lands and drops the token
    assert landing.status_code in (302, 303)
    assert "rosa.garcia" in reminder.text and not links_in(reminder.text)

    [luis_welcome] = to(messages, "luis@own.example")
    luis = get_user_model().objects.get(guardian=district.luis)
    assert f": {luis.username}" in luis_welcome.text
    [activation] = links_in(luis_welcome.text)
    assert activation.startswith(f"{base}/")
    # Luis activates: the address staff verified becomes his verified recovery email.
    family = Client()
    landed = family.get(activation.removeprefix(base))
    assert landed.status_code in (302, 303)
    done = family.post(
        landed["Location"],
        {
            "new_password1": "orange bicycles sing at dawn",
            "new_password2": "orange bicycles sing at dawn",
        },
    )
    assert done.status_code in (302, 303), done.content.decode()[:300]
    luis.refresh_from_db()
    assert luis.activated_at is not None and luis.has_self_serve
    assert luis.recovery_email == "luis@own.example"
    [notice] = to(messages, "nadia.sis@example.org")
    assert not links_in(notice.text) and not links_in(notice.html)
    assert "nadia@new.example" not in notice.text  # the notice does not give the new address

    [outcome] = to(messages, ATTACKER)
    assert manual_request.reference in outcome.text and manual_request.reference in outcome.html
    for part in (outcome.text, outcome.html, outcome.subject):
        for secret in ("rosa.garcia", luis.username, STUDENT_NUMBER, "Ana", "García", code):
            assert secret not in part
    assert not links_in(outcome.text)

    # The code was never emailed; it works once at the student's code page.
    assert all(code not in m.text for m in messages)
    redeem_student_code(username=STUDENT_NUMBER, code=code, password="orange bicycles sing at dawn")
    rosa.refresh_from_db()
    assert rosa.login_locked_at is None and rosa.failed_login_count == 0

    # Every action: one history event and one audit entry with the staff member and the note.
    actions = [
        "reset_link_sent",
        "username_reminder_sent",
        "login_lock_cleared",
        "guardian_account_created",
        "guardian_account_created",
        "student_code_issued",
        "request_resolved",
    ]
    events = list(ManualRequestEvent.objects.filter(request=manual_request).order_by("pk"))
    assert [e.action for e in events] == actions
    assert all(e.actor == district.staff_a and e.note == NOTE for e in events)
    audited = AuditEvent.objects.filter(action__in=[f"staff.{a}" for a in actions]).order_by("pk")
    assert [e.action for e in audited] == [f"staff.{a}" for a in actions]
    assert all(
        e.actor == district.staff_a
        and e.detail["note"] == NOTE
        and e.detail["manual_request"] == manual_request.reference
        for e in audited
    )


@pytest.mark.parametrize("outcome", ["resolve", "reject"])
def test_the_requester_gets_only_fixed_outcome_text(worker_process, smtp_server, outcome):
    district = make_district()
    manual_request = make_request(
        school=district.school_a,
        comments="Please send Rosa's username and a new password to this address.",
        language="es",
    )
    client = sign_in_staff(Client(), district.staff_a)
    act(client, manual_request, outcome)
    [message] = settle(smtp_server, 1)
    assert message.rcpt_tos == [ATTACKER]
    assert manual_request.reference in message.text
    for part in (message.text, message.html):
        assert "rosa.garcia" not in part and "Rosa" not in part and "Ana" not in part
        assert "Please send" not in part  # nothing the family typed comes back either
        assert not links_in(part) or all(
            link.startswith(settings.PORTAL_BASE_URL) for link in links_in(part)
        )
