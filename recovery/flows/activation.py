"""Activation: a provisioned parent follows the welcome link and chooses a password.

The welcome email (nightly provisioning) carries an `activation` link. Opening it changes
nothing (recovery.landing); the page behind it asks for a new password, and only that POST
uses the link up (complete_activation). Activating also sets up Self Serve: the SIS address the
welcome went to has just proved it receives mail for this person, so it becomes the verified
recovery email (SPEC §2 item 2). There is no automatic sign-in afterwards (checklist G2).
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portal.normalisation import normalise_email
from portal.services import user_set_password
from recovery import tokens
from recovery.audit import record_event

PURPOSE = tokens.Purpose.ACTIVATION


class ActivationUnavailable(tokens.TokenError):
    """The link is fine but the account cannot be activated by it (disabled, already active)."""


def _refuse_unless_activatable(user):
    if not user.is_active:
        raise ActivationUnavailable("account disabled")
    if user.activated_at is not None:
        raise ActivationUnavailable("already activated")


def activation_user(*, token):
    """The account a usable activation `token` is for, or None. Read-only (GET-safe)."""
    if not token:
        return None
    try:
        user = tokens.check(token, purpose=PURPOSE).user
        _refuse_unless_activatable(user)
    except tokens.TokenError:
        return None
    return user


def welcome_address(user):
    """The SIS address the welcome (and so this link) went to, as stored."""
    if user.welcome_sent_to:
        return user.welcome_sent_to
    guardian = user.guardian
    return guardian.email if guardian is not None else ""


def complete_activation(*, token, password, request):
    """Use the link up, set the password, mark the account activated; return the user.

    Raises tokens.TokenError (or its subclass ActivationUnavailable) if the link cannot be used:
    then nothing changed. One transaction: the token is spent by a conditional UPDATE, so of
    simultaneous POSTs exactly one succeeds, and a failure after it leaves the link unused.
    """
    try:
        with transaction.atomic():
            user = tokens.consume(token, purpose=PURPOSE)
            # Lock the account row: a concurrent SIS disable or a second activation waits here.
            user = get_user_model().objects.select_for_update().get(pk=user.pk)
            _refuse_unless_activatable(user)
            now = timezone.now()
            user.activated_at = now
            fields = ["activated_at"]
            address = welcome_address(user)
            if address:
                user.recovery_email = address
                user.recovery_email_normalised = normalise_email(address)
                user.recovery_email_verified_at = now
                user.pending_recovery_email = ""
                fields += [
                    "recovery_email",
                    "recovery_email_normalised",
                    "recovery_email_verified_at",
                    "pending_recovery_email",
                ]
            user.save(update_fields=fields)
            # After the recovery email is set, so the "password changed" notice goes to it.
            user_set_password(user=user, password=password, request=request, reason="activation")
            record_event(
                action="account.activated",
                request=request,
                subject=user,
                detail={"self_serve": bool(address)},
            )
    except tokens.TokenError as error:
        # Written after the rollback, so the refusal is kept (recovery.audit).
        record_event(
            action="account.activation_refused",
            request=request,
            detail={"reason": type(error).__name__},
        )
        raise
    return user
