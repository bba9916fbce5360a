"""Delivery through the outbox, end to end: real Celery worker processes, PostgreSQL, Redis and
an aiosmtpd server. Nothing is mocked; every wait is a poll with a deadline.
"""

import collections
import os
import re
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction

from recovery import tokens
from recovery.emails import enqueue_outbound_email, queue_email, sweep_outbox
from recovery.heartbeat import HEARTBEAT_INTERVAL_SECONDS, HEARTBEAT_KEY, seconds_since_heartbeat
from recovery.models import IssuedToken, OutboundEmail
from recovery.rendering import message_id_for
from tests.support.smtp import free_port
from tests.support.waiting import wait_until
from tests.support.worker import ROOT, database_url

pytestmark = pytest.mark.slow

Status = OutboundEmail.Status
# Small backoff and staleness for the worker processes, so retries happen within a test.
FAST_RETRIES = {"OUTBOX_RETRY_BASE_SECONDS": "0.2", "OUTBOX_RETRY_MAX_SECONDS": "1"}


def status_of(email):
    email.refresh_from_db()
    return email.status


def wait_for_status(email, status, *, timeout=30):
    wait_until(
        lambda: status_of(email) == status,
        timeout=timeout,
        message=lambda: f"email {email.pk} {status}, is {email.status} ({email.last_error})",
    )
    return email


def links_in(text):
    return re.findall(r"https?://\S+", text)


def make_user(username="jdoe", **fields):
    return get_user_model().objects.create_user(username=username, **fields)


def test_an_action_email_is_delivered_exactly_once(worker_process, smtp_server):
    user = make_user(recovery_email="Parent.Doe@Example.org")
    with transaction.atomic():
        email = queue_email(
            kind="password_reset",
            to_address=user.recovery_email,
            user=user,
            token_purpose="reset",
            context={"username": "jdoe"},
        )
    wait_for_status(email, Status.SENT)

    # A duplicate task (a redelivery) and a sweep change nothing. The worker runs one task at a
    # time in order, so once the email queued after them is sent, they have been handled.
    enqueue_outbound_email(email_id=email.pk)
    sweep_outbox()
    marker = queue_email(kind="password_changed", to_address="marker@example.org")
    wait_for_status(marker, Status.SENT)

    messages = smtp_server.messages
    [received] = [m for m in messages if m.rcpt_tos == ["Parent.Doe@Example.org"]]
    assert len(messages) == 2
    assert received.message["To"] == "Parent.Doe@Example.org"  # as stored, never re-typed
    assert received.mail_from in settings.DEFAULT_FROM_EMAIL
    assert received.message["Message-ID"] == message_id_for(email)
    assert received.message.get_content_type() == "multipart/alternative"
    assert received.text is not None and received.html is not None

    [link] = links_in(received.text)
    assert link in received.text.splitlines()  # a line of its own
    assert link.startswith(settings.PORTAL_BASE_URL.rstrip("/") + "/help/reset/")
    assert re.findall(r'href="([^"]+)"', received.html) == [link]
    assert "Username: jdoe" in received.text
    assert "60 minutes" in received.text

    token = link.rstrip("/").rsplit("/", 1)[1]
    assert tokens.check(token, purpose="reset").user == user
    assert IssuedToken.objects.filter(user=user, purpose="reset").count() == 1
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == (Status.SENT, 1, "")
    assert email.sent_at is not None
    row = repr(OutboundEmail.objects.filter(pk=email.pk).values().get())
    assert token not in row
    assert "/help/reset/" not in row


def test_a_notice_carries_no_link(worker_process, smtp_server):
    email = queue_email(
        kind="password_changed",
        to_address="parent@example.org",
        context={"changed_at": "2026-11-28T20:30:00+00:00", "browser": "Firefox on Windows"},
    )
    wait_for_status(email, Status.SENT)
    [received] = smtp_server.messages
    assert received.html is not None
    for part in (received.text, received.html, received.subject):
        assert "http" not in part
    assert "<a " not in received.html
    assert "Firefox on Windows" in received.text
    assert "Nov. 28, 2026, 12:30 p.m." in received.text  # in the district's time zone


def test_a_bulk_email_is_delivered_from_its_own_queue(worker_process, smtp_server):
    email = queue_email(
        kind="password_changed",
        to_address="parent@example.org",
        stream=OutboundEmail.Stream.BULK,
    )
    wait_for_status(email, Status.SENT)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["parent@example.org"]]
    assert "send_bulk_email" in worker_process.log


def test_a_worker_killed_mid_batch_loses_nothing(start_worker, smtp_server, settings):
    # A claim older than 2 s belongs to a dead worker (each send takes 0.1 s here).
    settings.OUTBOX_STALE_SECONDS = 2
    smtp_server.delay_ms = 100
    worker = start_worker(env={"OUTBOX_STALE_SECONDS": "2"})
    with transaction.atomic():
        batch = [
            queue_email(kind="password_changed", to_address=f"parent{n}@example.org")
            for n in range(30)
        ]
    ids = [email.pk for email in batch]

    def sent_count():
        return OutboundEmail.objects.filter(pk__in=ids, status=Status.SENT).count()

    wait_until(lambda: sent_count() >= 5, message="the first emails sent")
    worker.kill()
    assert sent_count() < 30, "the kill came too late to land mid-batch"

    worker.start()
    last_sweep = 0.0

    def all_sent():
        # Beat's job, done here once a second: re-enqueue what the dead worker held.
        nonlocal last_sweep
        if time.monotonic() - last_sweep > 1:
            sweep_outbox()
            last_sweep = time.monotonic()
        return sent_count() == 30

    wait_until(all_sent, timeout=60, message=lambda: f"30 emails sent, {sent_count()} are")

    by_message_id = collections.Counter(m.message["Message-ID"] for m in smtp_server.messages)
    expected = {message_id_for(email) for email in batch}
    assert set(by_message_id) == expected, "an email was lost"
    duplicates = {mid: n for mid, n in by_message_id.items() if n > 1}
    if duplicates:
        print(f"duplicates after SIGKILL (at-least-once): {duplicates}")
    # One worker runs one task at a time: at most the email in flight at the kill is sent twice.
    assert sum(n - 1 for n in duplicates.values()) <= 1


def test_a_temporary_smtp_failure_is_retried_until_delivered(start_worker, smtp_server):
    smtp_server.fail_next(3, code=451)
    start_worker(env=FAST_RETRIES)
    email = queue_email(kind="password_changed", to_address="parent@example.org")
    wait_for_status(email, Status.SENT)
    assert (email.attempts, email.last_error) == (4, "")
    assert smtp_server.pending_failures == 0
    assert len(smtp_server.messages) == 1


def test_a_permanent_refusal_fails_the_email_once_and_the_worker_carries_on(
    start_worker, smtp_server
):
    smtp_server.reject_recipient("gone@example.org", code=550)
    worker = start_worker(env=FAST_RETRIES)
    refused = queue_email(kind="password_changed", to_address="gone@example.org")
    wait_for_status(refused, Status.FAILED)
    assert (refused.attempts, refused.last_error) == (1, "smtp_550")

    after = queue_email(kind="password_changed", to_address="parent@example.org")
    wait_for_status(after, Status.SENT)
    assert worker.alive
    assert [m.rcpt_tos for m in smtp_server.messages] == [["parent@example.org"]]
    refused.refresh_from_db()
    assert (refused.status, refused.attempts) == (Status.FAILED, 1)
    assert "gone@example.org" not in worker.log


def test_broker_down_when_the_row_is_written_then_the_sweeper_delivers_it(
    start_worker, smtp_server
):
    # The writer is a separate process whose broker is a closed port; it must still succeed.
    script = (
        "from django.db import transaction\n"
        "from recovery.emails import queue_email\n"
        "with transaction.atomic():\n"
        "    email = queue_email(kind='password_changed', to_address='parent@example.org')\n"
        "print(email.pk)\n"
    )
    writer = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env=os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "settings.test",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert writer.returncode == 0, writer.stderr
    email = OutboundEmail.objects.get(pk=int(writer.stdout.split()[-1]))
    assert email.status == Status.QUEUED
    assert f"Could not enqueue outbound email {email.pk}" in writer.stderr
    assert "parent@example.org" not in writer.stderr

    # The broker is back: a worker with embedded beat runs the sweeper every second.
    start_worker(beat=True, env={"OUTBOX_SWEEP_SECONDS": "1", "OUTBOX_STALE_SECONDS": "1"})
    wait_for_status(email, Status.SENT, timeout=60)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["parent@example.org"]]


def test_a_worker_reuses_its_smtp_connection_and_survives_the_relay_dropping_it(
    worker_process, smtp_server
):
    first = [
        queue_email(kind="password_changed", to_address=f"parent{n}@example.org") for n in range(3)
    ]
    for email in first:
        wait_for_status(email, Status.SENT)
    assert len({m.peer for m in smtp_server.messages}) == 1, "one connection for all three"

    # The relay restarts: the worker's open connection is dead. The next email goes out on a
    # fresh connection at once, not after a retry's backoff.
    smtp_server.stop()
    smtp_server.start()
    after = queue_email(kind="password_changed", to_address="after@example.org")
    wait_for_status(after, Status.SENT)
    assert (after.attempts, after.last_error) == (1, "")
    assert len(smtp_server.messages) == 4
    assert smtp_server.messages[-1].peer != smtp_server.messages[0].peer


def test_a_real_worker_writes_its_heartbeat_and_consumes_after_idling(start_worker):
    cache.delete(HEARTBEAT_KEY)
    assert seconds_since_heartbeat() is None
    start_worker()
    assert wait_until(lambda: seconds_since_heartbeat() is not None, timeout=10)
    first = cache.get(HEARTBEAT_KEY)
    # ...and keeps writing it from its timer while it runs, not only at start.
    wait_until(
        lambda: cache.get(HEARTBEAT_KEY) > first,
        timeout=HEARTBEAT_INTERVAL_SECONDS * 3,
        message="a second heartbeat",
    )
    assert seconds_since_heartbeat() < HEARTBEAT_INTERVAL_SECONDS
    # Idle for longer than the broker's socket timeout, it still takes new work.
    email = queue_email(kind="password_changed", to_address="parent@example.org")
    wait_for_status(email, Status.SENT)
