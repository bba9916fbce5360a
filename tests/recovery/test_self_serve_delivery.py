"""Self Serve and password change end to end: a real Celery worker, PostgreSQL, Redis and an
aiosmtpd server. The person uses the account page; the test reads the emails the SMTP server
received and opens their links. Nothing is mocked; every wait is a poll with a deadline."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from recovery.models import IssuedToken
from tests.portal.family_helpers import NEW_PASSWORD, PASSWORD, make_family

pytestmark = pytest.mark.slow

ACCOUNT = "/portal/account/"
CONFIRM_PAGE = "/portal/account/confirm-email/"
OLD = "rosa.old@example.org"


@pytest.fixture(autouse=True)
def generous_landing_limit(settings):
    # This file opens many links from one address within a minute; the limit has its own tests.
    settings.RATELIMIT_LANDING_PER_IP = "1000/m"


@pytest.fixture(autouse=True)
def generous_request_limits(settings):  # the limits on asking for a link have their own test
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1000/h"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"


@pytest.fixture
def user(transactional_db):
    user = make_family("fam-a", "Nguyen", email="rosa.nguyen@example.org").user
    user.recovery_email = OLD
    user.recovery_email_normalised = OLD
    user.recovery_email_verified_at = timezone.now() - timedelta(days=30)
    user.save()
    return user


def reload(user):
    return get_user_model().objects.get(pk=user.pk)


def links_in(text):
    return re.findall(r"https?://\S+", text)


def messages_to(smtp_server, address):
    return [m for m in smtp_server.messages if m.rcpt_tos == [address]]


def the_one_link(message):
    """The only link of an action email, on a line of its own, under PORTAL_BASE_URL."""
    text = message.text.replace("\r\n", "\n")
    [link] = links_in(text)
    assert f"\n\n{link}\n\n" in text
    assert link.startswith(settings.PORTAL_BASE_URL.rstrip("/") + "/portal/account/confirm-email/")
    assert message.html.count('href="') == 1 and f'href="{link}"' in message.html
    return urlsplit(link).path


def assert_notice(message):
    assert links_in(message.text) == [] and "href=" not in message.html
    assert "Not you?" in message.text
    assert settings.SUPPORT_CONTACT in message.text
    for secret in (PASSWORD, NEW_PASSWORD):
        assert secret not in message.text and secret not in message.html


def test_recovery_email_set_up_end_to_end(worker_process, smtp_server, user):
    client = Client()
    client.force_login(user)
    response = client.post(
        ACCOUNT, {"recovery_email": "Rosa.New@Example.org", "current_password": PASSWORD}
    )
    assert response.status_code == 302
    smtp_server.wait_for_messages(2)
    [confirm] = messages_to(smtp_server, "Rosa.New@Example.org")
    [requested] = messages_to(smtp_server, OLD)
    first_link = the_one_link(confirm)
    hours = settings.EMAIL_CONFIRM_TOKEN_MAX_AGE // 3600
    assert f"stops working after {hours} hours" in confirm.text
    assert_notice(requested)
    assert "R•••@Example.org" in requested.text  # the new address, masked
    # Until the new address is confirmed, the old one stays in force (M2).
    assert reload(user).recovery_email == OLD

    # A second request revokes the first link at once.
    response = client.post(
        ACCOUNT, {"recovery_email": "rosa.second@example.org", "current_password": PASSWORD}
    )
    assert response.status_code == 302
    smtp_server.wait_for_messages(4)  # the link, and the old address told again
    [second] = messages_to(smtp_server, "rosa.second@example.org")
    second_link = the_one_link(second)
    assert second_link != first_link

    phone = Client()  # the mailbox is read on another device, signed out
    phone.get(first_link)
    assert "This link does not work" in phone.get(CONFIRM_PAGE).content.decode()
    assert phone.post(CONFIRM_PAGE).status_code == 400

    # A mail scanner opens the newest link three times: nothing changes.
    for method in (phone.get, phone.head, phone.get):
        assert method(second_link)["Location"] == CONFIRM_PAGE
    assert "Confirm this email address" in phone.get(CONFIRM_PAGE).content.decode()
    assert reload(user).recovery_email == OLD
    assert not IssuedToken.objects.filter(purpose="email_confirm", used_at__isnull=False).exists()

    # The person presses the button: the new address is in force, the old one is told.
    response = phone.post(CONFIRM_PAGE)
    assert response.status_code == 200
    fresh = reload(user)
    assert fresh.recovery_email == "rosa.second@example.org" and fresh.has_self_serve
    assert fresh.pending_recovery_email == ""
    smtp_server.wait_for_messages(5)
    told = messages_to(smtp_server, OLD)
    assert [m.subject for m in told[:2]] == [requested.subject] * 2  # one per request
    changed = told[2]
    assert changed.subject == "Your Unified School District portal recovery email was changed"
    assert_notice(changed)

    # The link is used up.
    phone.get(second_link)
    assert "This link does not work" in phone.get(CONFIRM_PAGE).content.decode()
    assert phone.post(CONFIRM_PAGE).status_code == 400
    assert len(smtp_server.messages) == 5  # nothing more was sent


def test_password_change_end_to_end(worker_process, smtp_server, user):
    here, elsewhere = Client(), Client()
    here.force_login(user)
    elsewhere.force_login(user)
    response = here.post(
        ACCOUNT,
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    [notice] = smtp_server.wait_for_messages(1)
    assert notice.rcpt_tos == [OLD]
    assert "password was changed" in notice.subject
    assert_notice(notice)
    assert here.get("/portal/").status_code == 200
    assert elsewhere.get("/portal/").status_code == 302
    assert reload(user).check_password(NEW_PASSWORD)
