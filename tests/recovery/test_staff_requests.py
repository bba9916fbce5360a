"""The staff queue, the request page and its actions through HTTP (in process): scope (O7),
escaping of everything families typed (O2), CSRF on every action, notes, the printable code
page. Delivery through a real worker and SMTP: test_staff_requests_delivery.py."""

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from recovery.models import (
    AuditEvent,
    IssuedToken,
    ManualRequest,
    ManualRequestEvent,
    OutboundEmail,
)
from tests.recovery.staff_helpers import sign_in_staff
from tests.recovery.staff_requests_helpers import (
    XSS_PAYLOADS,
    make_district,
    make_request,
)
from tests.recovery.username_reminder_helpers import clear_rate_limits

pytestmark = pytest.mark.django_db

NOTE = "Father came to the office with photo ID; address read back from his phone."
TYPED_FIELDS = (
    "student_first_name",
    "student_last_name",
    "student_id",
    "student_email",
    "parent_first_name",
    "parent_last_name",
    "parent_email",
    "comments",
    "answer_address",
)
ACTIONS = (
    "assign",
    "waiting",
    "resolve",
    "reject",
    "reset-link",
    "username-reminder",
    "issue-code",
    "unlock",
    "create-account",
)


@pytest.fixture(autouse=True)
def fresh_counters():
    clear_rate_limits()
    yield
    clear_rate_limits()


@pytest.fixture
def district():
    return make_district()


@pytest.fixture
def manual_request(district):
    return make_request(school=district.school_a)


def console(user, *, enforce_csrf=False):
    """A client signed in to the console (password + second factor, as staff do)."""
    client = sign_in_staff(Client(), user)
    if not enforce_csrf:
        return client
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies  # the same verified session, now checked like a browser
    return strict


def detail_url(manual_request):
    return reverse("staff:request_detail", args=[manual_request.reference])


def action_url(manual_request, action):
    return reverse("staff:request_action", args=[manual_request.reference, action])


def page_text(response):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def test_staff_home_goes_to_the_queue(district):
    response = console(district.staff_a).get("/staff/")
    assert response.status_code == 302
    assert response["Location"] == "/staff/requests/"


def test_anonymous_and_families_never_reach_the_queue(district, manual_request):
    for url in ("/staff/requests/", detail_url(manual_request)):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/staff/login/")
    response = Client().post(action_url(manual_request, "reset-link"), {"note": NOTE})
    assert response.status_code == 302 and response["Location"].startswith("/staff/login/")
    parent = Client()
    parent.force_login(district.rosa_account)
    assert parent.get("/staff/requests/").status_code == 403
    assert parent.get(detail_url(manual_request)).status_code == 403
    assert not OutboundEmail.objects.exists()


def test_queue_lists_status_age_school_type_and_filters(district, manual_request):
    other = make_request(
        school=district.school_a, request_type=ManualRequest.RequestType.NEW_ACCOUNT
    )
    done = make_request(school=district.school_a, status=ManualRequest.Status.RESOLVED)
    client = console(district.staff_a)
    response = client.get("/staff/requests/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert manual_request.reference in body and other.reference in body
    assert done.reference not in body  # open requests by default
    text = page_text(response)
    assert "Lincoln Elementary" in text and "New account" in text and "New" in text
    only_new = client.get("/staff/requests/", {"type": "new_account"}).content.decode()
    assert other.reference in only_new and manual_request.reference not in only_new
    closed = client.get("/staff/requests/", {"status": "resolved"}).content.decode()
    assert done.reference in closed and other.reference not in closed
    everything = client.get("/staff/requests/", {"status": "all"}).content.decode()
    assert all(r.reference in everything for r in (manual_request, other, done))
    # Nonsense filters are a form error, never a 500.
    assert client.get("/staff/requests/", {"status": "<x>", "school": "nope"}).status_code == 200


def test_queue_search_by_reference_name_and_student_id(district, manual_request):
    someone_else = make_request(
        school=district.school_a,
        student_first_name="Bao",
        student_last_name="Nguyễn",
        student_id="99887766",
        parent_first_name="Hoa",
        parent_last_name="Tran",
    )
    client = console(district.staff_a)

    def found(query):
        body = client.get("/staff/requests/", {"q": query}).content.decode()
        return {r.reference for r in (manual_request, someone_else) if r.reference in body}

    assert found("nguyễn") == {someone_else.reference}
    assert found("99887766") == {someone_else.reference}
    assert found(manual_request.reference.lower()) == {manual_request.reference}
    assert found("rosa") == {manual_request.reference}
    assert found("%") == set()  # LIKE wildcards are text, not patterns
    assert found("' OR 1=1 --") == set()
    assert client.get("/staff/requests/", {"q": "x" * 500}).status_code == 200


def test_assign_to_me_and_the_mine_filter(district, manual_request):
    unassigned = make_request(school=district.school_a)
    client = console(district.staff_a)
    response = client.post(action_url(manual_request, "assign"))
    assert response.status_code == 303
    manual_request.refresh_from_db()
    assert manual_request.assigned_to == district.staff_a
    assert manual_request.status == ManualRequest.Status.IN_PROGRESS
    mine = client.get("/staff/requests/", {"mine": "on"}).content.decode()
    assert manual_request.reference in mine and unassigned.reference not in mine
    assert AuditEvent.objects.filter(
        action="staff.request_assigned", actor=district.staff_a
    ).exists()


def test_scope_other_schools_requests_are_404_everywhere(district, manual_request):
    """Checklist O7: staff of another school get 404 on the request and on every action."""
    # No school, no roster match by ID or by name: every worker's to triage.
    unmatched = make_request(
        student_id="00000000", student_first_name="Zed", student_last_name="Nobody"
    )
    client = console(district.staff_b)
    queue = client.get("/staff/requests/").content.decode()
    assert manual_request.reference not in queue
    assert unmatched.reference in queue
    assert client.get(detail_url(manual_request)).status_code == 404
    assert (
        client.get(reverse("staff:request_code", args=[manual_request.reference])).status_code
        == 404
    )
    for action in ACTIONS:
        response = client.post(
            action_url(manual_request, action),
            {
                "note": NOTE,
                "account": district.rosa_account.pk,
                "guardian": district.luis.pk,
                "email": "luis.own@example.org",
            },
        )
        assert response.status_code == 404, action
    assert client.get(detail_url(unmatched)).status_code == 200
    # Filed under no school, but the roster match puts the student in school A: still 404.
    unfiled = make_request()
    assert unfiled.school is None
    assert client.get(detail_url(unfiled)).status_code == 404
    assert client.post(action_url(unfiled, "reset-link"), {"note": NOTE}).status_code == 404
    # Filed under no school with a wrong ID, but Ana's name: the match offers her accounts, so
    # it is school A's (and a supervisor's) business only.
    by_name = make_request(student_id="11112222")
    assert (
        console(district.supervisor)
        .get(detail_url(by_name))
        .content.decode()
        .count("Lincoln Elementary")
    )
    assert client.get(detail_url(by_name)).status_code == 404
    assert (
        client.post(
            action_url(by_name, "reset-link"), {"note": NOTE, "account": district.rosa_account.pk}
        ).status_code
        == 404
    )
    assert not OutboundEmail.objects.exists()
    assert not ManualRequestEvent.objects.exists()
    # Their own school's staff and a supervisor see it.
    assert console(district.staff_a).get(detail_url(manual_request)).status_code == 200
    assert console(district.supervisor).get(detail_url(manual_request)).status_code == 200
    assert console(district.supervisor).get(detail_url(unfiled)).status_code == 200


def test_unknown_reference_and_action_are_404(district, manual_request):
    client = console(district.supervisor)
    assert client.get("/staff/requests/NOPE/").status_code == 404
    assert client.post(action_url(manual_request, "delete-everything"), {}).status_code == 404
    assert client.get(action_url(manual_request, "reset-link")).status_code == 405


def test_every_typed_field_is_escaped_on_the_queue_and_the_request_page(district):
    """Checklist O2: script/HTML/template payloads in every typed field show as text."""
    for payload in XSS_PAYLOADS:
        manual_request = make_request(
            school=district.school_a, **{field: payload for field in TYPED_FIELDS}
        )
        client = console(district.supervisor)
        pages = [
            client.get("/staff/requests/").content.decode(),
            client.get("/staff/requests/", {"q": payload}).content.decode(),
            client.get(detail_url(manual_request)).content.decode(),
        ]
        for body in pages:
            assert "<script>alert" not in body
            assert "<img src=x" not in body
            assert 'href="javascript:' not in body and 'src="javascript:' not in body
        detail = pages[2]
        escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        escaped = escaped.replace('"', "&quot;")
        # Each typed field appears, escaped, on the request page (the match repeats some).
        assert detail.count(escaped) >= len(TYPED_FIELDS), payload
        if payload == "{{7*7}}":
            assert "{{7*7}}" in detail  # shown as typed, never evaluated
        ManualRequest.objects.filter(pk=manual_request.pk).delete()


def test_request_page_shows_the_match_reasons_accounts_and_history(district, manual_request):
    client = console(district.staff_a)
    client.post(action_url(manual_request, "assign"))
    response = client.get(detail_url(manual_request))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    text = page_text(response)
    assert "Student ID 20230417 matches" in text
    assert "rosa.garcia" in text and "Luis García" in text
    assert "Email shared with another guardian" in text  # why Luis has no account
    assert "Assigned · staff.lincoln" in text
    assert "2012" not in text and "030912" not in text  # never a birth date
    # The student has no Self Serve: the reset action is not offered, the reason is.
    assert "not available" in text and "Self Serve" in text


def test_csrf_is_required_on_every_action(district, manual_request):
    client = console(district.supervisor, enforce_csrf=True)
    for action in ACTIONS:
        response = client.post(
            action_url(manual_request, action),
            {"note": NOTE, "account": district.rosa_account.pk},
        )
        assert response.status_code == 403, action
    assert not OutboundEmail.objects.exists()
    assert not ManualRequestEvent.objects.exists()
    manual_request.refresh_from_db()
    assert manual_request.status == ManualRequest.Status.NEW


def test_actions_with_the_token_from_the_page_work(district, manual_request):
    client = console(district.staff_a, enforce_csrf=True)
    page = client.get(detail_url(manual_request)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    response = client.post(
        action_url(manual_request, "reset-link"),
        {"note": NOTE, "account": district.rosa_account.pk, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 303
    assert OutboundEmail.objects.get().kind == "password_reset"


def test_an_account_outside_the_match_is_refused(district, manual_request):
    stranger = make_district_stranger()
    client = console(district.supervisor)
    response = client.post(
        action_url(manual_request, "reset-link"),
        {"note": NOTE, "account": stranger.pk},
        follow=True,
    )
    assert "not part of this request" in page_text(response)
    assert not OutboundEmail.objects.exists()


def make_district_stranger():
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    return get_user_model().objects.create_user(
        username="someone.else",
        password=None,
        role="parent",
        recovery_email="someone@example.org",
        recovery_email_verified_at=timezone.now(),
        activated_at=timezone.now(),
    )


def test_create_account_is_refused_without_a_note(district, manual_request):
    client = console(district.staff_a)
    for note in ("", "   "):
        response = client.post(
            action_url(manual_request, "create-account"),
            {"guardian": district.luis.pk, "email": "luis.own@example.org", "note": note},
            follow=True,
        )
        assert response.status_code == 200
        assert "Write a note" in page_text(response)
    assert not type(district.rosa_account).objects.filter(guardian=district.luis).exists()
    assert not OutboundEmail.objects.exists()
    response = client.post(
        action_url(manual_request, "create-account"),
        {"guardian": district.luis.pk, "email": "luis.own@example.org", "note": NOTE},
    )
    assert response.status_code == 303
    assert type(district.rosa_account).objects.filter(guardian=district.luis).exists()


def test_printable_code_page_is_no_store_and_shown_once(district, manual_request):
    client = console(district.staff_a)
    response = client.post(
        action_url(manual_request, "issue-code"),
        {"note": NOTE, "account": district.student_account.pk},
    )
    code_url = reverse("staff:request_code", args=[manual_request.reference])
    assert response.status_code == 303 and response["Location"] == code_url
    first = client.get(code_url)
    assert first.status_code == 200
    assert "no-store" in first["Cache-Control"] and "private" in first["Cache-Control"]
    code = re.search(r'class="one-time-code">([^<]+)<', first.content.decode())[1]
    assert IssuedToken.objects.filter(user=district.student_account, purpose="staff_code").exists()
    assert "staff_print.css" in first.content.decode()
    again = client.get(code_url)
    assert again.status_code == 200 and "no-store" in again["Cache-Control"]
    assert code not in again.content.decode()
    assert "already shown" in page_text(again)
    # The code is in no log the console keeps: not the history, not the audit trail.
    assert code not in str(list(AuditEvent.objects.values())) + str(
        list(ManualRequestEvent.objects.values())
    )


def test_staff_never_see_a_password_field_for_families(district, manual_request):
    body = console(district.staff_a).get(detail_url(manual_request)).content.decode()
    assert 'type="password"' not in body
    assert "new_password" not in body


def test_bad_input_is_a_4xx_or_a_message_never_a_500(district, manual_request):
    client = console(district.supervisor)
    assert client.get("/staff/requests/R-%00/").status_code == 404
    assert client.post("/staff/requests/R-%00/act/assign/").status_code == 404
    assert client.get("/staff/requests/", {"q": "a\x00b", "page": "-1"}).status_code == 200
    token_shaped = "A" * 24 + ".abcd." + "B" * 24
    for note in ("a\x00b", f"sent {token_shaped}", "x" * 2001):
        response = client.post(
            action_url(manual_request, "reset-link"),
            {"note": note, "account": district.rosa_account.pk},
            follow=True,
        )
        assert response.status_code == 200
    for account in ("", "abc", "1 OR 1=1", "\x00", str(10**20)):
        response = client.post(
            action_url(manual_request, "unlock"), {"note": NOTE, "account": account}, follow=True
        )
        assert response.status_code == 200
        assert "not part of this request" in page_text(response)
    response = client.post(
        action_url(manual_request, "create-account"),
        {"note": NOTE, "guardian": district.luis.pk, "email": "luis@\x00example.org"},
        follow=True,
    )
    assert response.status_code == 200 and "valid email" in page_text(response)
    assert not OutboundEmail.objects.exists()
    assert not ManualRequestEvent.objects.exists()


@pytest.mark.parametrize(
    ("language", "heading"),
    [("es", "Lo que escribió la familia"), ("vi", "Những gì gia đình đã nhập")],
)
def test_staff_pages_are_translated(district, manual_request, language, heading):
    client = console(district.staff_a)
    response = client.get(detail_url(manual_request), HTTP_ACCEPT_LANGUAGE=language)
    assert heading in response.content.decode()
