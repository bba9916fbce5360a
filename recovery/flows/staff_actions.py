"""What support staff do for a family (SPEC §6.7; issue 5 item 4), one function per action.

    send_reset_link(manual_request=mr, account=user, staff=me, note="...", request=request)
    send_username_reminder(manual_request=mr, account=user, staff=me, note="...", request=request)
    create_guardian_account(guardian=g, email="...", verified_how="...", staff=me, request=request)
    issue_code(manual_request=mr, account=student, staff=me, note="...", request=request) -> code
    clear_login_lock(manual_request=mr, account=user, staff=me, note="...", request=request)
    close_request(manual_request=mr, outcome="resolved"|"rejected", staff=me, note="...")
    assign_request(manual_request=mr, staff=me, request=request)
    set_waiting(manual_request=mr, staff=me, note="...", request=request)

Rules every action keeps:

- Mail goes only to a contact on record, as stored: the account's verified recovery email, or
  (account creation) the address staff verified out of band. The address a family typed into
  the request form is not proof of identity; it only ever receives the fixed-text outcome of
  `close_request` (M's `manual_request_{resolved,rejected}` templates: no account data).
- Each action is one transaction that writes a ManualRequestEvent (the request's history, when
  there is a request) and an AuditEvent `staff.<action>` with the staff member, the object and
  the note. Emails are outbox rows in the same transaction (recovery.emails.queue_email).
- Staff never see or set a password: a reset link or a one-time code lets the person choose
  their own.
- A refused action raises ActionRefused with a plain-words `reason` for the staff page, and
  changes nothing. `unavailable_reason(action=..., account=...)` says so beforehand, so the
  page can show the reason instead of a button.

Which accounts an action may touch (those involved in the request's roster match) and which
requests a staff member may see (school scope) are the views' checks, before these run.
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal import login_throttle
from portal.models import Guardian, GuardianStudent, User
from portal.normalisation import normalise_email
from portal.provisioning import unusable_password
from portal.student_codes import issue_student_code
from portal.usernames import UsernameAllocator, username_base
from recovery import tokens
from recovery.audit import UnsafeAuditDetail, check_detail, record_event
from recovery.emails import queue_email
from recovery.flows.password_reset import queue_fresh_welcome
from recovery.flows.username_reminder import plain_single_address
from recovery.models import ManualRequest, ManualRequestEvent

Status = ManualRequest.Status
CLOSED = (Status.RESOLVED, Status.REJECTED)
NOTE_MAX = ManualRequestEvent._meta.get_field("note").max_length
ACCOUNT_CREATED_NOTICE = "guardian_account_created"
_USERNAME_TRIES = 5


class ActionRefused(Exception):
    """The action cannot be done; `reason` says why in plain words (shown to staff)."""

    def __init__(self, reason):
        super().__init__(str(reason))
        self.reason = reason


# --- When an action is unavailable ----------------------------------------------------------


def _is_staff_account(user):
    return user.is_staff or user.is_superuser or user.role == User.Role.STAFF


def reset_unavailable_reason(account):
    """Why no reset link can go to `account` ("" if one can)."""
    if account is None:
        return _("No account was found for this request.")
    if not account.is_active:
        return _("The account is disabled.")
    if _is_staff_account(account):
        return _("Staff accounts are reset by a supervisor.")
    if not account.has_self_serve:
        if account.is_awaiting_activation:
            return _(
                "The account has not been activated yet: the family can ask Forgot password "
                "for a fresh welcome email, which goes to the school's address on record."
            )
        return _(
            "The account has no Self Serve (no verified recovery email), so there is no "
            "address on record to send a link to."
        )
    return ""


def reminder_unavailable_reason(account):
    """Why no username reminder can go to `account` ("" if one can)."""
    return reset_unavailable_reason(account)


def code_unavailable_reason(account):
    if account is None:
        return _("No account was found for this request.")
    if account.role != User.Role.STUDENT:
        return _("One-time codes are only for student accounts.")
    if not account.is_active:
        return _("The account is disabled.")
    return ""


def unlock_unavailable_reason(account):
    if account is None:
        return _("No account was found for this request.")
    if _is_staff_account(account):
        return _("Staff accounts are unlocked by a supervisor.")
    if not account.login_locked_at and not account.failed_login_count:
        return _("The account is not locked.")
    return ""


def guardian_unavailable_reason(guardian):
    """Why staff cannot create `guardian`'s account ("" if they can)."""
    if guardian is None:
        return _("No guardian was found for this request.")
    if User.objects.filter(guardian=guardian).exists():
        return _("This guardian already has an account.")
    if not guardian.active or not guardian.enabled:
        return _("The guardian is inactive or disabled in the SIS.")
    if guardian.role == Guardian.Role.RELATIVE and not settings.PROVISION_RELATIVES:
        return _("The SIS lists this person as a relative, not a parent or guardian.")
    if not GuardianStudent.objects.filter(guardian=guardian, student__active=True).exists():
        return _("The guardian has no active student.")
    return ""


# --- Request bookkeeping --------------------------------------------------------------------


def _clean_note(note, *, required=False):
    note = (note or "").strip()
    if required and not note:
        raise ActionRefused(_("Write a note."))
    if len(note) > NOTE_MAX:
        raise ActionRefused(_("The note is too long."))
    if "\x00" in note:
        raise ActionRefused(_("The note holds characters that cannot be stored."))
    try:
        check_detail({"note": note})
    except UnsafeAuditDetail:
        # The audit trail never stores a signed token: nor does a note that pastes one.
        raise ActionRefused(_("Leave links and codes out of the note.")) from None
    return note


def _record(*, action, staff, note, request, manual_request=None, subject=None, detail=None):
    """The history event (if there is a request) and the audit event of one action."""
    detail = dict(detail or {})
    if manual_request is not None:
        ManualRequestEvent.objects.create(
            request=manual_request, actor=staff, action=action, note=note
        )
        detail["manual_request"] = manual_request.reference
    if note:
        detail["note"] = note
    record_event(
        action=f"staff.{action}", request=request, actor=staff, subject=subject, detail=detail
    )


def _touch(manual_request, *, staff):
    """An action on a new request starts work on it (in progress, assigned to whoever acts)."""
    if manual_request is None:
        return
    if manual_request.status in CLOSED:
        raise ActionRefused(_("This request is closed."))
    fields = []
    if manual_request.status == Status.NEW:
        manual_request.status = Status.IN_PROGRESS
        fields.append("status")
    if manual_request.assigned_to_id is None:
        manual_request.assigned_to = staff
        fields.append("assigned_to")
    if fields:
        manual_request.save(update_fields=[*fields, "updated_at"])


def _locked(manual_request):
    if manual_request is None:
        return None
    return ManualRequest.objects.select_for_update().get(pk=manual_request.pk)


def assign_request(*, manual_request, staff, request=None):
    """Assign the request to `staff` (and start it, if new)."""
    with transaction.atomic():
        manual_request = _locked(manual_request)
        if manual_request.status in CLOSED:
            raise ActionRefused(_("This request is closed."))
        manual_request.assigned_to = staff
        if manual_request.status == Status.NEW:
            manual_request.status = Status.IN_PROGRESS
        manual_request.save(update_fields=["assigned_to", "status", "updated_at"])
        _record(
            action="request_assigned",
            staff=staff,
            note="",
            request=request,
            manual_request=manual_request,
        )
    return manual_request


def set_waiting(*, manual_request, staff, note, request=None):
    """Waiting on the family (e.g. for a call back to the school); no email."""
    note = _clean_note(note, required=True)
    with transaction.atomic():
        manual_request = _locked(manual_request)
        _touch(manual_request, staff=staff)
        manual_request.status = Status.WAITING
        manual_request.save(update_fields=["status", "updated_at"])
        _record(
            action="request_waiting",
            staff=staff,
            note=note,
            request=request,
            manual_request=manual_request,
        )
    return manual_request


def close_request(*, manual_request, outcome, staff, note, request=None):
    """Resolve or reject the request; the answer address gets the fixed outcome text.

    The answer address is what the family typed: it gets only M's fixed text (the outcome and
    what to do next, the reference number), never anything about an account (SPEC §6.6).
    """
    if outcome not in (Status.RESOLVED, Status.REJECTED):
        raise ValueError(f"Not an outcome: {outcome!r}")
    note = _clean_note(note, required=True)
    with transaction.atomic():
        manual_request = _locked(manual_request)
        _touch(manual_request, staff=staff)
        manual_request.status = outcome
        manual_request.closed_at = timezone.now()
        manual_request.save(update_fields=["status", "closed_at", "updated_at"])
        address = plain_single_address(manual_request.answer_address)
        if address:
            queue_email(
                kind=f"manual_request_{outcome}",
                to_address=address,
                context={"reference": manual_request.reference},
                language=manual_request.language,
            )
        _record(
            action=f"request_{outcome}",
            staff=staff,
            note=note,
            request=request,
            manual_request=manual_request,
            detail={"outcome_emailed": bool(address)},
        )
    return manual_request


# --- Actions on accounts --------------------------------------------------------------------


def _refuse_if(reason):
    if reason:
        raise ActionRefused(reason)


def _account_action(*, action, unavailable_reason):
    """Make a staff action on one account from what it does, `do(account=, staff=, request=)`.

    The action is called as `(*, manual_request, account, staff, note, request=None)` and keeps
    the frame every action on an account shares: a required note, the refusal reason checked
    first, then in one transaction the request locked and touched, what it does, and its
    history event and audit event. It returns what `do` returns.
    """

    def make(do):
        def act(*, manual_request, account, staff, note, request=None):
            note = _clean_note(note, required=True)
            _refuse_if(unavailable_reason(account))
            with transaction.atomic():
                manual_request = _locked(manual_request)
                _touch(manual_request, staff=staff)
                done = do(account=account, staff=staff, request=request)
                _record(
                    action=action,
                    staff=staff,
                    note=note,
                    request=request,
                    manual_request=manual_request,
                    subject=account,
                )
            return done

        # Not functools.wraps: help() would then show `do`'s signature, not the one callers use.
        act.__name__, act.__qualname__, act.__doc__ = do.__name__, do.__qualname__, do.__doc__
        return act

    return make


@_account_action(action="reset_link_sent", unavailable_reason=reset_unavailable_reason)
def send_reset_link(*, account, staff, request):
    """A reset link to the account's verified recovery email, as stored."""
    queue_email(
        kind="password_reset",
        to_address=account.recovery_email,
        user=account,
        token_purpose=tokens.Purpose.RESET,
        context={"username": account.get_username()},
        language=account.language,
    )


@_account_action(action="username_reminder_sent", unavailable_reason=reminder_unavailable_reason)
def send_username_reminder(*, account, staff, request):
    """The username, by the `username_reminder` notice, to the verified recovery email."""
    queue_email(
        kind="username_reminder",
        to_address=account.recovery_email,
        user=account,
        context={"usernames": [account.get_username()]},
        language=account.language,
    )


@_account_action(action="student_code_issued", unavailable_reason=code_unavailable_reason)
def issue_code(*, account, staff, request):
    """A one-time activation code for a student; returned once, for the printable page."""
    return issue_student_code(student_user=account, staff_user=staff, request=request)


@_account_action(action="login_lock_cleared", unavailable_reason=unlock_unavailable_reason)
def clear_login_lock(*, account, staff, request):
    """Forget the account's failed logins and lock (portal.login_throttle.unlock_account)."""
    login_throttle.unlock_account(user=account, staff=staff, request=request)


def create_guardian_account(
    *, guardian, email, verified_how, staff, request=None, manual_request=None
):
    """The account of a guardian the nightly job left out, at an address staff verified.

    `verified_how` is the note, required: how staff verified that `email` is the guardian's own
    (e.g. "called the number in the SIS, parent read the address back"). The account is made as
    the nightly job makes one (username from the name, no usable password, no password hashed)
    with `email` as the address its welcome went to; the welcome (username + activation link)
    goes there at once on the transactional stream, and activating makes it the recovery email.
    A notice goes to the guardian's SIS address if it is theirs alone and a different mailbox
    (a guardian the nightly job has not reached yet, enrolled today say): whoever reads that
    mailbox learns an account was made elsewhere. A household address shared with another
    guardian is refused as the verified address and never gets the notice.
    Returns the new User.
    """
    note = _clean_note(verified_how, required=True)
    address = plain_single_address(email)
    if not address:
        raise ActionRefused(_("Enter one valid email address."))
    normal = normalise_email(address)
    with transaction.atomic():
        manual_request = _locked(manual_request)
        guardian = Guardian.objects.select_for_update().get(pk=guardian.pk)
        _refuse_if(guardian_unavailable_reason(guardian))
        _touch(manual_request, staff=staff)
        if (
            Guardian.objects.filter(email_normalised=normal, active=True)
            .exclude(pk=guardian.pk)
            .exists()
        ):
            raise ActionRefused(
                _("Another guardian has this address in the SIS: use an address of their own.")
            )
        previous_reason = guardian.unprovisioned_reason
        user = _create_parent_user(guardian=guardian, address=address)
        Guardian.objects.filter(pk=guardian.pk).update(unprovisioned_reason="")
        queue_fresh_welcome(user=user, address=address)
        notified = False
        sis = guardian.email
        if sis and not guardian.email_shared and normalise_email(sis) != normal:
            queue_email(kind=ACCOUNT_CREATED_NOTICE, to_address=sis, user=user)
            notified = True
        _record(
            action="guardian_account_created",
            staff=staff,
            note=note,
            request=request,
            manual_request=manual_request,
            subject=user,
            detail={
                "guardian": guardian.pk,
                "left_out_because": previous_reason,
                "sis_address_notified": notified,
            },
        )
    return user


def _create_parent_user(*, guardian, address):
    first = guardian.preferred_given_name or guardian.given_name
    base = username_base(given_name=first, family_name=guardian.family_name)
    # The nightly job serialises its runs with a lock; a staff click races it only for a
    # username, and the unique constraint turns that race into another try.
    for _attempt in range(_USERNAME_TRIES):
        username = UsernameAllocator().allocate(base)
        try:
            with transaction.atomic():
                return User.objects.create(
                    username=username,
                    password=unusable_password(),
                    role=User.Role.PARENT,
                    guardian=guardian,
                    first_name=first[:150],
                    last_name=guardian.family_name[:150],
                    # The SIS address as last seen (the nightly sync compares it); the welcome
                    # goes to the address staff verified.
                    email=guardian.email,
                    provisioned_at=timezone.now(),
                    welcome_sent_to=address,
                )
        except IntegrityError:
            if User.objects.filter(guardian=guardian).exists():
                raise ActionRefused(_("This guardian already has an account.")) from None
    raise ActionRefused(_("No free username was found; try again."))
