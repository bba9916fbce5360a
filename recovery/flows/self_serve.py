"""Self Serve set-up: a signed-in person adds or changes their recovery email (SPEC §2.2).

    request_recovery_email_change(user=request.user, new_email="a@example.org", request=request)
    user = confirm_recovery_email(token=token, request=request)   # the POST behind the link

The new address is only pending until a link sent to it is used (checklist M2): the verified
address stays in force, and is told of the request (M4). The link is single-use, lives
EMAIL_CONFIRM_TOKEN_MAX_AGE, and confirms only the address it was sent to (M3). A token holds
no address (it is a random id), so the binding is kept by the ledger and the outbox together:
a new request revokes the earlier links at once and withdraws any confirmation email not yet
sent, and a link is accepted only if it was minted by the newest confirmation email, while the
worker was sending it to the pending address (between that row's claim and its sent mark). A
link from an older email that was already in a worker's hands when a newer request came in is
therefore refused too. Confirming revokes every other outstanding link of the account (an email
change revokes links, SPEC §5) and tells the old address. Opening the link changes nothing;
only the POST does (mail scanners open links).
"""

from django.db import transaction
from django.utils import timezone

from portal.models import User
from portal.normalisation import normalise_email
from portal.selectors import notice_address
from recovery import ratelimit, tokens
from recovery.app_settings import app_settings
from recovery.audit import record_event
from recovery.emails import queue_email
from recovery.models import OutboundEmail

PURPOSE = tokens.Purpose.EMAIL_CONFIRM
CONFIRM_KIND = "recovery_email_confirm"
REQUESTED_NOTICE_KIND = "recovery_email_change_requested"
CHANGED_NOTICE_KIND = "recovery_email_changed"


class SelfServeNotAvailable(Exception):
    """This account cannot have a recovery email (staff, or disabled)."""


class TooManyConfirmationEmails(Exception):
    """Past the per-account or per-address limit; `retry_after` seconds until the next try."""

    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = retry_after


def can_set_up_self_serve(user):
    # Staff are reset by a supervisor and disabled accounts get no recovery mail (SPEC §6.6).
    return user.is_active and user.role in (User.Role.PARENT, User.Role.STUDENT)


def mask_address(address):
    """'r•••@example.org': enough for the owner to recognise, not to read off a screen."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "•••"
    return f"{local[0]}•••@{domain}"


def request_recovery_email_change(*, user, new_email, request):
    """Make `new_email` the pending recovery address and send it a confirmation link.

    The caller has re-authenticated the person (current password) and validated the address.
    Raises TooManyConfirmationEmails past the limits: an account may not turn the portal into
    a way to flood someone's inbox (checklist B1).
    """
    if not can_set_up_self_serve(user):
        raise SelfServeNotAvailable
    new_email = new_email.strip()
    _count_request(user=user, new_email=new_email)
    with transaction.atomic():
        # One request at a time per account: the pending address and the live link agree.
        locked = User.objects.select_for_update().get(pk=user.pk)
        old_address = notice_address(locked)
        tokens.revoke_tokens(user=locked, purpose=PURPOSE)
        withdrawn = OutboundEmail.objects.filter(
            user=locked, kind=CONFIRM_KIND, status=OutboundEmail.Status.QUEUED
        ).update(status=OutboundEmail.Status.FAILED, last_error="superseded")
        locked.pending_recovery_email = new_email
        locked.save(update_fields=["pending_recovery_email"])
        queue_email(kind=CONFIRM_KIND, to_address=new_email, user=locked, token_purpose=PURPOSE)
        notify = bool(old_address) and normalise_email(old_address) != normalise_email(new_email)
        if notify:
            queue_email(
                kind=REQUESTED_NOTICE_KIND,
                to_address=old_address,
                user=locked,
                context={"requested_at": timezone.now(), "new_address": mask_address(new_email)},
            )
        record_event(
            action="self_serve.recovery_email_requested",
            request=request,
            subject=locked,
            identifier=new_email,
            detail={"old_address_told": notify, "earlier_emails_withdrawn": withdrawn},
        )
    user.pending_recovery_email = new_email  # the caller's copy agrees with the row


def _count_request(*, user, new_email):
    limits = (
        (
            "self_serve.recovery_email.account",
            str(user.pk),
            app_settings.RATELIMIT_RESET_PER_IDENTIFIER,
        ),
        ("self_serve.recovery_email.address", new_email, app_settings.RATELIMIT_EMAIL_PER_ADDRESS),
    )
    for action, key, rate in limits:
        decision = ratelimit.hit(action=action, key=key, rate=rate)
        if not decision.allowed:
            raise TooManyConfirmationEmails(decision.retry_after)


def confirmation_address(*, token):
    """The address `token` would confirm (for the page showing the button); changes nothing.

    Raises tokens.TokenError when the link cannot be used.
    """
    issued = tokens.check(token, purpose=PURPOSE)
    _require_link_for_pending_address(user=issued.user, issued=issued)
    return issued.user.pending_recovery_email


def _require_link_for_pending_address(*, user, issued):
    if not can_set_up_self_serve(user) or not user.pending_recovery_email:
        raise tokens.TokenInvalid("nothing to confirm")
    newest = (
        OutboundEmail.objects.filter(user=user, kind=CONFIRM_KIND)
        .order_by("-created_at", "-pk")
        .first()
    )
    minted_by_newest = (
        newest is not None
        and newest.status == OutboundEmail.Status.SENT
        and normalise_email(newest.to_address) == normalise_email(user.pending_recovery_email)
        and newest.claimed_at is not None
        and newest.sent_at is not None
        and newest.claimed_at <= issued.issued_at <= newest.sent_at
    )
    if not minted_by_newest:
        raise tokens.TokenInvalid("not the link sent to the pending address")


def confirm_recovery_email(*, token, request):
    """Spend a confirmation link: the pending address becomes the verified recovery email.

    Returns the user; raises tokens.TokenError (nothing changed, nothing spent) when the link
    is invalid, expired, used or revoked, or the account can no longer have one.
    """
    try:
        with transaction.atomic():
            issued = tokens.check(token, purpose=PURPOSE)
            user = User.objects.select_for_update().get(pk=issued.user_id)
            _require_link_for_pending_address(user=user, issued=issued)
            tokens.consume(token, purpose=PURPOSE)  # atomic: of two POSTs, one gets here
            old_address = notice_address(user)
            new_address = user.pending_recovery_email
            now = timezone.now()
            user.recovery_email = new_address
            user.recovery_email_normalised = normalise_email(new_address)
            user.recovery_email_verified_at = now
            user.pending_recovery_email = ""
            user.save(
                update_fields=[
                    "recovery_email",
                    "recovery_email_normalised",
                    "recovery_email_verified_at",
                    "pending_recovery_email",
                ]
            )
            # Reset and activation links sent to the old address die with the change.
            tokens.revoke_tokens(user=user)
            notify = bool(old_address) and (
                normalise_email(old_address) != user.recovery_email_normalised
            )
            if notify:
                queue_email(
                    kind=CHANGED_NOTICE_KIND,
                    to_address=old_address,
                    user=user,
                    context={"changed_at": now, "new_address": mask_address(new_address)},
                )
            record_event(
                action="self_serve.recovery_email_confirmed",
                request=request,
                actor=user,
                subject=user,
                identifier=new_address,
                detail={"old_address_told": notify},
            )
    except tokens.TokenError as error:
        # After the rollback, so the refusal is recorded (checklist Q: failed uses are audited).
        record_event(
            action="self_serve.recovery_email_refused",
            request=request,
            detail={"reason": type(error).__name__},
        )
        raise
    return user
