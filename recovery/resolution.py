"""The worker side of a Help request: find the account, send what is due, forget the typing.

    resolve_help_request(help_request_id=...)   # recovery.tasks.resolve_help_request calls it

One transaction per request: the row is claimed with SELECT ... FOR UPDATE SKIP LOCKED while
unresolved, the flow for its kind queues its emails through the outbox (so they exist iff the
resolution commits), and the row is marked resolved with the flow's outcome and its typed
identifier blanked (only the keyed hash stays). A worker killed midway rolls everything back
and the sweeper (recovery.help_requests) enqueues the row again. A flow that raises is logged
by id and the row is closed as "error", so a poisonous row is not retried for ever.

Each flow is `resolve_<...>_request(*, help_request) -> str`, returning a short outcome for
staff and the audit trail ("reset_sent", "unknown", ...), never shown to the person asking.
"""

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from recovery import ratelimit
from recovery.app_settings import app_settings
from recovery.audit import record_event
from recovery.models import HelpRequest

logger = logging.getLogger(__name__)

Kind = HelpRequest.Kind

# By import path: each flow module is its journey's own; imported when first needed.
RESOLVERS = {
    Kind.FORGOT_PASSWORD: "recovery.flows.password_reset.resolve_password_reset_request",
    Kind.FORGOT_USERNAME: "recovery.flows.username_reminder.resolve_username_reminder_request",
}


def resolve_help_request(*, help_request_id):
    """Resolve one Help request; return its outcome, or None if it was not ours to resolve."""
    try:
        with transaction.atomic():
            help_request = (
                HelpRequest.objects.select_for_update(skip_locked=True)
                .filter(pk=help_request_id, resolved_at__isnull=True)
                .first()
            )
            if help_request is None:
                return None  # resolved already, or in another worker's hands: a duplicate
            outcome = import_string(RESOLVERS[help_request.kind])(help_request=help_request)
            _close(help_request, outcome=str(outcome)[:32])
            return outcome
    except Exception:
        logger.exception("Help request %s could not be resolved.", help_request_id)
    with transaction.atomic():
        help_request = (
            HelpRequest.objects.select_for_update(skip_locked=True)
            .filter(pk=help_request_id, resolved_at__isnull=True)
            .first()
        )
        if help_request is not None:
            _close(help_request, outcome="error")
    return "error"


def _close(help_request, *, outcome):
    HelpRequest.objects.filter(pk=help_request.pk).update(
        resolved_at=timezone.now(), outcome=outcome, identifier=""
    )
    record_event(
        action="help_request.resolved",
        identifier=help_request.identifier,
        detail={"kind": help_request.kind, "outcome": outcome, "help_request": help_request.pk},
    )


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
