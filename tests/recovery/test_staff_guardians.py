"""/staff/guardians/: guardians left without accounts, why, scoped to the staff member's
schools, names escaped, and the create-account action end to end (real worker and SMTP)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal.models import Guardian
from recovery.models import AuditEvent
from tests.recovery.staff_helpers import make_staff, sign_in_staff
from tests.recovery.staff_other_helpers import (
    XSS,
    XSS_ESCAPED,
    make_guardian,
    make_parent,
    make_two_schools,
)

LIST = reverse("staff:guardians")
NOTE = "Called the home phone in the SIS; the mother read the address back to me."


def guardian_url(guardian):
    return reverse("staff:guardian", kwargs={"sourced_id": guardian.pk})


def listed(response):
    return {guardian.pk for guardian in response.context["guardians"]}


def make_household(district):
    """Luis and Marta, Ana's guardians, both left out: they share one address in the SIS."""
    return [
        make_guardian(
            given=given,
            family="Garcia",
            students=[district.ana],
            email="home@example.org",
            shared=True,
            reason="shared_email",
        )
        for given in ("Luis", "Marta")
    ]


@pytest.fixture
def district(db):
    d = make_two_schools()
    d.luis, d.marta = make_household(d)
    d.nam = make_guardian(given="Nam", family="Tran", students=[d.ben], reason="no_email")
    # No active student: no school, so only supervisors see them.
    d.orphan = make_guardian(given="Olga", family="Petrova", reason="no_active_student")
    # Has an account: never listed.
    d.rosa = make_guardian(given="Rosa", family="Garcia", students=[d.ana], email="r@example.org")
    make_parent(d.rosa)
    return d


def test_scoped_staff_see_only_their_schools_guardians(client, district):
    sign_in_staff(client, district.staff_a)
    response = client.get(LIST)
    assert response.status_code == 200
    assert listed(response) == {district.luis.pk, district.marta.pk}
    assert response["Cache-Control"].count("no-store") == 1

    assert client.get(guardian_url(district.luis)).status_code == 200
    for other in (district.nam, district.orphan):
        assert client.get(guardian_url(other)).status_code == 404
        assert (
            client.post(
                guardian_url(other), {"email": "x@example.org", "verified_how": NOTE}
            ).status_code
            == 404
        )


def test_a_supervisor_sees_every_guardian_left_out_and_why(client, district):
    sign_in_staff(client, district.supervisor)
    response = client.get(LIST)
    assert listed(response) == {
        district.luis.pk,
        district.marta.pk,
        district.nam.pk,
        district.orphan.pk,
    }
    body = response.content.decode()
    assert "Email shared with another guardian" in body
    assert "No email in the SIS" in body
    assert "No active student" in body
    assert "Lincoln Elementary" in body and "Roosevelt Middle" in body


def test_a_student_who_left_takes_the_guardian_out_of_the_school_scope(client, district):
    district.ben.active = False
    district.ben.save()
    sign_in_staff(client, district.staff_b)
    assert listed(client.get(LIST)) == set()


def test_filters_by_reason_school_and_name(client, district):
    sign_in_staff(client, district.supervisor)
    assert listed(client.get(LIST, {"reason": "no_email"})) == {district.nam.pk}
    assert listed(client.get(LIST, {"school": district.lincoln.pk})) == {
        district.luis.pk,
        district.marta.pk,
    }
    assert listed(client.get(LIST, {"q": "marta garc"})) == {district.marta.pk}
    assert listed(client.get(LIST, {"q": "GARCIA", "reason": "no_email"})) == set()
    # A bad filter is a form error, never a 500, and filters nothing in by mistake.
    response = client.get(LIST, {"reason": "nonsense", "school": "no-such-school"})
    assert response.status_code == 200
    assert response.context["filter_form"].errors


def test_a_scoped_worker_cannot_filter_by_another_school(client, district):
    sign_in_staff(client, district.staff_a)
    response = client.get(LIST, {"school": district.roosevelt.pk})
    assert "school" in response.context["filter_form"].errors
    assert listed(response) <= {district.luis.pk, district.marta.pk}


def test_names_and_sis_values_are_shown_escaped(client, district):
    evil = make_guardian(
        given=XSS, family=XSS, students=[district.ana], email="", phone=XSS, reason="no_email"
    )
    sign_in_staff(client, district.staff_a)
    for url in (LIST, guardian_url(evil)):
        body = client.get(url).content.decode()
        assert XSS not in body
        assert XSS_ESCAPED in body


def test_staff_without_a_school_see_nobody(client, district):
    nobody = make_staff("no.schools")
    sign_in_staff(client, nobody)
    assert listed(client.get(LIST)) == set()
    assert client.get(guardian_url(district.luis)).status_code == 404


def test_create_account_needs_the_note_and_a_valid_address(client, district):
    sign_in_staff(client, district.staff_a)
    for data in (
        {"email": "luis.own@example.org", "verified_how": "  "},
        {"email": "not an address", "verified_how": NOTE},
        # The household address another guardian shares is refused by the flow.
        {"email": "home@example.org", "verified_how": NOTE},
    ):
        response = client.post(guardian_url(district.luis), data)
        assert response.status_code == 400
    assert not get_user_model().objects.filter(guardian=district.luis).exists()
    assert "Another guardian has this address" in response.content.decode()


def test_an_account_that_exists_offers_no_create_action(client, district):
    sign_in_staff(client, district.staff_a)
    body = client.get(guardian_url(district.rosa)).content.decode()
    assert "This guardian already has an account." in body
    assert 'name="verified_how"' not in body


def test_create_account_end_to_end(client, start_worker, smtp_server):
    district = make_two_schools()
    luis, _marta = make_household(district)
    start_worker()
    sign_in_staff(client, district.staff_a)

    response = client.post(
        guardian_url(luis), {"email": "Luis.Own@example.org", "verified_how": NOTE}
    )

    assert response.status_code == 303
    assert response["Location"] == guardian_url(luis)
    account = get_user_model().objects.get(guardian=luis)
    luis.refresh_from_db()
    assert luis.unprovisioned_reason == ""
    page = client.get(guardian_url(luis)).content.decode()
    assert account.username in page
    [message] = smtp_server.wait_for_messages(1)
    # Only the verified address, as typed by staff; never the shared household one.
    assert message.rcpt_tos == ["Luis.Own@example.org"]
    assert f"{account.username}" in message.text
    [event] = AuditEvent.objects.filter(action="staff.guardian_account_created")
    assert event.actor == district.staff_a
    assert event.subject == account
    assert event.detail["note"] == NOTE
    assert event.detail["left_out_because"] == Guardian.Unprovisioned.SHARED_EMAIL
    assert client.get(LIST).context["guardians"].__len__() == 1  # Marta is still left out
