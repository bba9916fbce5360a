"""/staff/contact-changes/: pending first, scoped, typed values escaped; approve and reject
end to end through a real worker and SMTP (fixed text to the notice address, the reason
escaped in HTML), each decision audited; refusals change nothing."""

import pytest
from django.urls import reverse

from portal.models import ContactChangeRequest
from recovery.flows import contact_change_review
from recovery.models import AuditEvent, OutboundEmail
from tests.recovery.staff_helpers import sign_in_staff
from tests.recovery.staff_other_helpers import (
    XSS,
    XSS_ESCAPED,
    make_guardian,
    make_parent,
    make_two_schools,
)

LIST = reverse("staff:contact_changes")
ROSA_OWN = "Rosa.Own@example.org"
NEW_EMAIL = "rosa.new@example.org"


def detail_url(change):
    return reverse("staff:contact_change", kwargs={"pk": change.pk})


def change_for(parent, *, field="email", value=NEW_EMAIL, **fields):
    return ContactChangeRequest.objects.create(user=parent, field=field, new_value=value, **fields)


def build(district):
    district.rosa = make_guardian(
        given="Rosa",
        family="Garcia",
        students=[district.ana],
        email="rosa.sis@example.org",
        phone="408-555-0100",
    )
    district.rosa_account = make_parent(district.rosa, recovery_email=ROSA_OWN, language="es")
    district.tuan = make_guardian(given="Tuan", family="Tran", students=[district.ben])
    district.tuan_account = make_parent(district.tuan, recovery_email="tuan@example.org")
    return district


@pytest.fixture
def district(db):
    return build(make_two_schools())


def listed(response):
    return [change.pk for change in response.context["changes"]]


def test_pending_first_then_newest_and_scoped(client, district):
    decided = change_for(district.rosa_account, status="approved")
    older = change_for(district.rosa_account, field="phone", value="408-555-0199")
    newer = change_for(district.rosa_account)
    elsewhere = change_for(district.tuan_account)

    sign_in_staff(client, district.staff_a)
    response = client.get(LIST)
    assert response.status_code == 200
    assert listed(response) == [newer.pk, older.pk, decided.pk]
    assert '<select name="status"' in response.text  # the filter form
    assert client.get(detail_url(elsewhere)).status_code == 404
    assert client.post(detail_url(elsewhere), {"decision": "approve"}).status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.status == "pending"

    assert listed(client.get(LIST, {"status": "approved"})) == [decided.pk]


def test_a_supervisor_sees_every_school(client, district):
    mine = change_for(district.rosa_account)
    theirs = change_for(district.tuan_account)
    sign_in_staff(client, district.supervisor)
    assert set(listed(client.get(LIST))) == {mine.pk, theirs.pk}


def test_typed_values_are_shown_escaped(client, district):
    change = change_for(district.rosa_account, field="other", value=XSS)
    sign_in_staff(client, district.staff_a)
    for url in (LIST, detail_url(change)):
        body = client.get(url).content.decode()
        assert XSS not in body
        assert XSS_ESCAPED in body


def test_the_page_says_staff_update_the_sis_and_shows_the_value_on_record(client, district):
    change = change_for(district.rosa_account, field="phone", value="408-555-0199")
    sign_in_staff(client, district.staff_a)
    body = client.get(detail_url(change)).content.decode()
    assert "update the SIS yourself" in body
    assert "408-555-0100" in body  # what the SIS holds now, to compare


def test_reject_needs_a_reason_without_links_and_a_decision_is_final(client, district):
    change = change_for(district.rosa_account)
    sign_in_staff(client, district.staff_a)
    for data in (
        {"decision": "reject", "reason": "   "},
        {"decision": "reject", "reason": "See https://evil.example/x"},
        {"decision": "reject", "reason": "x" * 501},
        {"decision": "maybe"},
        {},
    ):
        assert client.post(detail_url(change), data).status_code == 400
    change.refresh_from_db()
    assert change.status == "pending"
    assert not OutboundEmail.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="staff.contact_change").exists()

    assert client.post(detail_url(change), {"decision": "approve"}).status_code == 303
    response = client.post(detail_url(change), {"decision": "reject", "reason": "No."})
    assert response.status_code == 400
    assert "already been decided" in response.content.decode()
    change.refresh_from_db()
    assert change.status == "approved"
    assert OutboundEmail.objects.count() == 1


def test_no_notice_address_no_email_and_staff_are_told(client, district):
    # Only a household address shared with another guardian: no notice may go there.
    shared = make_guardian(
        given="Luis",
        family="Garcia",
        students=[district.ana],
        email="home@example.org",
        shared=True,
    )
    make_guardian(given="Marta", family="Garcia", email="home@example.org", shared=True)
    parent = make_parent(shared)
    change = change_for(parent)
    sign_in_staff(client, district.staff_a)
    response = client.post(detail_url(change), {"decision": "approve"}, follow=True)
    assert "tell them another way" in response.content.decode()
    assert not OutboundEmail.objects.exists()
    [event] = AuditEvent.objects.filter(action="staff.contact_change_approved")
    assert event.detail["parent_told"] is False


def test_approve_end_to_end(client, start_worker, smtp_server):
    district = build(make_two_schools())
    change = change_for(district.rosa_account)
    start_worker()
    sign_in_staff(client, district.staff_a)

    response = client.post(detail_url(change), {"decision": "approve"})

    assert response.status_code == 303
    change.refresh_from_db()
    assert change.status == "approved"
    assert change.decided_by == district.staff_a and change.decided_at is not None
    [message] = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ROSA_OWN]  # the notice address, never the value asked for
    for part in (message.subject, message.text, message.html):
        assert NEW_EMAIL not in part
        assert "Rosa" not in part and "Ana" not in part
    assert "aprob" in message.text.lower()  # in Rosa's language (es)
    [event] = AuditEvent.objects.filter(action="staff.contact_change_approved")
    assert event.actor == district.staff_a and event.subject == district.rosa_account
    assert event.detail == {"contact_change": change.pk, "field": "email", "parent_told": True}


def test_reject_end_to_end_with_the_reason_escaped(client, start_worker, smtp_server):
    district = build(make_two_schools())
    district.rosa_account.language = "en"
    district.rosa_account.save()
    change = change_for(district.rosa_account, field="phone", value="408-555-0199")
    reason = "We could not reach you <b>by phone</b> & the SIS number is different."
    start_worker()
    sign_in_staff(client, district.staff_a)

    response = client.post(detail_url(change), {"decision": "reject", "reason": reason})

    assert response.status_code == 303
    change.refresh_from_db()
    assert (change.status, change.decision_reason) == ("rejected", reason)
    [message] = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == [ROSA_OWN]
    assert "not approved" in message.subject
    assert reason in message.text
    assert "We could not reach you &lt;b&gt;by phone&lt;/b&gt; &amp; the SIS" in message.html
    assert "<b>by phone</b>" not in message.html
    assert "your phone number" in message.text
    assert "408-555-0199" not in message.text + message.html
    [event] = AuditEvent.objects.filter(action="staff.contact_change_rejected")
    assert event.actor == district.staff_a
    assert event.detail["reason"] == reason


def test_flow_refuses_a_decided_change(district):
    change = change_for(district.rosa_account, status="rejected")
    with pytest.raises(contact_change_review.ReviewRefused):
        contact_change_review.approve_contact_change(change=change, staff=district.staff_a)


@pytest.mark.parametrize(
    ("language", "words"),
    [("vi", "không được chấp thuận"), ("es", "No se aprobó"), ("en", "was not approved")],
)
def test_the_rejection_email_in_each_language(district, language, words):
    from recovery.rendering import render_outbound_email

    district.rosa_account.language = language
    district.rosa_account.save()
    change = change_for(district.rosa_account, field="other", value="new address")
    contact_change_review.reject_contact_change(
        change=change, staff=district.staff_a, reason="<i>Llame</i> a la escuela."
    )
    [email] = OutboundEmail.objects.all()
    assert (email.kind, email.to_address, email.language) == (
        "contact_change_rejected",
        ROSA_OWN,
        language,
    )
    assert email.context == {"field": "other", "reason": "<i>Llame</i> a la escuela."}
    rendered = render_outbound_email(email)
    assert words in rendered.subject
    assert "&lt;i&gt;Llame&lt;/i&gt;" in rendered.html and "<i>" not in rendered.html
    assert "new address" not in rendered.text + rendered.html
