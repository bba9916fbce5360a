"""Reads of recovery state (HackSoft style: writes live in services and flows)."""

from django.utils import timezone

from recovery.models import OutboundEmail


def oldest_unsent_email_age_seconds(now=None):
    """Age of the oldest email not yet sent or given up on; 0 when the outbox is empty."""
    oldest = (
        OutboundEmail.objects.filter(
            status__in=[OutboundEmail.Status.QUEUED, OutboundEmail.Status.SENDING]
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if oldest is None:
        return 0
    return max(0, int(((now or timezone.now()) - oldest).total_seconds()))
