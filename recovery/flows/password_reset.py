"""Forgot password: a username typed on /help/forgot-password/ → a link → a new password.

Request (the web process, constant work): the view calls
recovery.help_requests.submit_help_request; nothing here runs in the request.

Resolution (the worker, resolve_password_reset_request): the account is looked up by username
and, by its state,
- Self Serve set up (a verified recovery email): a `password_reset` email with a reset link at
  that verified address, as stored;
- a parent provisioned but not yet activated: a fresh welcome (username + new activation link)
  at the SIS email on record (SPEC §2 item 2);
- disabled, staff, not set up, unknown: nothing (SPEC §6.6; the common page says where to turn).
Every email also passes the per-address cap (recovery.resolution.address_email_allowed).

Completion (the web process): the link's landing (recovery.landing) moves the token into the
session; complete_password_reset, from the set-password POST, spends it and sets the password
through portal.services.user_set_password (SPEC §6.5: other sessions end, every link revoked,
login throttle cleared, notice emailed). No automatic sign-in (checklist G2).
"""

import unicodedata

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Upper

from portal.provisioning import WELCOME
from portal.services import user_set_password
from recovery import tokens
from recovery.audit import record_event
from recovery.emails import queue_email
from recovery.help_requests import submit_help_request
from recovery.models import HelpRequest, OutboundEmail
from recovery.resolution import address_email_allowed
from recovery.staff.team import staff_reset_authorised

PURPOSE = tokens.Purpose.RESET


class ResetUnavailable(tokens.TokenError):
    """The link is genuine but its account may not reset by it now (disabled, staff not sent
    a link by a supervisor)."""


def request_password_reset(*, username, request):
    """Record a forgot-password request (constant work; the worker resolves it).

    What looks like an email address is a username reminder request: people type their
    address where the username goes, and this is what they are looking for. Raises
    recovery.help_requests.HelpRequestThrottled past a rate limit.
    """
    kind = HelpRequest.Kind.FORGOT_USERNAME if "@" in username else HelpRequest.Kind.FORGOT_PASSWORD
    submit_help_request(kind=kind, identifier=username, request=request)


def _may_reset(user):
    # A staff account's link is honoured only when a supervisor sent it (SPEC §6.6): this
    # flow never sends one to staff, and recovery.staff.team records each one a supervisor sends.
    if not user.is_active:
        return False
    return not _is_staff(user) or staff_reset_authorised(user=user)


def _is_staff(user):
    return user.is_staff or user.is_superuser or user.role == user.Role.STAFF


def accounts_named(*, help_requests):
    """{typed identifier: the account it names (NFKC, trimmed, any case), or None}, in two
    queries for a whole worker batch (recovery.resolution): the database's own UPPER() of every
    typed name, then every account whose UPPER(username) is one of them (the index on
    UPPER(username), portal.User.Meta). Of two accounts a name matches in different cases,
    only the exact spelling names one."""
    typed = {r.identifier: _normal_username(r.identifier) for r in help_requests}
    names = sorted({name for name in typed.values() if name})
    if not names:
        return dict.fromkeys(typed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["UPPER(%s)"] * len(names)), names)
        upper = dict(zip(names, cursor.fetchone(), strict=True))
    candidates = {}
    accounts = get_user_model().objects.annotate(username_upper=Upper("username"))
    for user in accounts.filter(username_upper__in=set(upper.values())).order_by("pk"):
        candidates.setdefault(user.username_upper, []).append(user)
    return {
        identifier: _the_one(candidates.get(upper.get(name), [])[:2], name) if name else None
        for identifier, name in typed.items()
    }


def _normal_username(value):
    return unicodedata.normalize("NFKC", str(value)).strip()


def _the_one(matches, username):
    """Of the first two accounts (by id) a name matches in any case: the only one, else the
    one spelled exactly so, else none."""
    if len(matches) == 1:
        return matches[0]
    return next((user for user in matches if user.username == username), None)


def resolve_password_reset_request(*, help_request, accounts=None):
    """Send what a forgot-password request is due; return the outcome (for staff and audit).

    `accounts`, from accounts_named() over the worker's batch; looked up here without it.
    """
    if accounts is None or help_request.identifier not in accounts:
        accounts = accounts_named(help_requests=[help_request])
    user = accounts[help_request.identifier]
    if user is None:
        return "unknown"
    if not user.is_active:
        return _outcome(user, "disabled")
    if _is_staff(user):
        return _outcome(user, "staff")  # a supervisor resets staff (SPEC §6.6)
    if user.has_self_serve:
        if not address_email_allowed(address=user.recovery_email):
            return _outcome(user, "address_capped")
        queue_email(
            kind="password_reset",
            to_address=user.recovery_email,
            user=user,
            token_purpose=PURPOSE,
            context={"username": user.get_username()},
            language=user.language or help_request.language,
        )
        return _outcome(user, "reset_sent")
    if user.is_awaiting_activation:
        address = welcome_address(user)
        if not address:
            return _outcome(user, "not_set_up")
        if not address_email_allowed(address=address):
            return _outcome(user, "address_capped")
        queue_fresh_welcome(user=user, address=address, language=help_request.language)
        return _outcome(user, "welcome_sent")
    return _outcome(user, "not_set_up")


def welcome_address(user):
    """The guardian's SIS email as stored, if it is theirs alone; else "".

    A household address shared by several guardians never gets a link to one account.
    """
    guardian = user.guardian
    if guardian is None or not guardian.active or guardian.email_shared:
        return ""
    return guardian.email


def queue_fresh_welcome(*, user, address, language=""):
    """The welcome again (username + a new activation link, which revokes the older one).

    Sent on the transactional stream: a person is waiting for it, unlike a nightly batch.
    """
    return queue_email(
        **{**WELCOME, "stream": OutboundEmail.Stream.TRANSACTIONAL},
        to_address=address,
        user=user,
        context={"username": user.get_username()},
        language=user.language or language,
    )


def _outcome(user, outcome):
    # The account found: recovery.resolution names it in the request's resolved event.
    return outcome, user


# --- Completion: the reset page ----------------------------------------------------------------


def reset_user(*, token):
    """The account a usable reset `token` is for, or None. Read-only (GET-safe)."""
    if not token:
        return None
    try:
        user = tokens.check(token, purpose=PURPOSE).user
    except tokens.TokenError:
        return None
    return user if _may_reset(user) else None


def complete_password_reset(*, token, password, request):
    """Spend the link and set the password; return the user.

    Raises tokens.TokenError (ResetUnavailable for a disabled or staff account) when the link
    cannot be used: then nothing changed. One transaction: the token is spent by a conditional
    UPDATE, so of simultaneous POSTs exactly one succeeds, and a failure after it (the account
    row is locked, then re-checked) leaves the link unused.
    """
    try:
        with transaction.atomic():
            user = tokens.consume(token, purpose=PURPOSE)
            user = get_user_model().objects.select_for_update().get(pk=user.pk)
            if not _may_reset(user):
                raise ResetUnavailable("account may not reset")
            # Revokes every other link, ends other sessions, clears the login throttle and
            # queues the "password changed" notice (SPEC §6.5).
            user_set_password(user=user, password=password, request=request, reason="reset")
    except tokens.TokenError as error:
        # Written after the rollback, so the refusal is kept (recovery.audit).
        record_reset_refused(request=request, reason=type(error).__name__)
        raise
    return user


def record_reset_refused(*, request, reason):
    """Audit a set-password POST that a link could not back (used, expired, revoked...)."""
    record_event(action="password_reset.refused", request=request, detail={"reason": reason})
