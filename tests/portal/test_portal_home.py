"""The signed-in home (/portal/): a parent sees their own active children and contact details,
a student their own record, and nobody anything of another family, whatever they put in a URL."""

import pytest
from django.urls import reverse

from tests.portal.family_helpers import make_family, make_student_user


@pytest.fixture
def families(db):
    return (
        make_family("fam-a", "Nguyen", email="rosa.nguyen@example.org", phone="408-555-0101"),
        make_family("fam-b", "Okonkwo", email="rosa.okonkwo@example.org", phone="408-555-0202"),
    )


def test_a_parent_sees_their_active_children_and_own_contact_details(client, families):
    mine, _theirs = families
    client.force_login(mine.user)
    response = client.get("/portal/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    for child in mine.children:
        assert child.full_name in html
    assert "Lincoln Elementary" in html and "Roosevelt Middle" in html
    assert "05" in html and "08" in html
    assert "rosa.nguyen@example.org" in html and "408-555-0101" in html
    # Not the inactive child, and nothing of the other family.
    assert mine.inactive_child.full_name not in html
    assert "Okonkwo" not in html
    assert "rosa.okonkwo@example.org" not in html and "408-555-0202" not in html
    assert "2014" not in html  # no birth dates anywhere


@pytest.mark.parametrize(
    "path",
    [
        "/portal/?student={sid}",
        "/portal/?student_id={sid}&guardian={gid}",
        "/portal/?id={sid}",
        "/portal/?user={uid}",
        "/portal/students/{sid}/",
        "/portal/student/{sid}/",
        "/portal/children/{sid}/",
        "/portal/{sid}/",
        "/portal/guardians/{gid}/",
        "/portal/account/?user={uid}",
        "/portal/contact-changes/?user={uid}",
        "/portal/users/{uid}/",
    ],
)
def test_another_familys_child_cannot_be_reached_by_id_url_or_query(client, families, path):
    mine, theirs = families
    client.force_login(mine.user)
    url = path.format(
        sid=theirs.children[0].sourced_id, gid=theirs.guardian.sourced_id, uid=theirs.user.pk
    )
    response = client.get(url)
    assert response.status_code in (200, 404)
    html = response.content.decode()
    assert "Okonkwo" not in html
    assert "rosa.okonkwo@example.org" not in html
    assert "408-555-0202" not in html
    assert theirs.children[0].student_number not in html


def test_a_parent_with_no_linked_active_children_sees_none(client, families):
    mine, _ = families
    for child in mine.children:
        child.active = False
        child.save()
    client.force_login(mine.user)
    html = client.get("/portal/").content.decode()
    assert "No students are linked to your account" in html
    assert not any(child.full_name in html for child in mine.children)


def test_a_student_sees_only_their_own_record(client, families):
    record, user = make_student_user()
    client.force_login(user)
    response = client.get("/portal/")
    html = response.content.decode()
    assert response.status_code == 200
    assert record.full_name in html and "Lincoln Elementary" in html and "07" in html
    assert "2014" not in html and "03/09" not in html and "030914" not in html
    for family in families:
        assert family.guardian.email not in html
        assert not any(child.full_name in html for child in family.children)
    # A student has no contact-change page (their details are the school's to keep).
    assert client.get("/portal/contact-changes/").status_code == 403


def test_the_portal_needs_sign_in(client, db):
    for path in ("/portal/", "/portal/account/", "/portal/contact-changes/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
