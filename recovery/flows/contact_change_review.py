"""Staff decide parents' contact-change requests (issue 5 item 5; portal.contact_changes).

    approve_contact_change(change=change, staff=me, request=request)
    reject_contact_change(change=change, staff=me, reason="...", request=request)

The SIS stays the source of truth: approving records the decision, and staff then update the
SIS (the nightly import brings the new value back); nothing on record changes here. Either way
the parent is told by a fixed-text email (`contact_change_{approved,rejected}`) at their notice
address (portal.selectors.notice_address: their verified recovery email, else an SIS address
no other guardian shares), never at the value they asked for. The only staff-written words it
carries are a rejection's reason. Each decision is one transaction with its audit event
`staff.contact_change_{approved,rejected}`.

Which requests a staff member may decide (school scope) is the view's check, before these run.
"""

import re

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import ContactChangeRequest
from portal.selectors import notice_address
from recovery.audit import record_event
from recovery.emails import queue_email

Status = ContactChangeRequest.Status
REASON_MAX = ContactChangeRequest._meta.get_field("decision_reason").max_length
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The outbox refuses links in an email's context, and a reason needs none: links reach
# families only under PORTAL_BASE_URL, minted by the worker.
_LINKISH = re.compile(r"://|\bwww\.", re.IGNORECASE)


class ReviewRefused(Exception):
    """The decision cannot be made; `reason` says why in plain words (shown to staff)."""

    def __init__(self, reason):
        super().__init__(str(reason))
        self.reason = reason


def clean_reason(reason):
    """The rejection reason as stored and emailed, or ReviewRefused."""
    reason = _CONTROL.sub("", reason or "").strip()
    if not reason:
        raise ReviewRefused(_("Write the reason the parent will read."))
    if len(reason) > REASON_MAX:
        raise ReviewRefused(_("The reason is too long."))
    if _LINKISH.search(reason):
        raise ReviewRefused(_("Write the reason without links or web addresses."))
    return reason


def approve_contact_change(*, change, staff, request=None):
    """Approve: staff will update the SIS; the parent is told. Returns the updated row."""
    return _decide(change=change, staff=staff, status=Status.APPROVED, reason="", request=request)


def reject_contact_change(*, change, staff, reason, request=None):
    """Reject with `reason` (staff-written, emailed to the parent as text). Returns the row."""
    reason = clean_reason(reason)
    return _decide(
        change=change, staff=staff, status=Status.REJECTED, reason=reason, request=request
    )


def _decide(*, change, staff, status, reason, request):
    with transaction.atomic():
        change = (
            ContactChangeRequest.objects.select_for_update(of=("self",))
            .select_related("user", "user__guardian")
            .get(pk=change.pk)
        )
        if change.status != Status.PENDING:
            raise ReviewRefused(_("This request has already been decided."))
        change.status = status
        change.decision_reason = reason
        change.decided_by = staff
        change.decided_at = timezone.now()
        change.save(update_fields=["status", "decision_reason", "decided_by", "decided_at"])
        parent = change.user
        address = notice_address(parent) if parent.is_active else ""
        if address:
            context = {"field": change.field}
            if reason:
                context["reason"] = reason
            queue_email(
                kind=f"contact_change_{status}", to_address=address, user=parent, context=context
            )
        detail = {"contact_change": change.pk, "field": change.field, "parent_told": bool(address)}
        if reason:
            detail["reason"] = reason
        record_event(
            action=f"staff.contact_change_{status}",
            request=request,
            actor=staff,
            subject=parent,
            detail=detail,
        )
    change.parent_told = bool(address)
    return change
