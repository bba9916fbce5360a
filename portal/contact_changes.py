"""Parents' contact-change requests: stored for staff to review; the SIS stays the source of truth.

    request_contact_changes(user=..., changes=[("phone", "408-555-0100")], request=request)

Nothing on record changes here: staff check the request against school records and update the
SIS, and the nightly import brings the new value back.
"""

from django.db import transaction

from portal.models import ContactChangeRequest
from recovery import ratelimit
from recovery.audit import record_event

# A family asks for a few changes a day at most; this only stops a script filling the queue.
SUBMISSIONS_RATE = "10/d"
SUBMISSIONS_ACTION = "portal.contact_change"


class TooManyContactChanges(Exception):
    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = retry_after


def request_contact_changes(*, user, changes, request=None):
    """Store one pending ContactChangeRequest per (field, new value); audit each. Returns them.

    Raises TooManyContactChanges past SUBMISSIONS_RATE submissions per account.
    """
    decision = ratelimit.hit(action=SUBMISSIONS_ACTION, key=str(user.pk), rate=SUBMISSIONS_RATE)
    if not decision.allowed:
        raise TooManyContactChanges(decision.retry_after)
    created = []
    with transaction.atomic():
        for field, new_value in changes:
            change = ContactChangeRequest.objects.create(
                user=user, field=ContactChangeRequest.Field(field), new_value=new_value
            )
            # The value itself stays in its row: the audit trail keeps no contact details.
            record_event(
                action="contact_change.requested",
                request=request,
                actor=user,
                subject=user,
                detail={"field": change.field, "request_id": change.pk},
            )
            created.append(change)
    return created
