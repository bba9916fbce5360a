"""The portal pages of issue 3 are pages like the others: accessible, self-contained, never
cached, with the security headers, every input labelled, and translated."""

import re

import pytest
from django.test import Client
from django.utils import timezone

from recovery.flows.self_serve import request_recovery_email_change
from tests.portal.family_helpers import make_family, make_student_user, send_confirmation_email
from tests.portal.test_pages import is_local, parse


@pytest.fixture(autouse=True)
def generous_limits(settings):
    settings.RATELIMIT_LANDING_PER_IP = "1000/m"
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1000/h"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"


@pytest.fixture
def parent(db, mailoutbox):
    user = make_family("fam-a", "Nguyen", email="rosa.nguyen@example.org").user
    user.recovery_email = user.recovery_email_normalised = "rosa.old@example.org"
    user.recovery_email_verified_at = timezone.now()
    user.save()
    return user


def page_responses(parent, language="en"):
    """(name, response) for every page of this journey, in `language`."""
    client = Client(headers={"accept-language": language})
    client.force_login(parent)
    yield "home", client.get("/portal/")
    yield "account", client.get("/portal/account/")
    yield "account error", client.post("/portal/account/", {"old_password": "x"})
    yield "contact changes", client.get("/portal/contact-changes/")
    yield "contact changes error", client.post("/portal/contact-changes/", {"phone": "no"})
    _, student = make_student_user()
    student_client = Client(headers={"accept-language": language})
    student_client.force_login(student)
    yield "student home", student_client.get("/portal/")
    request_recovery_email_change(user=parent, new_email="rosa.new@example.org", request=None)
    link = send_confirmation_email(parent)
    phone = Client(headers={"accept-language": language})
    phone.get(f"/portal/account/confirm-email/{link}/")
    yield "confirm", phone.get("/portal/account/confirm-email/")
    yield "confirmed", phone.post("/portal/account/confirm-email/")
    yield "link invalid", phone.get("/portal/account/confirm-email/")


def labelled_inputs_problems(html):
    problems = []
    labels = set(re.findall(r'<label[^>]+for="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if re.search(r'type="(hidden|submit)"', tag):
            continue
        match = re.search(r'\sid="([^"]+)"', tag)
        if not match or match.group(1) not in labels:
            problems.append(tag)
    return problems


def test_every_page_is_accessible_self_contained_and_uncached(parent):
    for name, response in page_responses(parent):
        assert response.status_code in (200, 400), name
        page = parse(response)
        html = response.content.decode()
        assert page.html_lang == "en", name
        assert {"header", "nav", "main", "footer"} <= page.landmarks, name
        assert len(re.findall(r"<h1[ >]", html)) == 1, name
        assert labelled_inputs_problems(html) == [], name
        for tag, attribute, url in page.urls:
            assert is_local(url), (name, tag, attribute, url)
        assert not page.inline_script and not page.inline_style and not page.handlers, name
        assert "no-store" in response["Cache-Control"], name
        assert response["Referrer-Policy"] == "same-origin", name
        assert "default-src 'self'" in response["Content-Security-Policy"], name
        assert "2014" not in html, name  # no birth date on any page
        for form in re.findall(r"<form\b[^>]*>", html):
            assert 'method="post"' in form, (name, form)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "es",
            {
                "home": "Sus estudiantes",
                "account": "Cambie su contraseña",
                "contact changes": "Cambie sus datos de contacto",
                "confirm": "Confirme esta dirección de correo",
                "link invalid": "Este enlace no funciona",
            },
        ),
        (
            "vi",
            {
                "home": "Học sinh của quý vị",
                "account": "Đổi mật khẩu của quý vị",
                "contact changes": "Thay đổi thông tin liên lạc của quý vị",
                "confirm": "Xác nhận địa chỉ email này",
                "link invalid": "Đường liên kết này không dùng được",
            },
        ),
    ],
)
def test_the_pages_follow_the_language(parent, language, expected):
    seen = dict(page_responses(parent, language))
    for name, text in expected.items():
        response = seen[name]
        assert parse(response).html_lang == language, name
        assert text in response.content.decode(), name
