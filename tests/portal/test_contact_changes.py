"""Contact-change requests (/portal/contact-changes/): stored for staff, status shown, bad input
gets a form error (never a 500), and a parent sees only their own requests."""

import pytest
from django.test import Client

from portal.models import ContactChangeRequest
from recovery.models import AuditEvent
from tests.portal.family_helpers import make_family

URL = "/portal/contact-changes/"


@pytest.fixture
def family(db):
    return make_family("fam-a", "Nguyen", email="rosa.nguyen@example.org")


@pytest.fixture
def signed_in(client, family):
    client.force_login(family.user)
    return client


def test_the_page_says_the_school_records_stay_the_official_copy(signed_in):
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "the school's records stay the official copy" in html
    assert "rosa.nguyen@example.org" in html  # what is on record now


def test_a_request_is_stored_per_field_pending_and_audited(signed_in, family):
    response = signed_in.post(
        URL,
        {"phone": " +1 (408) 555-0199 ext. 12 ", "email": "new@example.org", "details": "Flat 2"},
    )
    assert response.status_code == 302
    rows = {row.field: row for row in ContactChangeRequest.objects.filter(user=family.user)}
    assert {field: row.new_value for field, row in rows.items()} == {
        "phone": "+1 (408) 555-0199 ext. 12",
        "email": "new@example.org",
        "other": "Flat 2",
    }
    assert {row.status for row in rows.values()} == {"pending"}
    events = AuditEvent.objects.filter(action="contact_change.requested", subject=family.user)
    assert sorted(event.detail["field"] for event in events) == ["email", "other", "phone"]
    assert all("new@example.org" not in str(event.detail) for event in events)

    html = signed_in.get(URL).content.decode()
    assert "+1 (408) 555-0199 ext. 12" in html
    assert html.count("Waiting for review") == 3


def test_a_decision_and_its_reason_are_shown(signed_in, family):
    ContactChangeRequest.objects.create(user=family.user, field="phone", new_value="408-555-0111")
    ContactChangeRequest.objects.create(
        user=family.user,
        field="email",
        new_value="x@example.org",
        status="rejected",
        decision_reason="Please call the office to confirm.",
    )
    html = signed_in.get(URL).content.decode()
    assert "Waiting for review" in html
    assert "Not approved" in html and "Please call the office to confirm." in html


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"phone": "", "email": "", "details": "   "},
        {"phone": "call me maybe"},
        {"phone": "12"},
        {"phone": "408-555-0100\x00"},
        {"phone": "9" * 40},
        {"email": "not-an-email"},
        {"email": "a@b.org\r\nBcc: x@y.org"},
        {"email": "x" * 250 + "@example.org"},
        {"details": "x" * 1001},
        {"details": "hello\x1b[31m"},
        {"details": "invoice\u202egpj.exe"},
    ],
)
def test_bad_input_gets_a_form_error_and_stores_nothing(signed_in, family, data):
    response = signed_in.post(URL, data)
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode() or "alert-error" in (
        response.content.decode()
    )
    assert not ContactChangeRequest.objects.exists()


def test_what_a_parent_typed_is_escaped(signed_in):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert signed_in.post(URL, {"details": payload}).status_code == 302
    html = signed_in.get(URL).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_another_parents_requests_are_not_shown(signed_in, family, db):
    other = make_family("fam-b", "Okonkwo", email="rosa.okonkwo@example.org")
    ContactChangeRequest.objects.create(user=other.user, field="phone", new_value="408-555-0999")
    html = signed_in.get(f"{URL}?user={other.user.pk}").content.decode()
    assert "408-555-0999" not in html
    assert "You have not sent any requests." in html


def test_a_post_without_a_csrf_token_is_refused(family):
    client = Client(enforce_csrf_checks=True)
    client.force_login(family.user)
    assert client.post(URL, {"phone": "408-555-0100"}).status_code == 403
    assert not ContactChangeRequest.objects.exists()


def test_submissions_are_limited_per_account(signed_in, family, settings):
    from portal.contact_changes import SUBMISSIONS_ACTION, SUBMISSIONS_RATE
    from recovery import ratelimit

    ratelimit.reset(action=SUBMISSIONS_ACTION, key=str(family.user.pk), rate=SUBMISSIONS_RATE)
    for _ in range(10):
        assert signed_in.post(URL, {"phone": "408-555-0100"}).status_code == 302
    response = signed_in.post(URL, {"phone": "408-555-0100"})
    assert response.status_code == 429
    assert "Please try again in" in response.content.decode()
    assert ContactChangeRequest.objects.count() == 10
    ratelimit.reset(action=SUBMISSIONS_ACTION, key=str(family.user.pk), rate=SUBMISSIONS_RATE)
