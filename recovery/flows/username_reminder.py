"""Forgot username: an email address in, the usernames tied to it out, by email only.

    request_username_reminder(email=typed, request=request)          # the page: constant work
    resolve_username_reminder_request(help_request=row) -> outcome    # the worker

The page only hands what was typed to recovery.help_requests (rate limits, one HelpRequest
row, one task on commit), so it reads the same, in content and in time, for every address.
The worker matches the NORMALISED address (trim, NFKC, casefold) against:

- verified recovery emails of active, non-staff accounts: each stored address gets one
  `username_reminder` notice (no link) listing, one `Username:` line each, the usernames whose
  recovery email is exactly that stored address. Mail goes to the address as stored, never to
  what was typed, so a look-alike (a Kelvin sign K, a full-width letter, upper case) that
  normalises equal reaches only the real owner (CVE-2019-19844). Spellings that are stored
  differently are treated as different mailboxes: neither learns the other's username.
- SIS emails of parents provisioned but not yet activated (not shared with another guardian):
  they get a fresh `welcome` (username + a new activation link, which revokes the older one)
  at the SIS address as stored (SPEC §2 item 2).

An address tied to any account in another way (disabled, staff, Self Serve not set up, the
SIS email of an activated parent or of a student) gets nothing: the sent page already says
where to turn. Only an address tied to no account at all, with RECOVERY_EMAIL_UNKNOWN_ACCOUNTS
on, gets the fixed `no_account` text at the typed address, and only if that is one plain
ASCII address (Django's EmailValidator, no commas, spaces or control characters): it carries
nothing about any account, so a look-alike that matched nothing learns nothing. Every email
counts against RATELIMIT_EMAIL_PER_ADDRESS for its address (recovery.resolution).
"""

import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db.models import Value

from portal.models import STAFF_ACCOUNTS, Guardian, Student, User
from portal.normalisation import normalise_email
from recovery.audit import record_event
from recovery.emails import queue_email
from recovery.flows.password_reset import queue_fresh_welcome
from recovery.help_requests import submit_help_request
from recovery.models import HelpRequest
from recovery.resolution import address_email_allowed

KIND = HelpRequest.Kind.FORGOT_USERNAME
# Where an account may hold an address (_addresses_in_use).
RECOVERY_EMAIL, GUARDIAN_EMAIL, STUDENT_EMAIL, STAFF_EMAIL = (
    "recovery",
    "guardian",
    "student",
    "staff",
)
REMINDER_EMAIL = "username_reminder"
NO_ACCOUNT_EMAIL = "no_account"
# An RFC 5321 path holds at most 254 characters of address.
_ADDRESS_MAX = 254
_NOT_IN_A_PLAIN_ADDRESS = set(",;:<>()[]\"'\\ ")
_validate_email = EmailValidator()


def request_username_reminder(*, email, request):
    """The page's whole job: count, record and queue (recovery.help_requests).

    Raises recovery.help_requests.HelpRequestThrottled past a rate limit.
    """
    submit_help_request(kind=KIND, identifier=email, request=request)


def resolve_username_reminder_request(*, help_request, addresses_in_use=None):
    """Send what is due for one forgot-username request; return the outcome (staff only).

    `addresses_in_use`, from addresses_in_use() over the worker's batch (looked up here
    without it), says where accounts hold each address, so that look-ups that could only come
    back empty are skipped.
    """
    typed = help_request.identifier
    address = normalise_email(typed)
    if not address:
        return "empty"
    language = help_request.language
    if addresses_in_use is None:
        addresses_in_use = _addresses_in_use({address})
    held_as = addresses_in_use.get(address, set())
    if not held_as:
        return _answer_unknown_address(typed, language=language)
    reminders = capped = welcomes = welcomes_capped = 0
    if RECOVERY_EMAIL in held_as:
        reminders, capped = _send_reminders(address=address, language=language)
    if GUARDIAN_EMAIL in held_as:
        welcomes, welcomes_capped = _send_fresh_welcomes(address=address, language=language)
    if reminders or welcomes:
        return f"reminded_{reminders}_welcomed_{welcomes}"
    if capped or welcomes_capped:
        return "address_capped"
    return "no_self_serve"  # disabled, staff, Self Serve not set up


def addresses_in_use(*, help_requests):
    """{normalised address: where accounts hold it} for the addresses typed in
    `help_requests` that any account holds: one query for the worker's whole batch
    (recovery.resolution). An address no account holds is absent."""
    return _addresses_in_use({normalise_email(r.identifier) for r in help_requests} - {""})


def _answer_unknown_address(typed, *, language):
    """An address tied to no account: the fixed "no account here" text, if the district wants
    it, at the typed address if that is one plain address."""
    if not getattr(settings, "RECOVERY_EMAIL_UNKNOWN_ACCOUNTS", True):
        return "unknown"
    plain = plain_single_address(typed)
    if not plain:
        return "unknown_not_an_address"
    if not address_email_allowed(address=plain):
        return "unknown_capped"
    queue_email(kind=NO_ACCOUNT_EMAIL, to_address=plain, language=language)
    return "no_account_sent"


def plain_single_address(value):
    """`value` trimmed if it is exactly one plain ASCII email address, else "".

    The only gate before mail goes to a typed address: no list, no display name, no header
    break, nothing Django or the relay could read as a second recipient.
    """
    value = (value or "").strip()
    if not value or len(value) > _ADDRESS_MAX or not value.isascii() or value.count("@") != 1:
        return ""
    if any(ch in _NOT_IN_A_PLAIN_ADDRESS or unicodedata.category(ch)[0] == "C" for ch in value):
        return ""
    try:
        _validate_email(value)
    except ValidationError:
        return ""
    return value


# --- Reads (private: this journey's own questions) ------------------------------------------


def _accounts_with_verified_recovery_email(address):
    return (
        User.objects.filter(
            recovery_email_normalised=address,
            recovery_email_verified_at__isnull=False,
            is_active=True,
            is_staff=False,
            is_superuser=False,
        )
        .exclude(role=User.Role.STAFF)
        .exclude(recovery_email="")
        .order_by("username")
    )


def _parents_awaiting_activation(address):
    return (
        User.objects.filter(
            role=User.Role.PARENT,
            activated_at__isnull=True,
            is_active=True,
            is_staff=False,
            is_superuser=False,
            guardian__email_normalised=address,
            guardian__email_shared=False,
            guardian__active=True,
            guardian__enabled=True,
        )
        .exclude(guardian__email="")
        .select_related("guardian")
        .order_by("username")
    )


def _addresses_in_use(addresses):
    """{address: {RECOVERY_EMAIL, GUARDIAN_EMAIL, STUDENT_EMAIL, STAFF_EMAIL}...} for those of
    `addresses` (normalised) that are any account's address, in any state: a recovery email,
    the SIS email of the guardian or student behind an account, a staff email. Each part is an
    indexed look-up; one query OR-ing them across the joins would scan every account, for
    every unknown address anyone types."""
    held = {}
    if not addresses:
        return held
    rows = (
        User.objects.filter(recovery_email_normalised__in=addresses)
        .annotate(held_as=Value(RECOVERY_EMAIL))
        .values_list("recovery_email_normalised", "held_as")
        .order_by()
        .union(
            # order_by(): no model ordering inside a UNION (SQLite refuses it).
            Guardian.objects.filter(email_normalised__in=addresses, account__isnull=False)
            .annotate(held_as=Value(GUARDIAN_EMAIL))
            .values_list("email_normalised", "held_as")
            .order_by(),
            Student.objects.filter(email_normalised__in=addresses, account__isnull=False)
            .annotate(held_as=Value(STUDENT_EMAIL))
            .values_list("email_normalised", "held_as")
            .order_by(),
        )
    )
    # Staff have only User.email (createstaff), which has no normalised column: a few rows,
    # found through the partial index on staff accounts (portal.User.Meta).
    staff = User.objects.filter(STAFF_ACCOUNTS).exclude(email="").values_list("email", flat=True)
    staff_rows = [(normalise_email(email), STAFF_EMAIL) for email in staff]
    for address, held_as in [*rows, *staff_rows]:
        if address in addresses:
            held.setdefault(address, set()).add(held_as)
    return held


# --- Writes -----------------------------------------------------------------------------------


def _send_reminders(*, address, language):
    by_stored_address = {}
    for user in _accounts_with_verified_recovery_email(address):
        by_stored_address.setdefault(user.recovery_email, []).append(user)
    sent = capped = 0
    for stored, users in by_stored_address.items():
        if not address_email_allowed(address=stored):
            capped += 1
            continue
        queue_email(
            kind=REMINDER_EMAIL,
            to_address=stored,
            user=users[0] if len(users) == 1 else None,
            context={"usernames": [user.get_username() for user in users]},
            language=users[0].language or language,
        )
        for user in users:
            record_event(action="username_reminder.sent", subject=user)
        sent += 1
    return sent, capped


def _send_fresh_welcomes(*, address, language):
    sent = capped = 0
    for user in _parents_awaiting_activation(address):
        stored = user.guardian.email
        if not address_email_allowed(address=stored):
            capped += 1
            continue
        queue_fresh_welcome(user=user, address=stored, language=language)
        record_event(action="username_reminder.welcome_resent", subject=user)
        sent += 1
    return sent, capped
