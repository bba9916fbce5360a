"""The login journey's pages: self-contained, labelled, translated, never cached; the wiring."""

import re

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from portal.services import user_set_password
from tests.portal.login_helpers import (
    DEFAULT,
    clean_login_counters,  # noqa: F401 (fixture)
    make_parent,
    make_student,
    sign_in,
)
from tests.portal.test_pages import is_local, parse

pytestmark = pytest.mark.usefixtures("clean_login_counters")


@pytest.fixture
def pages(client, db):
    def responses():
        yield "code page", client.get(reverse("student_code"))
        yield (
            "code page, refused",
            client.post(
                reverse("student_code"),
                {"username": "1234567", "code": "x", "new_password1": "a", "new_password2": "a"},
            ),
        )
        make_student()
        sign_in(client, "4815162", DEFAULT)
        yield "change page", client.get(reverse("first_login_change"))
        yield (
            "change page, refused",
            client.post(
                reverse("first_login_change"), {"new_password1": DEFAULT, "new_password2": DEFAULT}
            ),
        )

    return responses()


def test_the_pages_are_self_contained_labelled_and_never_cached(pages):
    for name, response in pages:
        assert response.status_code == 200, name
        page, html = parse(response), response.content.decode()
        assert not page.inline_script and not page.inline_style and not page.handlers, name
        assert all(is_local(url) for _, _, url in page.urls), name
        assert "no-store" in response["Cache-Control"], name
        for field in re.findall(r'<input[^>]+id="(id_[a-z0-9_]+)"', html):
            assert f'for="{field}"' in html, (name, field)
        assert 'id="password-rules"' in html, name  # the rules, before the person types
        assert DEFAULT not in html, name  # never echoed, never shown


@pytest.mark.parametrize(
    ("language", "heading"),
    [("es", "Cree su contraseña con un código"), ("vi", "Đặt mật khẩu bằng mã")],
)
def test_the_code_page_is_translated(client, db, language, heading):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
    assert heading in client.get(reverse("student_code")).content.decode()


def test_failure_replies_are_translated(client, db):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "es"
    response = sign_in(client, "nobody.here", "wrong password 1")
    assert "El nombre de usuario o la contraseña no son correctos" in response.content.decode()


def test_the_portal_backend_and_the_forced_change_are_wired_in():
    assert django_settings.AUTHENTICATION_BACKENDS == ["portal.backends.PortalBackend"]
    middleware = django_settings.MIDDLEWARE
    assert middleware.index("portal.middleware.ForcePasswordChangeMiddleware") > middleware.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    )


def test_a_password_typed_in_another_unicode_form_signs_in(client, db):
    # H7: the backend checks the NFKC form, as user_set_password stores it.
    parent = make_parent()
    user_set_password(user=parent, password="mañana 🦊 tacos en la playa")
    decomposed = "man\u0303ana 🦊 tacos en la playa"
    assert sign_in(client, "parent.one", decomposed).status_code == 302


def test_a_long_password_is_verified_whole(client, db):
    # H8: nothing is truncated (Argon2 has no 72-byte limit, unlike bcrypt).
    parent = make_parent()
    password = "a long passphrase that goes on " * 4
    user_set_password(user=parent, password=password)
    assert sign_in(client, "parent.one", password[:72]).status_code == 200
    assert sign_in(client, "parent.one", password).status_code == 302
