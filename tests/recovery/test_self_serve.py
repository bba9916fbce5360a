"""The recovery-email confirmation journey in-process (M2, M3; F1 scanners; E1 token-free URL).

The link is minted here as the outbox worker would mint it; the end-to-end version through a
real worker and SMTP server is test_self_serve_delivery.py.
"""

import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from recovery import outbox, tokens
from recovery.flows.self_serve import confirm_recovery_email, request_recovery_email_change
from recovery.models import AuditEvent, IssuedToken, OutboundEmail
from tests.portal.family_helpers import make_family, send_confirmation_email

CONFIRM_PAGE = "/portal/account/confirm-email/"


@pytest.fixture(autouse=True)
def generous_landing_limit(settings):  # pytest-django's fixture, shadowing the module here
    # These tests open many links from one address within a minute; the limit has its own tests.
    settings.RATELIMIT_LANDING_PER_IP = "1000/m"


@pytest.fixture(autouse=True)
def generous_request_limits(settings):  # the limits on asking for a link have their own test
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1000/h"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"


def landing(token):
    return f"/portal/account/confirm-email/{token}/"


@pytest.fixture
def user(db, mailoutbox):
    user = make_family("fam-a", "Nguyen", email="rosa.nguyen@example.org").user
    user.recovery_email = "rosa.old@example.org"
    user.recovery_email_normalised = "rosa.old@example.org"
    user.recovery_email_verified_at = timezone.now() - timedelta(days=30)
    user.save()
    return user


def reload(user):
    return get_user_model().objects.get(pk=user.pk)


def requested(user, address="Rosa.New@Example.org"):
    """A pending change and its link, as the account page and the worker make them."""
    request_recovery_email_change(user=user, new_email=address, request=None)
    return send_confirmation_email(user)


def test_opening_the_link_confirms_nothing_and_the_post_confirms(user):
    link = requested(user)
    reset_link = tokens.mint(user=user, purpose="reset")
    client = Client()  # not signed in: the link is often opened on a phone

    # A mail scanner opens the link three times, by GET and HEAD, and follows the redirect.
    for method in (client.get, client.head, client.get):
        response = method(landing(link))
        assert response.status_code == 302
        assert response["Location"] == CONFIRM_PAGE
        assert link not in response["Location"]
    page = client.get(CONFIRM_PAGE)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "Confirm this email address" in html and "Rosa.New@Example.org" in html
    assert link not in html  # the token is not in the page either (E1)
    assert 'method="post"' in html
    fresh = reload(user)
    assert fresh.recovery_email == "rosa.old@example.org"
    assert fresh.pending_recovery_email == "Rosa.New@Example.org"
    assert tokens.check(link, purpose="email_confirm").used_at is None

    response = client.post(CONFIRM_PAGE)
    assert response.status_code == 200
    assert "Email address confirmed" in response.content.decode()
    fresh = reload(user)
    assert fresh.recovery_email == "Rosa.New@Example.org"
    assert fresh.recovery_email_normalised == "rosa.new@example.org"
    assert fresh.recovery_email_verified_at > user.recovery_email_verified_at
    assert fresh.pending_recovery_email == ""
    with pytest.raises(tokens.TokenUsed):
        tokens.check(link, purpose="email_confirm")
    with pytest.raises(tokens.TokenRevoked):  # an email change revokes the other links
        tokens.check(reset_link, purpose="reset")
    notice = OutboundEmail.objects.get(kind="recovery_email_changed")
    assert notice.to_address == "rosa.old@example.org" and notice.token_purpose == ""
    assert AuditEvent.objects.filter(
        action="self_serve.recovery_email_confirmed", subject=user
    ).exists()

    # The link is now used up: opening it again gets the clear page, and changes nothing.
    assert client.get(landing(link))["Location"] == CONFIRM_PAGE
    again = client.get(CONFIRM_PAGE)
    assert "This link does not work" in again.content.decode()
    assert client.post(CONFIRM_PAGE).status_code == 400
    assert reload(user).recovery_email == "Rosa.New@Example.org"


def test_a_newer_request_revokes_the_older_link(user):
    first = requested(user, "first@example.org")
    second = requested(user, "second@example.org")
    client = Client()
    client.get(landing(first))
    assert "This link does not work" in client.get(CONFIRM_PAGE).content.decode()
    assert client.post(CONFIRM_PAGE).status_code == 400
    assert reload(user).recovery_email == "rosa.old@example.org"
    client.get(landing(second))
    assert client.post(CONFIRM_PAGE).status_code == 200
    assert reload(user).recovery_email == "second@example.org"


def in_a_workers_hands(user):
    """Claim the user's queued confirmation email, as a worker does just before minting."""
    row = OutboundEmail.objects.get(user=user, kind="recovery_email_confirm", status="queued")
    return outbox.claim_outbound_email(email_id=row.pk)


def finish_sending(row):
    """What the worker does after its claim: mint the link, send, mark the row sent."""
    token = tokens.mint(user=row.user, purpose="email_confirm")
    assert outbox.mark_outbound_email_sent(email=row)
    return token


def test_a_link_from_an_email_already_being_sent_cannot_confirm_a_newer_address(user):
    # The first email is in a worker's hands when the second request comes in: it is not
    # withdrawn, and its link is minted only after the request revoked the earlier ones.
    request_recovery_email_change(user=user, new_email="typo@example.org", request=None)
    sending = in_a_workers_hands(user)
    request_recovery_email_change(user=user, new_email="right@example.org", request=None)
    stale = finish_sending(sending)
    assert tokens.check(stale, purpose="email_confirm")  # live in the ledger...
    with pytest.raises(tokens.TokenInvalid):  # ...but not the link sent to the pending address
        confirm_recovery_email(token=stale, request=None)
    client = Client()
    client.get(landing(stale))
    assert "This link does not work" in client.get(CONFIRM_PAGE).content.decode()

    fresh = send_confirmation_email(user)
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(stale, purpose="email_confirm")
    confirm_recovery_email(token=fresh, request=None)
    assert reload(user).recovery_email == "right@example.org"


def test_a_link_minted_after_the_newest_email_was_sent_is_refused(user):
    # The older email's worker stalled and minted its link after the newer email went out.
    request_recovery_email_change(user=user, new_email="typo@example.org", request=None)
    sending = in_a_workers_hands(user)
    request_recovery_email_change(user=user, new_email="right@example.org", request=None)
    send_confirmation_email(user)
    stale = finish_sending(sending)
    with pytest.raises(tokens.TokenInvalid):
        confirm_recovery_email(token=stale, request=None)
    assert reload(user).recovery_email == "rosa.old@example.org"
    assert reload(user).pending_recovery_email == "right@example.org"


def test_a_link_confirms_only_the_address_pending_for_its_own_account(user):
    other = make_family("fam-b", "Okonkwo", email="rosa.okonkwo@example.org").user
    request_recovery_email_change(user=other, new_email="okonkwo.new@example.org", request=None)
    link = requested(user, "mine@example.org")
    client = Client()
    client.force_login(other)  # whoever is signed in, the link confirms its own account only
    client.get(landing(link))
    assert client.post(CONFIRM_PAGE).status_code == 200
    assert reload(user).recovery_email == "mine@example.org"
    assert reload(other).recovery_email == ""
    assert reload(other).pending_recovery_email == "okonkwo.new@example.org"


def test_an_expired_link_gets_a_clear_page(user):
    link = requested(user)
    later = time.time() + settings.EMAIL_CONFIRM_TOKEN_MAX_AGE + 60
    with time_machine.travel(later, tick=False):
        client = Client()
        assert client.get(landing(link))["Location"] == CONFIRM_PAGE
        page = client.get(CONFIRM_PAGE)
        assert page.status_code == 200
        assert "This link does not work" in page.content.decode()
        assert "has expired" in page.content.decode()
        with pytest.raises(tokens.TokenExpired):
            confirm_recovery_email(token=link, request=None)
    assert reload(user).recovery_email == "rosa.old@example.org"
    assert AuditEvent.objects.filter(
        action="self_serve.recovery_email_refused", detail__reason="TokenExpired"
    ).exists()


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 600])
def test_a_garbage_link_gets_the_same_clear_page(user, token):
    requested(user)
    client = Client()
    assert client.get(landing(token))["Location"] == CONFIRM_PAGE
    assert "This link does not work" in client.get(CONFIRM_PAGE).content.decode()
    assert client.post(CONFIRM_PAGE).status_code == 400
    assert reload(user).pending_recovery_email == "Rosa.New@Example.org"


def test_the_confirm_page_without_a_link_confirms_nothing(user):
    requested(user)
    client = Client()
    assert client.post(CONFIRM_PAGE).status_code == 400
    assert reload(user).recovery_email == "rosa.old@example.org"


def test_the_confirm_post_needs_a_csrf_token(user):
    link = requested(user)
    client = Client(enforce_csrf_checks=True)
    client.get(landing(link))
    assert client.post(CONFIRM_PAGE).status_code == 403
    assert reload(user).recovery_email == "rosa.old@example.org"


def test_a_disabled_account_cannot_confirm(user):
    link = requested(user)
    user.is_active = False
    user.save()
    with pytest.raises(tokens.TokenError):
        confirm_recovery_email(token=link, request=None)
    assert IssuedToken.objects.get(purpose="email_confirm", revoked_at__isnull=True).used_at is None
    assert reload(user).recovery_email == "rosa.old@example.org"


@pytest.mark.parametrize(
    ("language", "word"), [("en", "link"), ("es", "enlace"), ("vi", "liên kết")]
)
def test_the_emails_render_in_the_persons_language(user, language, word):
    from recovery.rendering import render_outbound_email

    user.language = language
    user.save()
    request_recovery_email_change(user=user, new_email="Rosa.New@Example.org", request=None)
    link = "https://portal.example.org/portal/account/confirm-email/abc.def.ghi/"
    confirm = OutboundEmail.objects.get(kind="recovery_email_confirm")
    rendered = render_outbound_email(confirm, link=link)
    assert rendered.text.count(link) == 1 and f"\n\n{link}\n\n" in rendered.text
    assert rendered.html.count("href=") == 1
    assert word in rendered.text and "24" in rendered.text
    assert "Nguyen" not in rendered.subject
    notices = [OutboundEmail.objects.get(kind="recovery_email_change_requested")]
    confirm_recovery_email(token=send_confirmation_email(user), request=None)
    notices.append(OutboundEmail.objects.get(kind="recovery_email_changed"))
    for notice in notices:
        rendered = render_outbound_email(notice)
        assert "://" not in rendered.text and "href=" not in rendered.html
        assert "R•••@Example.org" in rendered.text
        assert settings.SUPPORT_CONTACT in rendered.text
