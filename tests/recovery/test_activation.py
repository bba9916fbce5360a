"""Activation (issue 3 item 2; checklist C, E, F, G, L): the link → set-password → done."""

import re
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib import auth
from django.db import connections, transaction
from django.http import HttpRequest
from django.test import Client, override_settings
from django.utils import timezone

from portal.models import Guardian, Student, User
from portal.provisioning import queue_welcome_email
from recovery import ratelimit, tokens
from recovery.landing import SESSION_KEY_PREFIX
from recovery.models import AuditEvent, IssuedToken, OutboundEmail
from tests.support.waiting import wait_until

SIS_EMAIL = "Maria.Garcia@example.org"  # mixed case: mail goes to it as stored
PASSWORD = "purple orbit juniper lantern"
SET_PASSWORD = "/activate/set-password/"
DONE = "/activate/done/"
FORGOT_PASSWORD = "/help/forgot-password/"
SCANNER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36"
)
INVALID_HEADING = "This activation link cannot be used"


@pytest.fixture(autouse=True)
def fresh_landing_limit():
    """Landing counters live in Redis per IP and minute: start each test with a clean window."""
    from recovery.app_settings import app_settings

    ratelimit.reset(
        action="landing.activation.ip", key="127.0.0.1", rate=app_settings.RATELIMIT_LANDING_PER_IP
    )


def make_provisioned_parent(username="mgarcia"):
    guardian = Guardian.objects.create(
        sourced_id=f"g-{username}",
        given_name="María",
        family_name="García",
        email=SIS_EMAIL,
        email_normalised=SIS_EMAIL.lower(),
        role=Guardian.Role.PARENT,
    )
    user = User.objects.create_user(
        username=username,
        role=User.Role.PARENT,
        guardian=guardian,
        first_name="María",
        last_name="García",
        email=SIS_EMAIL,
        provisioned_at=timezone.now(),
        welcome_sent_to=SIS_EMAIL,
    )
    assert not user.has_usable_password()
    return user


def link_path(token):
    return f"/activate/{token}/"


def land(client, token, **extra):
    return client.get(link_path(token), **extra)


def activate(client, password=PASSWORD, password2=None):
    return client.post(
        SET_PASSWORD, {"new_password1": password, "new_password2": password2 or password}
    )


def signed_in_user(client):
    request = HttpRequest()
    request.session = client.session
    return auth.get_user(request)


def token_row(user):
    return IssuedToken.objects.get(user=user, purpose="activation")


def assert_nothing_changed(user):
    user.refresh_from_db()
    assert user.activated_at is None
    assert not user.has_usable_password()
    assert user.recovery_email_verified_at is None
    assert token_row(user).used_at is None
    assert not OutboundEmail.objects.exists()


def assert_invalid_page(response, status=200):
    assert response.status_code == status
    body = response.content.decode()
    assert INVALID_HEADING in body
    assert f'href="{FORGOT_PASSWORD}"' in body
    assert "new_password1" not in body


@pytest.fixture
def parent(db):
    return make_provisioned_parent()


@pytest.fixture
def token(parent):
    return tokens.mint(user=parent, purpose="activation")


# --- opening the link changes nothing (F1-F4) ---------------------------------------------------


def test_the_landing_moves_the_token_into_the_session_and_redirects_without_it(parent, token):
    client = Client()
    response = land(client, token)
    assert response.status_code == 302
    assert response["Location"] == SET_PASSWORD
    assert token not in response["Location"]
    assert "no-store" in response["Cache-Control"]
    assert client.session[SESSION_KEY_PREFIX + "activation"] == token

    page = client.get(SET_PASSWORD)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    assert page["Referrer-Policy"] == "same-origin"
    body = page.content.decode()
    assert token not in body
    assert_nothing_changed(parent)


def test_scanners_heads_and_gets_change_nothing(parent, token):
    for _ in range(3):
        assert Client().head(link_path(token), HTTP_USER_AGENT=SCANNER_UA).status_code == 302
    for _ in range(3):
        scanner = Client()
        response = land(scanner, token, HTTP_USER_AGENT=SCANNER_UA, follow=True)
        assert response.status_code == 200
        assert not signed_in_user(scanner).is_authenticated  # F3: no session for the scanner
    assert_nothing_changed(parent)
    assert not AuditEvent.objects.exists()

    person = Client()  # F4: not bound to whoever opened it first
    land(person, token)
    assert activate(person)["Location"] == DONE
    parent.refresh_from_db()
    assert parent.activated_at is not None


def test_the_form_shows_the_rules_before_typing(parent, token):
    client = Client()
    land(client, token)
    body = client.get(SET_PASSWORD).content.decode()
    assert body.index('id="password-rules"') < body.index('name="new_password1"')
    assert "at least 12 characters" in body
    assert body.count('autocomplete="new-password"') == 2
    assert body.count('aria-describedby="password-rules"') == 2
    assert 'type="password"' in body
    assert 'method="post"' in body
    assert "mgarcia" in body  # the username, for the person and their password manager


# --- completing it ----------------------------------------------------------------------------


def test_activation_sets_the_password_verifies_the_email_and_uses_the_link(parent, token):
    client = Client()
    land(client, token)
    response = activate(client)
    assert response.status_code == 302
    assert response["Location"] == DONE

    parent.refresh_from_db()
    assert parent.check_password(PASSWORD)
    assert parent.password.startswith("argon2$")
    assert parent.activated_at is not None
    assert parent.password_changed_at is not None
    assert parent.recovery_email == SIS_EMAIL  # as stored: Self Serve is set up
    assert parent.recovery_email_normalised == SIS_EMAIL.lower()
    assert parent.recovery_email_verified_at is not None
    assert parent.has_self_serve
    assert token_row(parent).used_at is not None
    assert SESSION_KEY_PREFIX + "activation" not in client.session

    # G2: no automatic sign-in.
    assert not signed_in_user(client).is_authenticated
    assert client.get("/portal/").status_code == 302

    done = client.get(DONE)
    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    assert 'href="/login/"' in done.content.decode()

    [notice] = OutboundEmail.objects.all()
    assert (notice.kind, notice.to_address) == ("password_changed", SIS_EMAIL)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"account.activated", "password.activation"} <= actions


def test_a_used_link_gets_the_clear_page_and_its_post_is_refused(parent, token):
    late = Client()
    land(late, token)  # a second browser that opened the link before it was used
    first = Client()
    land(first, token)
    assert activate(first)["Location"] == DONE

    again = Client()
    assert_invalid_page(land(again, token, follow=True))
    assert_invalid_page(activate(late, "another fine long passphrase"), status=400)
    parent.refresh_from_db()
    assert parent.check_password(PASSWORD)


def test_an_expired_link_gets_the_clear_page(parent):
    with time_machine.travel(timezone.now() - timedelta(days=8), tick=False):
        old_token = tokens.mint(user=parent, purpose="activation")
        early = Client()
        land(early, old_token)
    assert_invalid_page(land(Client(), old_token, follow=True))
    assert_invalid_page(activate(early), status=400)
    assert_nothing_changed(parent)


def test_a_link_still_works_on_its_last_day(parent):
    with time_machine.travel(timezone.now() - timedelta(days=6, hours=23), tick=False):
        token = tokens.mint(user=parent, purpose="activation")
    client = Client()
    land(client, token)
    assert activate(client)["Location"] == DONE


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # a flipped character
        lambda t: t[:-5],  # truncated
        lambda t: "garbage",
        lambda t: t + "x" * 600,
    ],
)
def test_a_tampered_link_gets_the_clear_page(parent, token, spoil):
    client = Client()
    response = land(client, spoil(token), follow=True)
    assert_invalid_page(response)
    assert SESSION_KEY_PREFIX + "activation" not in client.session
    assert_nothing_changed(parent)


def test_a_reset_token_is_not_an_activation_token(parent):
    reset_token = tokens.mint(user=parent, purpose="reset")
    client = Client()
    assert_invalid_page(land(client, reset_token, follow=True))
    assert IssuedToken.objects.get(purpose="reset").used_at is None


def test_a_newer_link_replaces_the_older(parent, token):
    client = Client()
    land(client, token)
    tokens.mint(user=parent, purpose="activation")  # a re-sent welcome
    assert_invalid_page(activate(client), status=400)
    assert_invalid_page(client.get(SET_PASSWORD))


def test_an_invalid_link_forgets_an_earlier_good_one(parent, token):
    client = Client()
    land(client, token)
    assert_invalid_page(land(client, "garbage", follow=True))


def test_the_set_password_page_without_a_link_is_the_clear_page(db):
    assert_invalid_page(Client().get(SET_PASSWORD))
    assert_invalid_page(activate(Client()), status=400)


def test_a_disabled_account_cannot_activate(parent, token):
    client = Client()
    land(client, token)
    User.objects.filter(pk=parent.pk).update(is_active=False, disabled_by_sis=True)
    assert_invalid_page(activate(client), status=400)
    assert_invalid_page(land(Client(), token, follow=True))
    assert_nothing_changed(parent)


def test_an_already_activated_account_keeps_its_own_recovery_email(parent, token):
    User.objects.filter(pk=parent.pk).update(
        activated_at=timezone.now(),
        recovery_email="own.choice@example.org",
        recovery_email_verified_at=timezone.now(),
    )
    client = Client()
    land(client, token)
    assert_invalid_page(activate(client), status=400)
    parent.refresh_from_db()
    assert parent.recovery_email == "own.choice@example.org"


# --- the form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password1", "password2", "message"),
    [
        (PASSWORD, PASSWORD + "x", "The two passwords do not match"),
        ("short one", "short one", "at least 12 characters"),
        ("password1234", "password1234", "too common"),
        ("Welcome2024!!", "Welcome2024!!", "stolen and published before"),
        ("maria garcia kettle", "maria garcia kettle", "contains your name"),
        ("mgarcia lantern sky", "mgarcia lantern sky", "contains your name, username"),
    ],
)
def test_refused_passwords_keep_the_link_unused(parent, token, password1, password2, message):
    client = Client()
    land(client, token)
    response = activate(client, password1, password2)
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    assert 'aria-invalid="true"' in body
    assert password1 not in body  # a password is never echoed back
    assert_nothing_changed(parent)
    assert activate(client)["Location"] == DONE  # the same link still works


def test_a_decomposed_password_signs_in_when_typed_composed(parent, token):
    client = Client()
    land(client, token)
    assert activate(client, "man\u0303ana tacos en la playa")["Location"] == DONE
    parent.refresh_from_db()
    assert parent.check_password("mañana tacos en la playa")


def test_posts_need_csrf(parent, token):
    client = Client(enforce_csrf_checks=True)
    land(client, token)
    assert activate(client).status_code == 403
    assert_nothing_changed(parent)


@override_settings(RATELIMIT_LANDING_PER_IP="3/m")
def test_landings_are_rate_limited_per_ip(parent, token):
    for _ in range(3):
        assert land(Client(), token).status_code == 302
    response = land(Client(), token)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Please try again in" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    other_network = land(Client(), token, REMOTE_ADDR="198.51.100.7")
    assert other_network.status_code == 302


# --- concurrency: one link, one activation ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_posts_activate_once():
    parent = make_provisioned_parent()
    token = tokens.mint(user=parent, purpose="activation")
    clients = [Client() for _ in range(10)]
    for client in clients:
        land(client, token)
    barrier = threading.Barrier(len(clients))
    statuses = []

    def post(client, index):
        try:
            barrier.wait()
            response = activate(client, f"purple orbit juniper lantern {index}")
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(c, i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [302] + [400] * 9
    parent.refresh_from_db()
    assert parent.activated_at is not None
    assert sum(parent.check_password(f"{PASSWORD} {i}") for i in range(10)) == 1
    assert AuditEvent.objects.filter(action="account.activated").count() == 1
    assert OutboundEmail.objects.filter(kind="password_changed").count() == 1


# --- end to end: the welcome email, a scanner, the person ----------------------------------------


@pytest.mark.slow
def test_activation_from_the_welcome_email_after_a_scanner(worker_process, smtp_server):
    parent = make_provisioned_parent()
    with transaction.atomic():
        queue_welcome_email(user=parent)
    [welcome] = smtp_server.wait_for_messages(1)
    assert welcome.rcpt_tos == [SIS_EMAIL]
    [link] = re.findall(r"https?://\S+", welcome.text)
    assert link.startswith(settings.PORTAL_BASE_URL + "/activate/")
    path = urlsplit(link).path
    token = path.split("/")[2]

    # The mail scanner: HEAD x3, then cookie-less GETs x3 (following the redirect).
    for _ in range(3):
        Client().head(path, HTTP_USER_AGENT=SCANNER_UA)
    for _ in range(3):
        Client().get(path, HTTP_USER_AGENT=SCANNER_UA, follow=True)
    parent.refresh_from_db()
    assert parent.activated_at is None
    assert token_row(parent).used_at is None

    person = Client()
    page = person.get(path, follow=True)
    assert page.redirect_chain == [(SET_PASSWORD, 302)]
    assert token not in page.content.decode()
    done = person.post(
        SET_PASSWORD, {"new_password1": PASSWORD, "new_password2": PASSWORD}, follow=True
    )
    assert done.redirect_chain == [(DONE, 302)]
    assert token not in done.content.decode()
    assert not signed_in_user(person).is_authenticated
    parent.refresh_from_db()
    assert parent.activated_at is not None
    assert parent.has_self_serve
    assert parent.check_password(PASSWORD)

    # The activation's notice arrives once, with no password and no link; the scanner caused none.
    messages = smtp_server.wait_for_messages(2)
    wait_until(
        lambda: not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exists(),
        message="every email sent",
    )
    assert len(smtp_server.messages) == 2
    notice = messages[1]
    assert notice.rcpt_tos == [SIS_EMAIL]
    assert "password was changed" in notice.subject
    assert PASSWORD not in notice.text and PASSWORD not in notice.html
    assert not re.search(r"https?://", notice.text)

    # The link is used up now.
    assert_invalid_page(Client().get(path, follow=True))
    assert_invalid_page(activate(person, "another fine long passphrase"), status=400)
    parent.refresh_from_db()
    assert parent.check_password(PASSWORD)


def test_a_student_account_is_not_activated_by_a_parent_link_shape(db):
    # A student has no welcome address: activation (if ever minted) sets no recovery email.
    record = Student.objects.create(sourced_id="s-1", given_name="Ana", family_name="Lee")
    user = User.objects.create_user(username="40517", role=User.Role.STUDENT, student=record)
    token = tokens.mint(user=user, purpose="activation")
    client = Client()
    land(client, token)
    assert activate(client)["Location"] == DONE
    user.refresh_from_db()
    assert user.recovery_email == ""
    assert user.recovery_email_verified_at is None


# --- every activation page is a proper page (languages, landmarks, no inline code) ---------------


@pytest.mark.parametrize("language", ["en", "es", "vi"])
def test_the_activation_pages_are_translated_accessible_and_self_contained(parent, language):
    from tests.portal.test_pages import is_local, parse

    client = Client(headers={"accept-language": language})
    land(client, tokens.mint(user=parent, purpose="activation"))
    pages = [
        client.get(SET_PASSWORD),
        activate(client, "short", "other"),  # with errors
        client.get(DONE),
        Client(headers={"accept-language": language}).get(SET_PASSWORD),  # the invalid page
    ]
    for response in pages:
        html = response.content.decode()
        page = parse(response)
        assert page.html_lang == language
        assert {"header", "main", "footer"} <= page.landmarks
        assert not page.inline_script and not page.inline_style and not page.handlers
        assert all(is_local(url) for _tag, _name, url in page.urls)
        assert "<h1>" in html
        for described_by in re.findall(r'aria-describedby="([^"]+)"', html):
            assert set(described_by.split()) <= page.ids, described_by
        if language != "en":
            for english in ("Activate your account", "Your account is active", INVALID_HEADING):
                assert english not in html


def test_the_landing_stays_open_when_the_rate_limit_store_is_down(parent, token):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens there
        response = land(Client(), token)
    assert response.status_code == 302
    assert response["Location"] == SET_PASSWORD
