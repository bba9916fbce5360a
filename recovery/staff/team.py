"""A supervisor's team actions (SPEC §6.6): re-issue a lost authenticator, send a reset link.

Both are audited with the supervisor as actor and the staff member as subject.

Re-issue: every device of the staff member is deleted (the lost phone, the backup codes, and the
second factor of their signed-in sessions) and a new, unconfirmed TOTP device with new backup
codes is created. The supervisor sees its QR code, URI and backup codes once, on an uncached
page, to hand over in person (the staff member may have neither phone nor console access, and a
second factor sent by email would be only as strong as the mailbox). The device is confirmed by
its first correct code on the code page. A supervisor cannot re-issue their own: another
supervisor (or `createstaff`) does.

Password reset: staff never use the public forgot-password flow (it sends nothing to a staff
account, SPEC §6.6). A supervisor queues the `password_reset` email to the staff member's own
address on record; the public completion page accepts a staff account's reset link only while a
supervisor's reset for that account is younger than the link's max age
(staff_reset_authorised, checked by recovery.flows.password_reset). The TOTP device is left as
it is (checklist G5): a new password alone does not open the console.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portal.models import STAFF_ACCOUNTS
from recovery.audit import record_event
from recovery.emails import queue_email
from recovery.links import link_max_age_seconds
from recovery.models import AuditEvent, IssuedToken
from recovery.staff import otp

REISSUED = "staff.authenticator_reissued"
RESET_SENT = "staff.password_reset_sent"


class TeamActionRefused(Exception):
    """The action cannot be done for this staff member (no email on record, oneself)."""


def staff_members():
    """Every staff account, for the team page (profiles and schools loaded)."""
    return (
        get_user_model()
        .objects.filter(STAFF_ACCOUNTS)
        .select_related("staff_profile")
        .prefetch_related("staff_profile__schools")
        .order_by("username")
    )


def reissue_authenticator(*, staff_member, supervisor, request=None):
    """Replace `staff_member`'s authenticator and backup codes; return them (to show once)."""
    if staff_member.pk == supervisor.pk:
        raise TeamActionRefused("own authenticator")
    with transaction.atomic():
        issued = otp.issue_authenticator(user=staff_member, confirmed=False)
        record_event(action=REISSUED, request=request, actor=supervisor, subject=staff_member)
    return issued


def send_staff_password_reset(*, staff_member, supervisor, request=None):
    """Email `staff_member` a reset link at their own address on record."""
    if not staff_member.email or not staff_member.is_active:
        raise TeamActionRefused("no address")
    with transaction.atomic():
        record_event(action=RESET_SENT, request=request, actor=supervisor, subject=staff_member)
        return queue_email(
            kind="password_reset",
            to_address=staff_member.email,
            user=staff_member,
            token_purpose=IssuedToken.Purpose.RESET,
            context={"username": staff_member.get_username()},
            language=staff_member.language,
        )


def staff_reset_authorised(*, user):
    """Did a supervisor send `user` a reset link that may still be live?"""
    since = timezone.now() - timedelta(seconds=link_max_age_seconds(purpose="reset"))
    return AuditEvent.objects.filter(action=RESET_SENT, subject=user, at__gte=since).exists()
