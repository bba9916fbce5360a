"""Forgot password end to end: the real worker, the real SMTP server, the person's browser.

Issue 4's round trip, what the worker sends for every kind of account, a forged Host or
X-Forwarded-Host never reaching a link, SMTP and broker failures never changing the page, and
the global mail breaker holding mail back without dropping any.
"""

import contextlib
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from portal.models import User
from recovery.emails import deliver_outbound_email, queue_email
from recovery.models import AuditEvent, HelpRequest, IssuedToken, OutboundEmail
from tests.recovery.password_reset_accounts import (
    NEW_PASSWORD,
    PASSWORD,
    RECOVERY_EMAIL,
    SIS_EMAIL,
    make_every_kind,
    make_self_serve_parent,
)
from tests.recovery.test_password_reset import (
    CSRF_INPUT,
    FORM,
    SENT,
    SET_PASSWORD,
    assert_invalid_page,
    clear_help_counters,
)
from tests.support.smtp import free_port
from tests.support.waiting import wait_until
from tests.support.worker import purge_broker

pytestmark = pytest.mark.slow

SCANNER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36"
)
DONE = "/help/reset/done/"


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    settings.RATELIMIT_LANDING_PER_IP = "1000/m"  # many landings from one address here
    clear_help_counters()
    yield
    clear_help_counters()


def links_in(text):
    return re.findall(r"https?://\S+", text)


def the_one_link(message, *, path_prefix):
    """The only link of an action email: on a line of its own, under PORTAL_BASE_URL."""
    text = message.text.replace("\r\n", "\n")
    [link] = links_in(text)
    assert f"\n\n{link}\n\n" in text
    base = settings.PORTAL_BASE_URL.rstrip("/")
    assert link.startswith(base + path_prefix)
    assert message.html.count('href="') == 1 and f'href="{link}"' in message.html
    return link


def signed_in_user(client):
    request = HttpRequest()
    request.session = client.session
    return auth.get_user(request)


def all_resolved_and_sent():
    return (
        not HelpRequest.objects.filter(resolved_at__isnull=True).exists()
        and not OutboundEmail.objects.filter(
            status__in=[OutboundEmail.Status.QUEUED, OutboundEmail.Status.SENDING]
        ).exists()
    )


def sent_page(identifier, **extra):
    client = Client()
    posted = client.post(FORM, {"username": identifier}, **extra)
    assert posted.status_code == 303 and posted["Location"] == SENT
    page = client.get(SENT)
    return (
        tuple(sorted(posted.headers)),
        tuple(sorted(page.headers)),
        CSRF_INPUT.sub(b"", page.content),
    )


def test_forgot_password_round_trip_after_a_scanner(worker_process, smtp_server):
    user = make_self_serve_parent()
    elsewhere = Client()
    elsewhere.force_login(user)
    # A run of failed sign-ins had locked the account: the reset opens it again.
    User.objects.filter(pk=user.pk).update(
        failed_login_count=100,
        last_failed_login_at=timezone.now(),
        login_locked_at=timezone.now(),
    )
    assert not Client().login(username=user.username, password=PASSWORD)

    asker = Client()
    response = asker.post(FORM, {"username": "rosa.nguyen"})
    assert response.status_code == 303 and response["Location"] == SENT

    [email] = smtp_server.wait_for_messages(1)
    assert email.rcpt_tos == [RECOVERY_EMAIL]  # the verified address, as stored
    assert "Username: rosa.nguyen" in email.text
    link = the_one_link(email, path_prefix="/help/reset/")
    path = urlsplit(link).path
    token = path.split("/")[3]

    # The mail scanner: HEAD, then cookie-less GETs x3 (following the redirect).
    Client().head(path, HTTP_USER_AGENT=SCANNER_UA)
    for _ in range(3):
        Client().get(path, HTTP_USER_AGENT=SCANNER_UA, follow=True)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert IssuedToken.objects.get(user=user, purpose="reset").used_at is None

    # The person, in a fresh browser.
    person = Client()
    page = person.get(path, follow=True)
    assert page.redirect_chain == [(SET_PASSWORD, 302)]
    assert token not in page.content.decode()
    done = person.post(
        SET_PASSWORD, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    assert done.redirect_chain == [(DONE, 302)]
    assert not signed_in_user(person).is_authenticated  # no automatic sign-in
    assert not signed_in_user(elsewhere).is_authenticated  # other sessions ended
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.login_locked_at is None and user.failed_login_count == 0
    assert Client().login(username=user.username, password=NEW_PASSWORD)

    # The "password changed" notice arrives, without a link or the password.
    messages = smtp_server.wait_for_messages(2)
    notice = messages[1]
    assert notice.rcpt_tos == [RECOVERY_EMAIL]
    assert "password was changed" in notice.subject
    assert links_in(notice.text) == [] and "href=" not in notice.html
    assert NEW_PASSWORD not in notice.text and NEW_PASSWORD not in notice.html
    wait_until(all_resolved_and_sent, message="every email sent")
    assert len(smtp_server.messages) == 2  # the scanner caused none

    # The link is used up.
    assert_invalid_page(Client().get(path, follow=True))
    assert_invalid_page(
        person.post(SET_PASSWORD, {"new_password1": "x" * 20, "new_password2": "x" * 20}),
        status=400,
    )
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    # Audited from request to success, with the typed name only hashed.
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"help_request.submitted", "help_request.resolved", "password.reset"} <= actions
    resolved = AuditEvent.objects.get(action="help_request.resolved")
    assert resolved.subject == user and resolved.detail["outcome"] == "reset_sent"
    assert not AuditEvent.objects.filter(detail__icontains="rosa").exists()


def test_what_each_kind_of_account_receives(start_worker, smtp_server):
    start_worker(env={"RECOVERY_EMAIL_UNKNOWN_ACCOUNTS": "false"})
    typed = make_every_kind()
    pages = {label: sent_page(identifier) for label, identifier in typed.items()}
    assert len(set(pages.values())) == 1, "the sent page differs between kinds of account"

    wait_until(all_resolved_and_sent, message="every request resolved and its email sent")
    received = sorted((m.rcpt_tos[0], m.subject) for m in smtp_server.messages)
    assert [address for address, _ in received] == sorted([RECOVERY_EMAIL, SIS_EMAIL])
    [welcome] = [m for m in smtp_server.messages if m.rcpt_tos == [SIS_EMAIL]]
    assert "Username: maria.garcia" in welcome.text
    the_one_link(welcome, path_prefix="/activate/")
    [reset] = [m for m in smtp_server.messages if m.rcpt_tos == [RECOVERY_EMAIL]]
    the_one_link(reset, path_prefix="/help/reset/")


def test_a_forged_forwarded_host_never_reaches_the_link(worker_process, smtp_server):
    make_self_serve_parent()
    refused = Client().post(FORM, {"username": "rosa.nguyen"}, HTTP_HOST="evil.example")
    assert refused.status_code == 400
    response = Client().post(
        FORM,
        {"username": "rosa.nguyen"},
        HTTP_HOST="portal.example.org",
        HTTP_X_FORWARDED_HOST="evil.example",
    )
    assert response.status_code == 303
    [email] = smtp_server.wait_for_messages(1)
    link = the_one_link(email, path_prefix="/help/reset/")
    assert urlsplit(link).netloc == urlsplit(settings.PORTAL_BASE_URL).netloc
    assert "evil.example" not in email.text and "evil.example" not in email.html
    wait_until(all_resolved_and_sent, message="every email sent")
    assert len(smtp_server.messages) == 1  # the forged Host queued nothing
    assert HelpRequest.objects.count() == 1


def test_an_smtp_refusal_never_changes_the_page(worker_process, smtp_server):
    make_self_serve_parent()
    smtp_server.reject_recipient(RECOVERY_EMAIL, code=550)
    refused = sent_page("rosa.nguyen")
    wait_until(
        lambda: OutboundEmail.objects.filter(status=OutboundEmail.Status.FAILED).exists(),
        message="the refused email marked failed",
    )
    assert sent_page("nobody.here") == refused
    assert smtp_server.messages == []


@contextlib.contextmanager
def broker_down():
    """This process's Celery app publishes to a closed port (a broker outage, for the web side)."""
    from portal.celery_app import app

    def forget_connections():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0"
    forget_connections()
    try:
        yield
    finally:
        app.conf.broker_write_url = None
        forget_connections()


def test_a_broker_outage_never_changes_the_page_and_the_sweeper_catches_up(
    start_worker, smtp_server, caplog
):
    make_self_serve_parent()
    normal = sent_page("nobody.here")
    # Drop that request's resolver task (and its flag): this one must publish its own, and cannot.
    purge_broker(settings.CELERY_BROKER_URL)
    with broker_down():
        during = sent_page("rosa.nguyen")
    assert during == normal
    row = HelpRequest.objects.get(identifier="rosa.nguyen")
    assert row.resolved_at is None
    assert "Could not enqueue the Help resolver" in caplog.text
    assert "rosa" not in caplog.text
    # The broker is back: beat's sweep enqueues the request again and the worker resolves it.
    start_worker(beat=True, env={"OUTBOX_SWEEP_SECONDS": "1", "OUTBOX_STALE_SECONDS": "1"})
    [email] = smtp_server.wait_for_messages(1, timeout=60)
    assert email.rcpt_tos == [RECOVERY_EMAIL]
    row.refresh_from_db()
    assert row.outcome == "reset_sent" and row.identifier == ""


# --- the global mail breaker: past it mail waits in the outbox, nothing is dropped -------------


@pytest.fixture
def empty_broker():
    purge_broker(settings.CELERY_BROKER_URL)
    yield
    purge_broker(settings.CELERY_BROKER_URL)


def test_the_mail_breaker_defers_without_dropping(transactional_db, empty_broker, settings):
    from recovery import ratelimit

    settings.RATELIMIT_MAIL_GLOBAL = "2/m"
    ids = [
        queue_email(kind="password_changed", to_address=f"parent{n}@example.org").pk
        for n in range(3)
    ]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        ratelimit.reset(action="mail.global", key="all", rate="2/m")  # this window starts empty
        results = [deliver_outbound_email(email_id=pk).status for pk in ids]
        assert results == ["sent", "sent", "deferred"]
        waiting = OutboundEmail.objects.get(pk=ids[2])
        assert waiting.status == OutboundEmail.Status.QUEUED
        assert waiting.attempts == 0  # a deferral is not a failed attempt
        assert waiting.enqueued_at > timezone.now()
        clock.shift(timedelta(seconds=61))
        assert deliver_outbound_email(email_id=ids[2]).status == "sent"
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"sent"}
