"""The manual request form end to end: the page, a real Celery worker, PostgreSQL, Redis and an
aiosmtpd server. What families type never reaches the acknowledgement: it is fixed text with
the reference number, to the one answer address, with no extra recipient or header."""

import re

import pytest
from django.conf import settings
from django.test import Client

from recovery.models import ManualRequest, OutboundEmail
from tests.recovery.username_reminder_helpers import clear_rate_limits
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

FORM = "/help/request/"
SENT = "/help/request/sent/"
SPAM = '<a href="http://evil.example/win">Claim your prize</a> BUY NOW {{7*7}}'


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    clear_rate_limits()
    settings.RATELIMIT_MANUAL_REQUEST_PER_IP = "1000/h"
    settings.RATELIMIT_MANUAL_REQUEST_PER_ADDRESS = "1000/d"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"
    yield
    clear_rate_limits()


def submit(**changes):
    data = {
        "student_first_name": "Quentin",
        "student_last_name": "Ó'Rourke-Đặng",
        "student_id": "482913",
        "request_type": "new_account",
        "request_for": "parent",
        "parent_first_name": "Wilhelmina",
        "parent_last_name": "Fairbanks",
        "parent_email": "Victim.Inbox@example.org",
        "comments": SPAM,
    }
    data.update(changes)
    return Client().post(FORM, data)


def settled(smtp_server, count):
    wait_until(
        lambda: OutboundEmail.objects.filter(status="sent").count() == count,
        message=lambda: f"{count} emails sent: {list(OutboundEmail.objects.values('status'))}",
    )
    return smtp_server.wait_for_messages(count)


def test_acknowledgement_is_fixed_text_with_the_reference(worker_process, smtp_server):
    response = submit()
    assert (response.status_code, response["Location"]) == (303, SENT)

    [message] = settled(smtp_server, 1)
    manual_request = ManualRequest.objects.get()
    assert message.rcpt_tos == ["Victim.Inbox@example.org"]  # as typed, the one answer address
    assert message.message["To"] == "Victim.Inbox@example.org"
    assert message.message["Cc"] is None and message.message["Bcc"] is None
    assert message.subject == f"We received your {settings.DISTRICT_NAME} portal help request"
    assert f"Reference: {manual_request.reference}" in message.text
    assert manual_request.reference in message.html
    assert message.message.get_content_type() == "multipart/alternative"
    # None of what was typed; no link; nothing about any account.
    for part in (message.text, message.html, message.subject):
        for typed in (
            "Quentin",
            "Rourke",
            "Đặng",
            "482913",
            "Wilhelmina",
            "Fairbanks",
            "evil",
            "prize",
            "BUY NOW",
            "{{",
        ):
            assert typed not in part
        assert "Username" not in part
    assert re.findall(r"https?://", message.text) == []
    assert "href=" not in message.html
    # The request itself is what staff get to see.
    assert manual_request.comments == SPAM


def test_header_injection_in_names_or_address_sends_nothing(worker_process, smtp_server):
    injected = [
        {"parent_first_name": "Jane\r\nBcc: attacker@y.example"},
        {"parent_last_name": "Doe\nCc: attacker@y.example"},
        {"parent_email": "victim@example.org\r\nBcc: attacker@y.example"},
        {"parent_email": "victim@example.org%0d%0aBcc:attacker@y.example"},
        {
            "student_email": "ana@example.org\nBcc: attacker@y.example",
            "request_for": "student",
            "parent_email": "",
        },
    ]
    for changes in injected:
        assert submit(**changes).status_code == 200  # the form's error, nothing stored
    assert not ManualRequest.objects.exists()

    # One clean request afterwards: exactly one recipient and no extra header.
    submit(parent_first_name="Jane", parent_email="victim@example.org")
    [message] = settled(smtp_server, 1)
    assert message.rcpt_tos == ["victim@example.org"]
    assert all("attacker" not in str(value) for value in message.message.values())


def test_markup_in_names_never_becomes_markup_in_the_email(worker_process, smtp_server):
    refused = submit(parent_first_name='<a href="http://evil.example/">Jane</a>')
    assert refused.status_code == 200
    assert '<a href="http://evil.example/">' not in refused.content.decode()

    submit(comments='<a href="http://evil.example/">Jane</a>')
    [message] = settled(smtp_server, 1)
    assert "evil.example" not in message.html and "<a " not in message.html


def test_a_real_and_a_random_student_id_read_and_mail_the_same(worker_process, smtp_server):
    from portal.models import Organisation, Student

    school = Organisation.objects.create(sourced_id="org-1", name="Lincoln", type="school")
    Student.objects.create(
        sourced_id="s-1",
        student_number="482913",
        given_name="Quentin",
        family_name="Ó'Rourke-Đặng",
        school=school,
    )
    real = submit(parent_email="a@example.org")
    unknown = submit(student_id="000000", parent_email="b@example.org")
    assert (real.status_code, real["Location"]) == (unknown.status_code, unknown["Location"])

    messages = settled(smtp_server, 2)
    bodies = {}
    for message in messages:
        reference = ManualRequest.objects.get(answer_address=message.rcpt_tos[0]).reference
        bodies[message.rcpt_tos[0]] = (message.subject, message.text.replace(reference, "R-REF"))
    assert bodies["a@example.org"] == bodies["b@example.org"]
    assert dict(ManualRequest.objects.values_list("student_id", "school_id")) == {
        "482913": "org-1",
        "000000": None,
    }
