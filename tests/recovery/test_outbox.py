"""The outbox's own rules, in process: what a row may hold, what a task carries, the claim,
the sweeper's choice of rows, error classification and backoff. Real PostgreSQL and Redis.

The delivery itself (worker, SMTP, SIGKILL, broker outage) is in test_outbox_delivery.py.
"""

import base64
import collections
import email as email_lib
import json
import re
import smtplib
import threading
from datetime import timedelta
from email import policy as email_policy
from email.message import EmailMessage as ModernMessage
from email.utils import parsedate_to_datetime

import pytest
import redis
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.template import TemplateDoesNotExist
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from recovery import outbox
from recovery.emails import (
    UnsafeEmailContext,
    checked_context,
    classify_send_error,
    deliver_outbound_email,
    deliver_outbound_emails,
    queue_email,
    sweep_outbox,
)
from recovery.links import absolute_link
from recovery.models import IssuedToken, OutboundEmail
from recovery.rendering import OutboxMessage, build_message, message_id_for, render_outbound_email
from tests.support.worker import purge_broker

Status = OutboundEmail.Status


@pytest.fixture
def broker():
    """The test session's broker (Redis), emptied before and after; yields a redis client."""
    purge_broker(settings.CELERY_BROKER_URL)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    purge_broker(settings.CELERY_BROKER_URL)
    client.close()


def queued_task_messages(client, queue):
    """The task messages waiting on `queue`, decoded: (raw bytes, headers, args, kwargs)."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        found.append((raw, envelope["headers"], args, kwargs))
    return found


def make_row(**fields):
    values = {"kind": "password_changed", "to_address": "parent@example.org"} | fields
    return OutboundEmail.objects.create(**values)


# --- what a row may hold


@pytest.mark.parametrize(
    "context",
    [
        {"token": "abc"},
        {"reset_token": "abc"},
        {"link": "x"},
        {"resetLink": "x"},
        {"password": "hunter2hunter2"},
        {"newPassword": "x"},
        {"url": "x"},
        {"birth_date": "2012-03-09"},
        {"students": [{"name": "Ana", "secret": "x"}]},
        {"note": "see https://evil.example/reset/abc"},
    ],
)
def test_context_refuses_secrets_and_links(context):
    with pytest.raises(UnsafeEmailContext):
        checked_context(context)


def test_context_refuses_what_json_cannot_hold():
    with pytest.raises(UnsafeEmailContext):
        checked_context({"user": object()})


def test_context_keeps_plain_values_and_dates_as_iso_text():
    changed_at = timezone.now().replace(microsecond=123000)
    stored = checked_context({"username": "jdoe", "changed_at": changed_at, "count": 2})
    assert stored == {"username": "jdoe", "changed_at": stored["changed_at"], "count": 2}
    assert parse_datetime(stored["changed_at"]) == changed_at


@pytest.mark.django_db
def test_queue_email_refuses_secrets_before_writing_anything():
    with pytest.raises(UnsafeEmailContext):
        queue_email(kind="password_changed", to_address="a@example.org", context={"token": "t"})
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_queue_email_refuses_unknown_kinds_and_purposes():
    with pytest.raises(TemplateDoesNotExist):
        queue_email(kind="no_such_email", to_address="a@example.org")
    with pytest.raises(ValueError, match="kind"):
        queue_email(kind="../secrets", to_address="a@example.org")
    with pytest.raises(ValueError, match="purpose"):
        queue_email(kind="password_reset", to_address="a@example.org", token_purpose="admin")
    with pytest.raises(ValueError, match="user"):
        queue_email(kind="password_reset", to_address="a@example.org", token_purpose="reset")
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_language_falls_back_from_the_argument_to_the_user_to_the_site():
    user = get_user_model().objects.create_user(username="u1", language="vi")
    assert (
        queue_email(kind="password_changed", to_address="a@x.org", language="es").language == "es"
    )
    assert queue_email(kind="password_changed", to_address="a@x.org", user=user).language == "vi"
    assert (
        queue_email(kind="password_changed", to_address="a@x.org", language="xx").language == "en"
    )


# --- what a task carries


@pytest.mark.django_db(transaction=True)
def test_the_task_carries_only_the_row_id_and_is_sent_on_commit(broker):
    user = get_user_model().objects.create_user(username="jdoe", email="jdoe@example.org")
    with transaction.atomic():
        email = queue_email(
            kind="password_reset",
            to_address="jdoe.parent@example.org",
            user=user,
            token_purpose="reset",
            context={"username": "jdoe"},
        )
        assert broker.llen("email") == 0, "enqueued before the commit"
    [(raw, headers, args, kwargs)] = queued_task_messages(broker, "email")
    assert headers["task"] == "recovery.tasks.send_outbound_email"
    assert args == [email.pk]
    assert kwargs == {}
    assert b"jdoe.parent@example.org" not in raw
    assert b"jdoe" not in raw


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_sends_nothing(broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        queue_email(kind="password_changed", to_address="a@example.org")
        raise RuntimeError("the change that caused the email failed")
    assert not OutboundEmail.objects.exists()
    assert broker.llen("email") == 0


@pytest.mark.django_db(transaction=True)
def test_bulk_emails_go_to_the_bulk_queue(broker):
    email = queue_email(
        kind="password_changed", to_address="a@example.org", stream=OutboundEmail.Stream.BULK
    )
    assert broker.llen("email") == 0
    [(_, headers, args, _)] = queued_task_messages(broker, "bulk_email")
    assert (headers["task"], args) == ("recovery.tasks.send_bulk_email", [email.pk])


# --- the claim


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_of_one_row_one_wins():
    email = make_row()
    start = threading.Barrier(2)
    results = []

    def claim():
        try:
            start.wait()
            results.append(outbox.claim_outbound_email(email_id=email.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [row for row in results if row is not None]
    assert len(results) == 2
    assert len(winners) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == (Status.SENDING, 1)


@pytest.mark.django_db
def test_claim_takes_queued_and_stale_rows_only(settings):
    settings.OUTBOX_STALE_SECONDS = 120
    now = timezone.now()
    queued = make_row()
    stale = make_row(status=Status.SENDING, claimed_at=now - timedelta(seconds=121), attempts=1)
    busy = make_row(status=Status.SENDING, claimed_at=now - timedelta(seconds=5), attempts=1)
    sent = make_row(status=Status.SENT, sent_at=now)
    failed = make_row(status=Status.FAILED)
    exhausted = make_row(attempts=settings.OUTBOX_RETRY_MAX_ATTEMPTS)

    assert outbox.claim_outbound_email(email_id=queued.pk).attempts == 1
    assert outbox.claim_outbound_email(email_id=stale.pk).attempts == 2
    for row in (busy, sent, failed, exhausted):
        assert outbox.claim_outbound_email(email_id=row.pk) is None
    sent.refresh_from_db()
    assert sent.status == Status.SENT


@pytest.mark.django_db
def test_a_sent_row_is_never_marked_sending_or_failed_again():
    email = outbox.claim_outbound_email(email_id=make_row().pk)
    assert outbox.mark_outbound_email_sent(email=email)
    assert not outbox.mark_outbound_email_sent(email=email)
    outbox.mark_outbound_email_failed(email=email, error_code="smtp_550")
    email.refresh_from_db()
    assert email.status == Status.SENT


# --- retries


@pytest.mark.django_db
def test_transient_failure_requeues_with_backoff_then_fails_when_out_of_attempts(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 10
    settings.OUTBOX_RETRY_MAX_SECONDS = 60
    settings.OUTBOX_RETRY_MAX_ATTEMPTS = 3
    email = outbox.claim_outbound_email(email_id=make_row().pk)
    before = timezone.now()
    delay = outbox.schedule_outbound_email_retry(email=email, error_code="smtp_451")
    assert 5 <= delay <= 10
    email.refresh_from_db()
    assert (email.status, email.last_error) == (Status.QUEUED, "smtp_451")
    assert email.enqueued_at >= before + timedelta(seconds=delay - 0.01)
    email = outbox.claim_outbound_email(email_id=email.pk)
    assert 10 <= outbox.schedule_outbound_email_retry(email=email, error_code="timeout") <= 20
    email = outbox.claim_outbound_email(email_id=email.pk)
    assert email.attempts == 3
    assert outbox.schedule_outbound_email_retry(email=email, error_code="timeout") is None
    email.refresh_from_db()
    assert email.status == Status.FAILED
    assert email.last_error.startswith("timeout")


def test_backoff_doubles_and_is_capped(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 30
    settings.OUTBOX_RETRY_MAX_SECONDS = 600
    ceilings = [30, 60, 120, 240, 480, 600, 600]
    for attempts, ceiling in enumerate(ceilings, start=1):
        delay = outbox.retry_delay_seconds(attempts=attempts)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no such user a@x.org")}),
            ("smtp_550", True),
        ),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (451, b"greylisted")}), ("smtp_451", False)),
        (smtplib.SMTPDataError(451, b"try later"), ("smtp_451", False)),
        (smtplib.SMTPDataError(554, b"rejected as spam"), ("smtp_554", True)),
        (smtplib.SMTPConnectError(421, b"too busy"), ("smtp_421", False)),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), ("smtp_535", False)),
        (smtplib.SMTPSenderRefused(553, b"not allowed", "from@x.org"), ("smtp_553", False)),
        (smtplib.SMTPServerDisconnected("gone"), ("smtp_disconnected", False)),
        (ConnectionRefusedError(), ("connection_refused", False)),
        (ConnectionResetError(), ("connection_reset", False)),
        (TimeoutError(), ("timeout", False)),
        (ValueError("Invalid address 'a@'"), ("invalid_address", True)),
        (TemplateDoesNotExist("recovery/email/x_subject.txt"), ("template_error", True)),
        (RuntimeError("a bug"), ("unexpected", False)),
    ],
)
def test_send_errors_are_classified_without_the_servers_text(error, expected):
    assert classify_send_error(error) == expected


# --- the sweeper


@pytest.mark.django_db(transaction=True)
def test_sweeper_re_enqueues_only_what_no_worker_picked_up(broker, settings):
    settings.OUTBOX_STALE_SECONDS = 120
    old = timezone.now() - timedelta(seconds=300)
    fresh = make_row()
    never_enqueued = make_row()
    OutboundEmail.objects.filter(pk=never_enqueued.pk).update(created_at=old)
    enqueued_long_ago = make_row(enqueued_at=old)
    OutboundEmail.objects.filter(pk=enqueued_long_ago.pk).update(created_at=old)
    retry_not_due = make_row(enqueued_at=timezone.now() + timedelta(seconds=60))
    OutboundEmail.objects.filter(pk=retry_not_due.pk).update(created_at=old)
    worker_lost = make_row(status=Status.SENDING, claimed_at=old, attempts=1)
    OutboundEmail.objects.filter(pk=worker_lost.pk).update(created_at=old)
    busy = make_row(status=Status.SENDING, claimed_at=timezone.now(), attempts=1)
    OutboundEmail.objects.filter(pk=busy.pk).update(created_at=old)
    gave_up = make_row(
        status=Status.SENDING, claimed_at=old, attempts=settings.OUTBOX_RETRY_MAX_ATTEMPTS
    )
    OutboundEmail.objects.filter(pk=gave_up.pk).update(created_at=old)
    bulk = make_row(stream=OutboundEmail.Stream.BULK)
    OutboundEmail.objects.filter(pk=bulk.pk).update(created_at=old)
    make_row(status=Status.SENT, sent_at=old)
    purge_broker(settings.CELERY_BROKER_URL)  # only the sweeper's messages below

    assert sweep_outbox() == 4

    # One task per stream for what one sweep found (ids only).
    [swept] = [args for *_, args, _ in queued_task_messages(broker, "email")]
    assert sorted(swept) == sorted([never_enqueued.pk, enqueued_long_ago.pk, worker_lost.pk])
    assert [args for *_, args, _ in queued_task_messages(broker, "bulk_email")] == [[bulk.pk]]
    gave_up.refresh_from_db()
    assert gave_up.status == Status.FAILED
    # Enqueued again just now: the next sweep leaves them alone.
    assert sweep_outbox() == 0
    assert fresh.pk not in swept and retry_not_due.pk not in swept and busy.pk not in swept


@pytest.mark.django_db(transaction=True)
def test_sweeper_takes_a_bounded_batch_oldest_first(broker, settings):
    settings.OUTBOX_STALE_SECONDS = 120
    settings.OUTBOX_SWEEP_BATCH = 3
    rows = [make_row() for _ in range(5)]
    for age, row in enumerate(rows):
        OutboundEmail.objects.filter(pk=row.pk).update(
            created_at=timezone.now() - timedelta(seconds=1000 - age)
        )
    purge_broker(settings.CELERY_BROKER_URL)
    assert sweep_outbox() == 3
    [swept] = [args for *_, args, _ in queued_task_messages(broker, "email")]
    assert sorted(swept) == [row.pk for row in rows[:3]]
    assert sweep_outbox() == 2


# --- links


def test_links_are_built_from_the_configured_base_url_only(settings):
    settings.PORTAL_BASE_URL = "https://portal.district.example/"
    assert (
        absolute_link(purpose="reset", token="abc.def")
        == "https://portal.district.example/help/reset/abc.def/"
    )
    assert absolute_link(purpose="activation", token="t").endswith("/activate/t/")
    assert absolute_link(purpose="email_confirm", token="t").endswith(
        "/portal/account/confirm-email/t/"
    )
    with pytest.raises(ValueError):
        absolute_link(purpose="staff_code", token="t")


def test_the_test_database_is_postgresql():
    assert connection.vendor == "postgresql"


# --- rendering and sending in process (Django's locmem mailer; the worker path is the same)


def render(kind, *, link=None, language="en", **context):
    email = OutboundEmail(
        pk=1,
        kind=kind,
        to_address="parent@example.org",
        token_purpose="reset" if link else "",
        context=checked_context(context),
        language=language,
        created_at=timezone.now(),
    )
    return render_outbound_email(email, link=link)


def test_the_reset_email_has_one_link_on_a_line_of_its_own_and_says_when_it_expires():
    link = "https://portal.example.org/help/reset/abc.def/"
    rendered = render("password_reset", link=link, username="jdoe")
    assert "\n" not in rendered.subject
    assert link in rendered.text.splitlines()
    assert rendered.text.count("http") == 1
    assert re.findall(r'href="([^"]+)"', rendered.html) == [link]
    assert "60 minutes" in rendered.text and "60 minutes" in rendered.html
    assert settings.SUPPORT_CONTACT in rendered.text
    assert "Did not ask for this?" in rendered.text


def test_emails_render_in_the_rows_language_and_escape_context_in_html_only():
    rendered = render("password_changed", language="es", browser="<b>Firefox</b>")
    assert '<html lang="es"' in rendered.html
    assert "&lt;b&gt;Firefox&lt;/b&gt;" in rendered.html
    assert "<b>Firefox</b>" in rendered.text
    assert "http" not in rendered.text + rendered.html


@pytest.mark.django_db
def test_an_action_email_for_a_disabled_account_fails_without_minting_a_link(mailoutbox):
    user = get_user_model().objects.create_user(username="gone", is_active=False)
    email = make_row(kind="password_reset", user=user, token_purpose="reset")
    assert deliver_outbound_email(email_id=email.pk).status == "failed"
    email.refresh_from_db()
    assert (email.status, email.last_error) == (Status.FAILED, "inactive_user")
    assert not IssuedToken.objects.filter(user=user).exists()
    assert mailoutbox == []


@pytest.mark.django_db
def test_delivery_in_process_sends_once_and_a_second_task_is_a_no_op(mailoutbox):
    user = get_user_model().objects.create_user(username="jdoe")
    email = make_row(kind="password_reset", user=user, token_purpose="reset")
    assert deliver_outbound_email(email_id=email.pk).status == "sent"
    assert deliver_outbound_email(email_id=email.pk).status == "skipped"
    [message] = mailoutbox
    assert message.to == ["parent@example.org"]
    assert [mimetype for _, mimetype in message.alternatives] == ["text/html"]
    assert IssuedToken.objects.filter(user=user, purpose="reset").count() == 1


# --- batches: one task, one claim and one SMTP session for many emails


@pytest.mark.django_db(transaction=True)
def test_emails_written_in_one_transaction_share_tasks_of_ids_only(broker, settings):
    with transaction.atomic():
        notices = [
            queue_email(kind="password_changed", to_address=f"p{n}@example.org")
            for n in range(outbox.SEND_BATCH + 3)
        ]
        welcome = queue_email(
            kind="password_changed", to_address="w@example.org", stream=OutboundEmail.Stream.BULK
        )
        assert broker.llen("email") == broker.llen("bulk_email") == 0
    messages = queued_task_messages(broker, "email")
    assert [headers["task"] for _, headers, _, _ in messages] == [
        "recovery.tasks.send_outbound_email"
    ] * 2
    assert sorted(args for *_, args, _ in messages) == [
        [email.pk for email in notices[: outbox.SEND_BATCH]],
        [email.pk for email in notices[outbox.SEND_BATCH :]],
    ]
    assert all(kwargs == {} and b"@example.org" not in raw for raw, _, _, kwargs in messages)
    assert [args for *_, args, _ in queued_task_messages(broker, "bulk_email")] == [[welcome.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_leaves_the_transactions_other_emails_enqueued(broker):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            queue_email(kind="password_changed", to_address="gone@example.org")
            raise RuntimeError("rolled back with its savepoint")
        kept = queue_email(kind="password_changed", to_address="kept@example.org")
    assert [args for *_, args, _ in queued_task_messages(broker, "email")] == [[kept.pk]]
    assert list(OutboundEmail.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db(transaction=True)
def test_a_batch_claim_takes_claimable_rows_and_skips_rows_locked_elsewhere(settings):
    settings.OUTBOX_STALE_SECONDS = 120
    now = timezone.now()
    queued, locked, sent = make_row(), make_row(), make_row(status=Status.SENT, sent_at=now)
    stale = make_row(status=Status.SENDING, claimed_at=now - timedelta(seconds=121), attempts=1)
    holding, release = threading.Event(), threading.Event()

    def hold_lock():
        # Another worker's transaction holding the row: the claim must neither wait nor take it.
        try:
            with transaction.atomic():
                OutboundEmail.objects.select_for_update().get(pk=locked.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert holding.wait(timeout=30)
        claimed = outbox.claim_outbound_emails(
            email_ids=[sent.pk, stale.pk, locked.pk, queued.pk, 999_999]
        )
    finally:
        release.set()
        holder.join()
    assert [(email.pk, email.status, email.attempts) for email in claimed] == [
        (queued.pk, Status.SENDING, 1),
        (stale.pk, Status.SENDING, 2),
    ]
    assert outbox.claim_outbound_emails(email_ids=[queued.pk, stale.pk]) == []
    assert outbox.claim_outbound_email(email_id=locked.pk).attempts == 1


@pytest.mark.django_db
def test_a_batch_is_delivered_in_process_each_row_once(mailoutbox):
    user = get_user_model().objects.create_user(username="jdoe")
    rows = [make_row(to_address=f"p{n}@example.org") for n in range(3)]
    rows.append(make_row(kind="password_reset", user=user, token_purpose="reset"))
    ids = [row.pk for row in rows]
    results = deliver_outbound_emails(email_ids=[*ids, ids[0]])
    assert {pk: result.status for pk, result in results.items()} == dict.fromkeys(ids, "sent")
    assert sorted(message.to[0] for message in mailoutbox) == sorted(r.to_address for r in rows)
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {Status.SENT}
    assert IssuedToken.objects.filter(user=user, purpose="reset").count() == 1
    again = deliver_outbound_emails(email_ids=ids)
    assert {result.status for result in again.values()} == {"skipped"}
    assert len(mailoutbox) == 4


@pytest.mark.django_db
def test_a_batch_that_runs_long_hands_the_rest_back_untried(mailoutbox, settings):
    # Its claim would soon look stale and go to another worker: the rest goes back to the queue
    # with its attempt returned, to be claimed afresh (each claim still sends one email).
    settings.OUTBOX_STALE_SECONDS = 0
    rows = [make_row(to_address=f"p{n}@example.org") for n in range(3)]
    results = deliver_outbound_emails(email_ids=[row.pk for row in rows])
    assert [results[row.pk].status for row in rows] == ["sent", "deferred", "deferred"]
    assert len(mailoutbox) == 1
    for row in rows[1:]:
        row.refresh_from_db()
        assert (row.status, row.attempts) == (Status.QUEUED, 0)


@pytest.mark.django_db
def test_a_batch_commits_its_marks_asynchronously_and_only_inside(mailoutbox):
    def synchronous_commit():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with outbox.asynchronous_commits():
        assert synchronous_commit() == "off"
        with outbox.durable_commit():  # the token ledger's transaction
            assert synchronous_commit() == "on"
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"


@pytest.mark.parametrize("language", ["en", "vi"])
def test_the_outbox_message_is_the_mime_djangos_builder_would_make(language):
    email = OutboundEmail(
        pk=7,
        kind="password_changed",
        to_address="parent@example.org",
        context=checked_context({"browser": "Firefox", "changed_at": timezone.now()}),
        language=language,
        created_at=timezone.now(),
    )
    rendered = render_outbound_email(email)
    message = build_message(email, rendered)
    ours = email_lib.message_from_bytes(
        message.message(policy=email_policy.SMTP).as_bytes(), policy=email_policy.default
    )
    djangos = email_lib.message_from_bytes(
        super(OutboxMessage, message).message(policy=email_policy.SMTP).as_bytes(),
        policy=email_policy.default,
    )
    for parsed in (ours, djangos):
        assert parsed.get_content_type() == "multipart/alternative"
        assert str(parsed["Subject"]) == rendered.subject
        assert parsed["Message-ID"] == message_id_for(email)
        assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text
        assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == rendered.html
    for name in ("From", "To", "Auto-Submitted", "X-Auto-Response-Suppress", "MIME-Version"):
        assert ours[name] == djangos[name], name
    assert parsedate_to_datetime(ours["Date"]).tzinfo is not None
    assert language == "en" or not rendered.subject.isascii()


def test_an_unusual_outbox_message_is_left_to_djangos_builder():
    email = OutboundEmail(
        pk=7, kind="password_changed", to_address="padre@ejemplo.españa", created_at=timezone.now()
    )
    message = build_message(email, render_outbound_email(email))
    built = message.message(policy=email_policy.SMTP)
    assert isinstance(built, ModernMessage)  # the modern API's class: Django's
    assert built["To"] == "padre@ejemplo.xn--espaa-rta"


@pytest.mark.django_db(transaction=True)
def test_a_batch_past_the_mail_breaker_sends_what_it_may_and_defers_the_rest(
    broker, mailoutbox, settings
):
    from recovery import ratelimit

    settings.RATELIMIT_MAIL_GLOBAL = "2/m"
    rows = [make_row(to_address=f"p{n}@example.org") for n in range(3)]
    with time_machine.travel(timezone.now(), tick=False):
        ratelimit.reset(action="mail.global", key="all", rate="2/m")  # this window starts empty
        results = deliver_outbound_emails(email_ids=[row.pk for row in rows])
    assert [results[row.pk].status for row in rows] == ["sent", "sent", "deferred"]
    assert len(mailoutbox) == 2
    rows[2].refresh_from_db()
    assert (rows[2].status, rows[2].attempts) == (Status.QUEUED, 0)  # its attempt handed back
    [(_, _, args, _)] = queued_task_messages(broker, "email")  # enqueued again, for later
    assert args == [rows[2].pk]


def test_each_thread_keeps_its_own_smtp_connection(smtp_server, settings, monkeypatch):
    # Under `celery worker --pool threads` each pool thread sends on its own SMTP session.
    from django.core.mail import EmailMessage

    from recovery import mailer

    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10},
        }
    }
    monkeypatch.setattr(mailer, "_reuse", True)

    def send_two(name):
        try:
            for n in range(2):
                mailer.send_message(
                    EmailMessage(subject=f"{name} {n}", body="x", to=[f"{name}@example.org"])
                )
        finally:
            mailer.close_connection()

    threads = [threading.Thread(target=send_two, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peers = collections.defaultdict(set)
    for message in smtp_server.wait_for_messages(4):
        peers[message.rcpt_tos[0]].add(message.peer)
    assert all(len(thread_peers) == 1 for thread_peers in peers.values())  # reused
    assert peers["a@example.org"] != peers["b@example.org"]  # not shared
