"""The worker side of Help requests: find the account, send what is due, forget the typing.

    resolve_help_requests()   # recovery.tasks.resolve_help_requests calls it

A resolver task drains the unresolved rows, oldest first, in batches of BATCH_SIZE: each batch
is one transaction that claims its rows with SELECT ... FOR UPDATE SKIP LOCKED (so workers
running side by side split the work and no row is resolved twice), runs the flow for each
row's kind in a savepoint of its own (its emails go through the outbox, so they exist iff the
resolution commits), and then closes the batch in two statements: the rows marked resolved
with their outcomes and their typed identifiers blanked (only the keyed hash stays), and the
requests' audit events written. A worker killed midway rolls its batch back and the sweeper
(recovery.help_requests) queues a resolver again. A flow that raises is logged by id and its
row closed as "error", so a poisonous row is not retried for ever.

Each flow is `resolve_<...>_request(*, help_request)`, returning a short outcome for staff and
the audit trail ("reset_sent", "unknown", ...), never shown to the person asking, or
(outcome, account) when one account was found: the resolved event then names it as subject.
"""

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from recovery import ratelimit
from recovery.app_settings import app_settings
from recovery.audit import build_event
from recovery.help_requests import clear_resolver_pending, enqueue_resolver
from recovery.models import AuditEvent, HelpRequest

logger = logging.getLogger(__name__)

Kind = HelpRequest.Kind

# By import path: each flow module is its journey's own; imported when first needed.
RESOLVERS = {
    Kind.FORGOT_PASSWORD: "recovery.flows.password_reset.resolve_password_reset_request",
    Kind.FORGOT_USERNAME: "recovery.flows.username_reminder.resolve_username_reminder_request",
}
# A flow may also answer one question for a whole batch in one query; its answer reaches the
# flow's resolver as the keyword argument named here.
BATCH_LOOKUPS = {
    Kind.FORGOT_PASSWORD: ("accounts", "recovery.flows.password_reset.accounts_named"),
    Kind.FORGOT_USERNAME: (
        "addresses_in_use",
        "recovery.flows.username_reminder.addresses_in_use",
    ),
}
# Rows per transaction: large enough to share its commit, small enough that a person waits
# for at most one batch before their email is queued.
BATCH_SIZE = 50
# Then the task hands over to a fresh one, so the email tasks queued meanwhile get their turn.
MAX_BATCHES_PER_TASK = 20


def resolve_help_requests(*, batch_size=BATCH_SIZE, max_batches=MAX_BATCHES_PER_TASK):
    """Resolve the pending Help requests; return how many this call resolved."""
    # Before the first claim: a request committed from now on publishes a task of its own.
    clear_resolver_pending()
    resolved = 0
    for _ in range(max_batches):
        count = _resolve_batch(limit=batch_size)
        resolved += count
        if count < batch_size:
            return resolved
    enqueue_resolver()  # more may be waiting
    return resolved


def _resolve_batch(*, limit):
    with transaction.atomic():
        rows = list(
            HelpRequest.objects.select_for_update(skip_locked=True)
            .filter(resolved_at__isnull=True)
            .order_by("pk")[:limit]
        )
        if not rows:
            return 0
        events = []
        lookups = _batch_lookups(rows)
        for help_request in rows:
            outcome, subject = _resolve(help_request, **lookups.get(help_request.kind, {}))
            events += _audit_events(help_request, outcome=outcome, subject=subject)
            help_request.outcome = outcome
        _close(rows)
        AuditEvent.objects.bulk_create(events)
    return len(rows)


def _close(rows):
    """Mark `rows` resolved, blanking what was typed: one UPDATE per outcome (a batch has few
    distinct outcomes, and a plain UPDATE is far cheaper to build than bulk_update's CASE)."""
    now = timezone.now()
    by_outcome = {}
    for help_request in rows:
        by_outcome.setdefault(help_request.outcome, []).append(help_request.pk)
    for outcome, ids in by_outcome.items():
        HelpRequest.objects.filter(pk__in=ids).update(
            resolved_at=now, outcome=outcome, identifier=""
        )


def _batch_lookups(rows):
    """{kind: {keyword: answer}} for the kinds in `rows` that have a batch look-up. One that
    fails is logged and left out: its rows are then resolved with their own queries."""
    lookups = {}
    for kind, (keyword, path) in BATCH_LOOKUPS.items():
        requests = [help_request for help_request in rows if help_request.kind == kind]
        if not requests:
            continue
        try:
            with transaction.atomic():
                lookups[kind] = {keyword: import_string(path)(help_requests=requests)}
        except Exception:
            logger.exception("Batch look-up %s failed; resolving its rows one by one.", path)
    return lookups


def _resolve(help_request, **lookups):
    try:
        with transaction.atomic():  # a savepoint: a flow that fails undoes only its own writes
            resolver = import_string(RESOLVERS[help_request.kind])
            result = resolver(help_request=help_request, **lookups)
    except Exception:
        logger.exception("Help request %s could not be resolved.", help_request.pk)
        return "error", None
    outcome, subject = result if isinstance(result, tuple) else (result, None)
    return str(outcome)[:32], subject


def _audit_events(help_request, *, outcome, subject):
    """The request, dated when it was made and from where, and what became of it."""
    common = {"identifier_hash": help_request.identifier_hash}
    return [
        build_event(
            action="help_request.submitted",
            at=help_request.created_at,
            ip=help_request.ip,
            user_agent=help_request.user_agent,
            detail={"kind": help_request.kind, "help_request": help_request.pk},
            **common,
        ),
        build_event(
            action="help_request.resolved",
            subject=subject,
            detail={"kind": help_request.kind, "outcome": outcome, "help_request": help_request.pk},
            **common,
        ),
    ]


def address_email_allowed(*, address):
    """Count one email to `address` (as stored) against RATELIMIT_EMAIL_PER_ADDRESS.

    For the flows: False means "send nothing" (inbox flooding, checklist B1). Keyed by the
    normalised address, so spelling variants of one mailbox share the count.
    """
    decision = ratelimit.hit(
        action="help.email.address",
        key=ratelimit.normalise_identifier(address),
        rate=app_settings.RATELIMIT_EMAIL_PER_ADDRESS,
    )
    return decision.allowed
