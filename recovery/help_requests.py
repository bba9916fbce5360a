"""The request side of every Help form: constant work, whatever was typed (SPEC §5, §6.1).

    try:
        submit_help_request(kind=HelpRequest.Kind.FORGOT_PASSWORD, identifier=username,
                            request=request)
    except HelpRequestThrottled as throttled:
        ...  # the 429 page, "try again in N minutes" (throttled.retry_after seconds)

A submission never looks an account up. It counts the rate limits (per normalised identifier
and per client IP; both counters are always incremented, and their keys are what was typed, so
a throttle reads the same for known and unknown identifiers), writes one audit event and one
HelpRequest row, and on commit enqueues one task with the row's id. The worker
(recovery.resolution) finds the account and decides what, if anything, to send. So the page
cannot tell whether an account exists, in content or in time, and a broker or SMTP outage
cannot change it: an enqueue failure is logged by id and beat's sweep_help_requests enqueues
the row again later.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from recovery import ratelimit
from recovery.app_settings import app_settings
from recovery.audit import hash_identifier, record_event
from recovery.models import HelpRequest

logger = logging.getLogger(__name__)

Kind = HelpRequest.Kind
_IDENTIFIER_MAX = HelpRequest._meta.get_field("identifier").max_length


class HelpRequestThrottled(Exception):
    """Too many Help requests for this identifier or from this network; nothing was written
    but the audit event. `retry_after` is in seconds."""

    def __init__(self, retry_after):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = int(retry_after)


def submit_help_request(*, kind, identifier, request):
    """Count, record and queue one Help request; raise HelpRequestThrottled past a limit.

    `identifier` is what the form accepted (a username or an email address); forms validate
    it, this only stores it. Returns None: there is nothing the caller may learn.
    """
    kind = Kind(kind)
    identifier = str(identifier)[:_IDENTIFIER_MAX]
    retry_after = _throttled_for(kind=kind, identifier=identifier, request=request)
    if retry_after:
        record_event(
            action="help_request.throttled",
            request=request,
            identifier=identifier,
            detail={"kind": kind.value, "retry_after": retry_after},
        )
        raise HelpRequestThrottled(retry_after)
    with transaction.atomic():
        # The audit event cleans the IP and User-Agent the same way for both rows.
        event = record_event(
            action="help_request.submitted",
            request=request,
            identifier=identifier,
            detail={"kind": kind.value},
        )
        help_request = HelpRequest.objects.create(
            kind=kind,
            identifier=identifier,
            identifier_hash=hash_identifier(identifier),
            ip=event.ip,
            user_agent=event.user_agent,
            language=_language(),
        )
        help_request_id = help_request.pk
        transaction.on_commit(lambda: enqueue_help_request(help_request_id=help_request_id))


def _throttled_for(*, kind, identifier, request):
    """Seconds to wait, or 0. Both counters count every request: constant work."""
    decisions = [
        ratelimit.hit(
            action=f"help.{kind.value}.identifier",
            key=identifier,
            rate=app_settings.RATELIMIT_RESET_PER_IDENTIFIER,
        ),
        # One per-IP counter for both forms: one network's total Help traffic.
        ratelimit.hit(
            action="help.ip",
            key=ratelimit.client_ip(request),
            rate=app_settings.RATELIMIT_RESET_PER_IP,
        ),
    ]
    return max((d.retry_after for d in decisions if not d.allowed), default=0)


def _language():
    known = {code for code, _ in settings.LANGUAGES}
    language = translation.get_language() or ""
    if language in known:
        return language
    base = language.split("-")[0]
    return base if base in known else settings.LANGUAGE_CODE


def enqueue_help_request(*, help_request_id):
    """Publish the resolve task for one row; True if the broker took it.

    A broker failure is logged (by id) and swallowed: the person's page never changes, and the
    sweeper enqueues the row once the broker is back.
    """
    from recovery.tasks import resolve_help_request

    try:
        resolve_help_request.apply_async(
            args=[help_request_id],
            retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2},
        )
    except Exception as error:
        logger.warning(
            "Could not enqueue help request %s (%s); the sweeper will retry it.",
            help_request_id,
            type(error).__name__,
        )
        return False
    return True


def sweep_help_requests(*, now=None):
    """Re-enqueue Help requests still unresolved OUTBOX_STALE_SECONDS after they were made.

    Beat runs this every OUTBOX_SWEEP_SECONDS. Bounded by OUTBOX_SWEEP_BATCH, oldest first; a
    copy of a task whose row is already resolved costs the worker one no-op query.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    ids = list(
        HelpRequest.objects.filter(resolved_at__isnull=True, created_at__lt=stale_before)
        .order_by("created_at")
        .values_list("pk", flat=True)[: settings.OUTBOX_SWEEP_BATCH]
    )
    for help_request_id in ids:
        enqueue_help_request(help_request_id=help_request_id)
    if ids:
        logger.info("Help request sweep re-enqueued %s request(s).", len(ids))
    return len(ids)
