"""The outbox row's state machine: claim, mark sent, schedule a retry, give up.

    queued ──claim──► sending ──► sent
       ▲                 │
       └── transient ────┤  (attempts < OUTBOX_RETRY_MAX_ATTEMPTS)
                         └──► failed  (permanent error, or out of attempts)

Every transition is one conditional UPDATE, so two workers holding copies of the same task
cannot both move a row: the database decides who wins. `enqueued_at` is when the latest
enqueue is due (now for a fresh one, the retry's due time after a transient failure); the
sweeper measures staleness from it. Writes only; services in `recovery.emails` drive them.
"""

import logging
import random
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from recovery.models import OutboundEmail

logger = logging.getLogger(__name__)

Status = OutboundEmail.Status


def claim_outbound_email(*, email_id, now=None):
    """Move one row to `sending` and return it, or return None if it is not ours to send.

    Claimable: a queued row, or a `sending` row whose claim is older than OUTBOX_STALE_SECONDS
    (its worker died mid-send: the redelivery after a SIGKILL). Each claim counts an attempt,
    so an email that kills its worker every time still runs out of attempts.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    with _asynchronous_commit():
        claimed = OutboundEmail.objects.filter(
            Q(status=Status.QUEUED) | Q(status=Status.SENDING, claimed_at__lt=stale_before),
            pk=email_id,
            attempts__lt=settings.OUTBOX_RETRY_MAX_ATTEMPTS,
        ).update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return OutboundEmail.objects.filter(pk=email_id, status=Status.SENDING, claimed_at=now).first()


def mark_outbound_email_sent(*, email, now=None):
    """Record the delivery. False if the row had already left `sending` (a duplicate send)."""
    with _asynchronous_commit():
        updated = OutboundEmail.objects.filter(pk=email.pk, status=Status.SENDING).update(
            status=Status.SENT, sent_at=now or timezone.now(), last_error=""
        )
    return bool(updated)


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


def defer_outbound_email(*, email, delay, now=None):
    """Put a claimed row back in the queue untried (the mail breaker said wait): the claim's
    attempt is handed back, so deferrals never make an email run out of attempts."""
    due = (now or timezone.now()) + timedelta(seconds=delay)
    OutboundEmail.objects.filter(pk=email.pk, status=Status.SENDING).update(
        status=Status.QUEUED, enqueued_at=due, attempts=F("attempts") - 1
    )


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


@contextmanager
def _asynchronous_commit():
    """A transaction that commits without waiting for PostgreSQL's WAL flush.

    Claims and sent marks are two commits per email, and waiting for the disk on each would
    bound dispatch by fsync latency. A database crash can lose the last fraction of a second
    of them; a lost claim or sent mark makes the row look unsent, so at worst the email goes
    out twice, which the at-least-once contract (recovery.emails) already allows. Nothing is
    ever corrupted, and nothing else runs this way.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
