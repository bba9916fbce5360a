"""The outbox row's state machine: claim, mark sent, schedule a retry, give up.

    queued ──claim──► sending ──► sent
       ▲                 │
       └── transient ────┤  (attempts < OUTBOX_RETRY_MAX_ATTEMPTS)
                         └──► failed  (permanent error, or out of attempts)

Every transition is one conditional UPDATE, so two workers holding copies of the same task
cannot both move a row: the database decides who wins. A worker claims up to SEND_BATCH rows in
one statement and marks each sent as soon as the relay took it, so a worker killed mid-batch has
sent at most one email it did not record; the rest of its claim is `sending` with an old
`claimed_at`, which the sweeper hands out again after OUTBOX_STALE_SECONDS. `enqueued_at` is
when the latest enqueue is due (now for a fresh one, the retry's due time after a transient
failure); the sweeper measures staleness from it. Writes only; services in `recovery.emails`
drive them.
"""

import logging
import random
import threading
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from recovery.models import OutboundEmail

logger = logging.getLogger(__name__)

Status = OutboundEmail.Status

# Rows per send task and per claim. A claim costs one round trip whatever its size, and a task
# costs Celery a few milliseconds of its own, so both are shared by a batch; small enough that
# a batch is sent long before its claim looks stale (20 x 1 s per message < OUTBOX_STALE_SECONDS)
# and that a burst still spreads over every worker process.
SEND_BATCH = 20


def claim_outbound_emails(*, email_ids, now=None):
    """Move the claimable rows among `email_ids` to `sending` and return them, by id.

    Claimable: a queued row, or a `sending` row whose claim is older than OUTBOX_STALE_SECONDS
    (its worker died mid-send: the redelivery after a SIGKILL). Each claim counts an attempt,
    so an email that kills its worker every time still runs out of attempts. Rows another
    transaction holds locked (another worker's claim in flight, the sweeper) are skipped, never
    waited for, so two workers claiming overlapping batches cannot deadlock.
    """
    now = now or timezone.now()
    email_ids = sorted(set(email_ids))
    if not email_ids:
        return []
    stale_before = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    if connection.vendor != "postgresql":
        return [row for pk in email_ids if (row := _claim_one(pk, now, stale_before))]
    return _claim_batch(email_ids, now, stale_before)


def claim_outbound_email(*, email_id, now=None):
    """claim_outbound_emails for one row: the row, or None if it is not ours to send."""
    claimed = claim_outbound_emails(email_ids=[email_id], now=now)
    return claimed[0] if claimed else None


def mark_outbound_email_sent(*, email, now=None):
    """Record the delivery. False if the row had already left `sending` (a duplicate send)."""
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        with _asynchronous_commit():
            updated = OutboundEmail.objects.filter(pk=email.pk, status=Status.SENDING).update(
                status=Status.SENT, sent_at=now, last_error=""
            )
        return bool(updated)
    # Once per email: plain SQL, as the ORM's query building costs more than the round trip.
    table = connection.ops.quote_name(OutboundEmail._meta.db_table)
    with _asynchronous_commit(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, sent_at = %s, last_error = '' "  # noqa: S608 (the model's table)
            "WHERE id = %s AND status = %s",
            [Status.SENT, now, email.pk, Status.SENDING],
        )
        return cursor.rowcount == 1


def retry_delay_seconds(*, attempts):
    """Capped exponential backoff with jitter, so a relay outage does not end in a stampede."""
    ceiling = min(
        settings.OUTBOX_RETRY_MAX_SECONDS,
        settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1),
    )
    return ceiling * random.uniform(0.5, 1.0)


def schedule_outbound_email_retry(*, email, error_code, now=None):
    """Put a transiently failed row back in the queue; return the delay, or None if it failed.

    Out of attempts, the row is marked failed instead.
    """
    if email.attempts >= settings.OUTBOX_RETRY_MAX_ATTEMPTS:
        mark_outbound_email_failed(email=email, error_code=f"{error_code} (attempts exhausted)")
        return None
    delay = retry_delay_seconds(attempts=email.attempts)
    due = (now or timezone.now()) + timedelta(seconds=delay)
    OutboundEmail.objects.filter(pk=email.pk, status=Status.SENDING).update(
        status=Status.QUEUED, enqueued_at=due, last_error=error_code[:255]
    )
    return delay


def defer_outbound_emails(*, emails, delay, now=None):
    """Put claimed rows back in the queue untried, due in `delay` seconds (the mail breaker said
    wait, or the batch ran long): each claim's attempt is handed back, so this never makes an
    email run out of attempts."""
    due = (now or timezone.now()) + timedelta(seconds=delay)
    OutboundEmail.objects.filter(
        pk__in=[email.pk for email in emails], status=Status.SENDING
    ).update(status=Status.QUEUED, enqueued_at=due, attempts=F("attempts") - 1)


def defer_outbound_email(*, email, delay, now=None):
    defer_outbound_emails(emails=[email], delay=delay, now=now)


def mark_outbound_email_failed(*, email, error_code):
    OutboundEmail.objects.filter(pk=email.pk).exclude(status=Status.SENT).update(
        status=Status.FAILED, last_error=error_code[:255]
    )
    logger.warning(
        "Outbound email %s (%s) failed for good after %s attempt(s): %s",
        email.pk,
        email.kind,
        email.attempts,
        error_code,
    )


def take_stale_outbound_emails(*, now=None, limit=None):
    """Rows the sweeper must enqueue again, as (id, stream) pairs; marks them enqueued now.

    Stale: queued, or claimed by a worker that went quiet, and not (re-)enqueued within
    OUTBOX_STALE_SECONDS. Stale rows that used up every attempt are failed here instead,
    because no claim will ever take them again. Bounded by `limit` (OUTBOX_SWEEP_BATCH), oldest
    first; the next sweep takes the rest.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    limit = limit or settings.OUTBOX_SWEEP_BATCH
    last_enqueued = Coalesce("enqueued_at", "created_at")
    with transaction.atomic():
        rows = list(
            OutboundEmail.objects.annotate(last_enqueued=last_enqueued)
            .filter(
                Q(status=Status.QUEUED) | Q(status=Status.SENDING, claimed_at__lt=stale_before),
                last_enqueued__lt=stale_before,
            )
            .order_by("last_enqueued")
            # Two sweepers at once (two beats, or a slow one) split the work, never share it.
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "stream", "attempts")[:limit]
        )
        max_attempts = settings.OUTBOX_RETRY_MAX_ATTEMPTS
        exhausted = [pk for pk, _, attempts in rows if attempts >= max_attempts]
        if exhausted:
            OutboundEmail.objects.filter(pk__in=exhausted).update(
                status=Status.FAILED, last_error="worker lost (attempts exhausted)"
            )
            logger.warning("Outbox sweep gave up on %s email(s): %s", len(exhausted), exhausted)
        retake = [(pk, stream) for pk, stream, attempts in rows if attempts < max_attempts]
        OutboundEmail.objects.filter(pk__in=[pk for pk, _ in retake]).update(enqueued_at=now)
    return retake


def _claim_batch(email_ids, now, stale_before):
    # One statement locks the claimable rows (skipping locked ones) and claims them; the rows
    # are then read by id in one query.
    table = connection.ops.quote_name(OutboundEmail._meta.db_table)
    claimable = "(status = %s OR (status = %s AND claimed_at < %s)) AND attempts < %s"
    sql = (
        f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608 (names from the model; values are parameters)
        f"WHERE id IN (SELECT id FROM {table} WHERE id = ANY(%s) AND {claimable} "
        "ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id"
    )
    params = [Status.SENDING, now, email_ids, Status.QUEUED, Status.SENDING, stale_before]
    with _asynchronous_commit(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, settings.OUTBOX_RETRY_MAX_ATTEMPTS])
        claimed = [pk for (pk,) in cursor.fetchall()]
    if not claimed:
        return []
    return list(OutboundEmail.objects.filter(pk__in=claimed).order_by("pk"))


def _claim_one(email_id, now, stale_before):
    with _asynchronous_commit():
        claimed = OutboundEmail.objects.filter(
            Q(status=Status.QUEUED) | Q(status=Status.SENDING, claimed_at__lt=stale_before),
            pk=email_id,
            attempts__lt=settings.OUTBOX_RETRY_MAX_ATTEMPTS,
        ).update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return OutboundEmail.objects.filter(pk=email_id, status=Status.SENDING, claimed_at=now).first()


@contextmanager
def asynchronous_commits():
    """Around a worker's batch: its claims and transitions commit without waiting for the disk.

    Claims and sent marks are commits for every email, and waiting for PostgreSQL's WAL flush on
    each would bound dispatch by fsync latency. A database crash can lose the last fraction of
    a second of them; a lost claim or sent mark makes the row look unsent, so at worst the email
    goes out twice, which the at-least-once contract (recovery.emails) already allows, and a
    lost retry or failure mark leaves the row to the sweeper. Nothing is ever corrupted. The
    setting is the session's for the batch (one statement, not three per transition), and
    anything else committed meanwhile, the token ledger, asks for durability (durable_commit).
    (A session setting assumes the worker's own PostgreSQL session, as DATABASE_URL gives it;
    behind a transaction-pooling PgBouncer it could outlive the batch on a shared session.)
    """
    if connection.vendor != "postgresql" or _async.active:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    _async.active = True
    try:
        yield
    finally:
        _async.active = False
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except (DatabaseError, InterfaceError):
            # A broken connection: it must not go back to the pool with the setting on it.
            if not connection.in_atomic_block:
                connection.close()


@contextmanager
def durable_commit():
    """A transaction that waits for the disk even inside asynchronous_commits (a minted token's
    ledger row: a link that was sent must work after a database crash)."""
    with transaction.atomic():
        if _async.active:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO ON")
        yield
    if _async.active and connection.in_atomic_block:
        # Ours was a savepoint, and SET LOCAL lasts to the end of the enclosing transaction.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


class _AsyncState(threading.local):
    active = False


_async = _AsyncState()


@contextmanager
def _asynchronous_commit():
    """One transition committed without waiting for the disk (see asynchronous_commits).

    Inside a batch the session already says so, and one statement needs no transaction of its
    own; alone (a single claim in a test, say) it is a transaction with SET LOCAL.
    """
    if _async.active and connection.get_autocommit():
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
