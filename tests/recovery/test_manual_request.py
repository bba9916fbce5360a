"""The manual request form in process: validation per field, the honeypot, the rate limits,
password-looking comments (refused, never stored or logged), one sent page whatever was typed,
and what one accepted request writes. Delivery through a real worker and SMTP server is in
test_manual_request_delivery.py."""

import logging
import re
from html import unescape

import pytest
from django.test import Client

from portal.models import Organisation, Student
from recovery.flows.manual_request import REFERENCE_ALPHABET, new_reference
from recovery.manual_request_forms import looks_like_password
from recovery.models import AuditEvent, ManualRequest, ManualRequestEvent, OutboundEmail
from recovery.rendering import render_outbound_email
from tests.recovery.username_reminder_helpers import blank_csrf, clear_rate_limits

pytestmark = pytest.mark.django_db

FORM = "/help/request/"
SENT = "/help/request/sent/"
SPEC_FIELDS = [
    "student_first_name",
    "student_last_name",
    "student_id",
    "student_email",
    "request_type",
    "request_for",
    "parent_first_name",
    "parent_last_name",
    "parent_email",
    "comments",
]
SECRET_COMMENT = "Hi, my password: Zebra-Quartz-77 does not work"


def valid(**changes):
    data = {
        "student_first_name": "Ana",
        "student_last_name": "García-López",
        "student_id": "123456",
        "student_email": "",
        "request_type": "reset",
        "request_for": "parent",
        "parent_first_name": "María",
        "parent_last_name": "López",
        "parent_email": "maria.lopez@example.org",
        "comments": "We moved and the old email is gone.",
    }
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    clear_rate_limits()
    settings.RATELIMIT_MANUAL_REQUEST_PER_IP = "1000/h"
    settings.RATELIMIT_MANUAL_REQUEST_PER_ADDRESS = "1000/d"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"
    yield
    clear_rate_limits()


def post(data, **client_kwargs):
    return Client(**client_kwargs).post(FORM, data)


def errors(response):
    """{field name: [messages]} from the re-rendered form."""
    html = response.content.decode()
    found = {}
    for name, block in re.findall(
        r'<ul class="errorlist" id="id_(\w+)_error">(.*?)</ul>', html, re.S
    ):
        found[name] = [unescape(item) for item in re.findall(r"<li>(.*?)</li>", block)]
    return found


def nothing_stored():
    return (
        not ManualRequest.objects.exists()
        and not ManualRequestEvent.objects.exists()
        and not OutboundEmail.objects.exists()
    )


# --- The page -------------------------------------------------------------------------------


def test_form_has_exactly_the_spec_fields_the_warning_and_a_hidden_honeypot():
    html = Client().get(FORM).content.decode()

    names = set(re.findall(r'<(?:input|select|textarea)[^>]* name="(\w+)"', html)) - {
        "csrfmiddlewaretoken",
        "next",
        "language",
    }
    assert names == {*SPEC_FIELDS, "website"}
    assert "Never send a password in this form." in html
    honeypot = re.search(r'<div class="visually-hidden" aria-hidden="true">(.*?)</div>', html, re.S)
    assert honeypot and 'name="website"' in honeypot.group(1)
    assert 'tabindex="-1"' in honeypot.group(1)
    assert "Leave this field empty" in honeypot.group(1)
    assert 'value="reset"' in html and 'value="new_account"' in html
    assert 'value="parent"' in html and 'value="student"' in html


def test_problems_page_links_to_the_form():
    assert 'href="/help/request/"' in Client().get("/help/problems/").content.decode()


# --- Validation per field -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("student_first_name", "Type the student's first name."),
        ("student_last_name", "Type the student's last name."),
        ("student_id", "Type the student ID number."),
        ("request_type", "Choose what you need."),
        ("request_for", "Choose who the account is for."),
        ("parent_email", "Type the parent's email address: the confirmation goes there."),
    ],
)
def test_required_fields_have_their_own_error(field, message):
    response = post(valid(**{field: ""}))

    assert response.status_code == 200
    assert errors(response) == {field: [message]}
    assert nothing_stored()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("student_first_name", "A" * 101),
        ("student_last_name", "Ana<script>"),
        ("student_last_name", "Smith 3rd"),
        ("parent_first_name", "Jane\r\nBcc: attacker@y.example"),
        ("parent_last_name", "\u202eevil"),
        ("student_first_name", "Ana 😀"),
        ("student_first_name", "---"),
        ("student_id", "12 34"),
        ("student_id", "1234$"),
        ("student_id", "1" * 33),
        ("student_id", "١٢٣"),  # Arabic-Indic digits: not what the SIS prints
        ("student_email", "ana@students"),
        ("parent_email", "a@example.org, b@example.org"),
        ("parent_email", "m@example.org\r\nBcc: attacker@y.example"),
        ("parent_email", "José <jose@example.org>"),
        ("parent_email", "josé@example.org"),
        ("comments", "x" * 2001),
        ("comments", "bell \x07 ring"),
        ("request_type", "everything"),
        ("request_for", "teacher"),
    ],
)
def test_bad_values_get_a_form_error_and_store_nothing(field, value):
    response = post(valid(**{field: value}))

    assert response.status_code == 200
    assert list(errors(response)) == [field]
    assert nothing_stored()


@pytest.mark.parametrize("field", SPEC_FIELDS)
@pytest.mark.parametrize("value", ["x" * 20_000, "a\x00b", "😀" * 50, "\ufeff\u200b"])
def test_hostile_input_is_never_a_500(field, value):
    response = post(valid(**{field: value}))

    assert response.status_code in (200, 303, 400)
    if response.status_code == 303:
        assert response["Location"] == SENT


def test_bytes_that_are_not_utf8_are_never_a_500():
    body = "&".join(f"{name}=%FF%FE%ED%A0%80" for name in SPEC_FIELDS)

    response = Client().post(FORM, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code in (200, 400)
    assert nothing_stored()


def test_names_with_accents_apostrophes_and_vietnamese_letters_are_fine():
    response = post(
        valid(
            student_first_name="Đặng Thị",
            student_last_name="O\u2019Brien-Nguyễn",
            parent_first_name="Zoë",
            parent_last_name="d'Arc",
            comments="Thanks 😀",
        )
    )

    assert (response.status_code, response["Location"]) == (303, SENT)
    assert ManualRequest.objects.get().student_last_name == "O\u2019Brien-Nguyễn"


def test_a_field_sent_twice_is_an_error_not_the_last_value():
    data = valid()
    data["student_id"] = ["123456", "654321"]

    response = post(data)

    assert errors(response) == {"student_id": ["Fill in this field once."]}
    assert nothing_stored()


def test_request_for_a_student_may_be_answered_at_the_students_email():
    response = post(
        valid(
            request_for="student",
            parent_first_name="",
            parent_last_name="",
            parent_email="",
            student_email="Ana.G@students.example.org",
        )
    )

    assert response.status_code == 303
    assert ManualRequest.objects.get().answer_address == "Ana.G@students.example.org"
    assert OutboundEmail.objects.get().to_address == "Ana.G@students.example.org"


def test_request_for_a_student_without_any_email_asks_for_one():
    response = post(valid(request_for="student", parent_email="", student_email=""))

    assert errors(response) == {
        "parent_email": [
            "Type an email address for the confirmation: the parent's, or the student's."
        ]
    }


def test_the_parent_email_is_the_answer_address_even_for_a_student():
    post(valid(request_for="student", student_email="ana@students.example.org"))

    assert ManualRequest.objects.get().answer_address == "maria.lopez@example.org"


def test_typed_payloads_are_escaped_when_the_form_comes_back():
    response = post(valid(student_first_name='<a href="http://evil.example/">x</a>', student_id=""))

    html = response.content.decode()
    assert '<a href="http://evil.example/">' not in html
    assert "&lt;a href=&quot;http://evil.example/&quot;&gt;" in html


# --- Password-looking comments --------------------------------------------------------------

PASSWORD_SHAPES = [
    "password: hunter2",
    "Password:hunter2",
    "my PASSWORD = abc",
    "pw=Secret1",
    "pwd: x",
    "pwd Abc123!",
    "passwd: letmein",
    "pass word: letmein",
    "the password for Ana is Tiger2020",
    "her password is 'sunshine'",
    "Contraseña: Perro123",
    "mi contrasena es Gato2019",
    "clave: 1234",
    "Mật khẩu: abc123",
    "mat khau la Hoa2015",
    "mk: 123456",
    "default password AG030912",
    "she types ag030912 every time",
    "new password -> Tr0ub4dor",
]
NOT_PASSWORDS = [
    "I forgot my password.",
    "My password is not working since Monday.",
    "Password reset please, the link expired",
    "Olvidé mi contraseña y no llega el correo.",
    "Tôi quên mật khẩu.",
    "We need a new account for our second child (grade 3).",
    "Student ID is 123456, she is in room 12.",
    "The passwords page says error 500",
]


@pytest.mark.parametrize("comment", PASSWORD_SHAPES)
def test_password_shapes_are_recognised(comment):
    assert looks_like_password(comment)


@pytest.mark.parametrize("comment", NOT_PASSWORDS)
def test_ordinary_comments_are_not_mistaken_for_passwords(comment):
    assert not looks_like_password(comment)


def test_password_looking_comment_is_refused_not_stored_not_echoed_not_logged(caplog):
    caplog.set_level(logging.DEBUG)

    response = post(valid(comments=SECRET_COMMENT))

    assert response.status_code == 200
    assert errors(response) == {
        "comments": [
            "This looks as if it contains a password. Never send a password in this form: "
            "delete it and describe the problem instead."
        ]
    }
    html = response.content.decode()
    assert "Zebra-Quartz-77" not in html
    assert 'value="García-López"' in html  # the rest of what was typed stays for the retry
    assert nothing_stored()
    [event] = AuditEvent.objects.all()
    assert event.action == "manual_request.password_refused"
    assert "Zebra" not in str(event.detail) and event.identifier_hash == ""
    assert "Zebra-Quartz-77" not in caplog.text
    assert not any("Zebra" in str(record.args) for record in caplog.records)


# --- The honeypot, the rate limits, the constant page ---------------------------------------


def test_honeypot_gets_the_sent_page_and_stores_nothing():
    response = post(valid(website="http://spam.example/"))

    assert (response.status_code, response["Location"]) == (303, SENT)
    assert nothing_stored()
    assert not AuditEvent.objects.exists()


def test_per_ip_limit_gives_the_429_page(settings):
    settings.RATELIMIT_MANUAL_REQUEST_PER_IP = "3/h"
    statuses = [
        post(valid(parent_email=f"p{n}@example.org"), REMOTE_ADDR="192.0.2.7").status_code
        for n in range(4)
    ]

    assert statuses == [303, 303, 303, 429]
    response = post(valid(parent_email="late@example.org"), REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Please try again in" in response.content.decode()
    assert ManualRequest.objects.count() == 3
    # Another network is not held back.
    assert post(valid(), REMOTE_ADDR="198.51.100.9").status_code == 303


def test_per_address_limit_counts_the_normalised_answer_address(settings):
    settings.RATELIMIT_MANUAL_REQUEST_PER_ADDRESS = "2/d"
    spellings = ["victim@example.org", "VICTIM@example.org", " Victim@Example.org"]
    statuses = [
        post(valid(parent_email=address), REMOTE_ADDR=f"192.0.2.{n}").status_code
        for n, address in enumerate(spellings, start=1)
    ]

    assert statuses == [303, 303, 429]
    assert OutboundEmail.objects.count() == 2


def signature(data):
    """What a browser could observe of one POST (checklist A1): status, Location, header and
    cookie names, and the page it lands on with the CSRF token blanked."""
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="192.0.2.10")
    client.get(FORM)
    token = client.cookies["csrftoken"].value
    response = client.post(FORM, {**data, "csrfmiddlewaretoken": token})
    landed = client.get(response["Location"])
    return (
        response.status_code,
        response["Location"],
        tuple(sorted(name.lower() for name in response.headers)),
        tuple(sorted(response.cookies)),
        landed.status_code,
        blank_csrf(landed.content.decode()),
    )


def test_sent_page_is_the_same_for_a_real_student_id_and_a_random_one():
    school = Organisation.objects.create(sourced_id="org-1", name="Lincoln", type="school")
    Student.objects.create(
        sourced_id="s-1",
        student_number="123456",
        given_name="Ana",
        family_name="García-López",
        school=school,
    )

    real = signature(valid(student_id="123456"))
    random_id = signature(valid(student_id="Q9X-000417"))
    honeypot = signature(valid(student_id="123456", website="x"))

    assert real == random_id == honeypot
    assert real[0] == 303 and "R-" not in real[-1]
    rows = dict(ManualRequest.objects.values_list("student_id", "school_id"))
    assert rows == {"123456": "org-1", "Q9X-000417": None}


# --- What an accepted request writes --------------------------------------------------------


def test_an_accepted_request_is_stored_with_history_audit_and_acknowledgement():
    response = post(valid(student_id=" 123456 "), HTTP_ACCEPT_LANGUAGE="vi")

    assert (response.status_code, response["Location"]) == (303, SENT)
    manual_request = ManualRequest.objects.get()
    assert manual_request.student_id == "123456"
    assert manual_request.status == ManualRequest.Status.NEW
    assert manual_request.language == "vi"
    assert manual_request.comments == "We moved and the old email is gone."
    assert re.fullmatch(
        rf"R-[{REFERENCE_ALPHABET}]{{4}}-[{REFERENCE_ALPHABET}]{{4}}", manual_request.reference
    )
    assert manual_request.ip_hash and "192" not in manual_request.ip_hash
    assert list(manual_request.events.values_list("action", flat=True)) == ["received"]
    [event] = AuditEvent.objects.filter(action="manual_request.received")
    assert event.detail == {
        "manual_request": manual_request.pk,
        "request_type": "reset",
        "request_for": "parent",
    }
    assert "maria" not in str(event.detail).lower()
    [email] = OutboundEmail.objects.all()
    assert (email.kind, email.to_address, email.language, email.context) == (
        "manual_request_received",
        "maria.lopez@example.org",
        "vi",
        {"reference": manual_request.reference},
    )
    assert email.user is None and email.token_purpose == ""


def test_two_students_sharing_a_number_file_the_request_under_no_school():
    for n in (1, 2):
        school = Organisation.objects.create(sourced_id=f"org-{n}", name=f"S{n}", type="school")
        Student.objects.create(
            sourced_id=f"s-{n}",
            student_number="777",
            given_name="A",
            family_name="B",
            school=school,
        )

    post(valid(student_id="777"))

    assert ManualRequest.objects.get().school_id is None


def test_references_are_random_and_unambiguous():
    references = {new_reference() for _ in range(2000)}

    assert len(references) == 2000
    assert not set("".join(references)) & set("01ILOSUV5")


@pytest.mark.parametrize("language", ["en", "es", "vi"])
@pytest.mark.parametrize(
    "kind", ["manual_request_received", "manual_request_resolved", "manual_request_rejected"]
)
def test_request_emails_are_fixed_text_with_the_reference_only(kind, language):
    email = OutboundEmail.objects.create(
        kind=kind,
        to_address="m@example.org",
        context={"reference": "R-7KQ4-M2XP"},
        language=language,
    )

    rendered = render_outbound_email(email)

    assert "R-7KQ4-M2XP" in rendered.text and "R-7KQ4-M2XP" in rendered.html
    assert "R-7KQ4-M2XP" not in rendered.subject
    for part in (rendered.text, rendered.html):
        assert "http" not in part and "href" not in part
    if language != "en":
        assert "School staff" not in rendered.text


@pytest.mark.parametrize("path", [FORM, SENT])
def test_pages_have_labels_and_no_inline_script_or_style(path):
    html = Client().get(path).content.decode()

    assert "<script" not in html and "style=" not in html and " on" + "click" not in html
    for control_id in re.findall(r'<(?:input|select|textarea)[^>]* id="(id_\w+)"', html):
        assert f'for="{control_id}"' in html, control_id


def test_an_invalid_form_lists_each_error_with_a_link_to_its_field():
    html = post(valid(student_id="", request_type="")).content.decode()

    summary = re.search(
        r'<div class="alert alert-error error-summary" role="alert".*?</div>', html, re.S
    )
    assert summary
    assert 'href="#id_student_id"' in summary.group(0)
    assert 'href="#id_request_type_0"' in summary.group(0)
