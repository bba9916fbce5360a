"""Nightly provisioning (SPEC §2.1, §2.5, §4): accounts for eligible guardians and students.

    provision_accounts() -> ProvisioningSummary

A guardian gets a parent account when: role `parent` or `guardian` (`relative` too when
PROVISION_RELATIVES), enabled and active, linked to at least one active student, with an email
that no other active guardian has (Guardian.email_shared, kept by the importer), and no account
yet. Every guardian left without an account has `unprovisioned_reason` set, for staff; it is
cleared once the guardian has an account. The reasons, first match wins: disabled (inactive
or enabledUser=false), relative, no_active_student, no_email, shared_email.

A new parent account has the username from the name (portal.usernames), no usable password
(the parent chooses one through the activation link), the guardian's SIS email as stored, and
exactly one welcome email on the bulk stream: `Username: <name>` and an activation link, minted
by the worker when it sends. `welcome_sent_to` records where it went (portal.account_sync
re-sends it when the SIS address changes before activation).

An active, enabled student with a student number gets a student account: username = the
student number, no usable password, on the district default (STUDENT_INITIAL_PASSWORD =
"default": checked against the SIS record at login by portal.backends, never hashed here) and
must change it at first login. Students without a number, or whose number is already someone's
username, are skipped and reported.

Speed: accounts are bulk-inserted in batches, each batch in its own transaction with its welcome
emails (an interrupted run keeps what it finished; the next run carries on). No password is
hashed: Django's make_password(None) alone costs ~0.1 ms per account, so the unusable password
is written directly in the same form. Runs are serialised by a PostgreSQL advisory lock, so two
runs (beat and a hand-run command) cannot hand out the same username.
"""

import logging
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Student, User
from portal.usernames import UsernameAllocator, username_base
from recovery.emails import queue_email
from recovery.models import OutboundEmail

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
Reason = Guardian.Unprovisioned
# Any number that no other job uses as a PostgreSQL advisory lock key.
_LOCK_KEY = 0x70726F76  # "prov"
_REPORT_LIMIT = 20  # skipped students listed by SIS id in the report


@dataclass
class ProvisioningSummary:
    parents_created: int = 0
    welcome_emails_queued: int = 0
    students_created: int = 0
    # Guardians without an account after the run, by Guardian.Unprovisioned value.
    guardians_left_out: dict = field(default_factory=dict)
    # Active, enabled students without an account and no student number / a number in use.
    students_without_number: int = 0
    students_number_taken: int = 0
    skipped_student_ids: list = field(default_factory=list)  # SIS ids, capped
    seconds: float = 0.0

    def as_dict(self):
        return {
            "parents_created": self.parents_created,
            "welcome_emails_queued": self.welcome_emails_queued,
            "students_created": self.students_created,
            "guardians_left_out": dict(self.guardians_left_out),
            "students_without_number": self.students_without_number,
            "students_number_taken": self.students_number_taken,
        }

    def lines(self):
        """The report `provision_accounts` prints."""
        out = [
            f"parent accounts created: {self.parents_created}",
            f"welcome emails queued: {self.welcome_emails_queued}",
            f"student accounts created: {self.students_created}",
        ]
        for reason in Reason:
            out.append(
                f"guardians without an account ({reason.value}): "
                f"{self.guardians_left_out.get(reason.value, 0)}"
            )
        out.append(f"students skipped, no student number: {self.students_without_number}")
        out.append(f"students skipped, number already a username: {self.students_number_taken}")
        if self.skipped_student_ids:
            more = self.students_without_number + self.students_number_taken
            more -= len(self.skipped_student_ids)
            listed = ", ".join(self.skipped_student_ids)
            out.append(
                f"  skipped students (SIS ids): {listed}" + (f" and {more} more" * (more > 0))
            )
        return out


def provision_accounts(*, batch_size=BATCH_SIZE):
    """Create the accounts the roster calls for and queue the welcome emails; return counts.

    Idempotent: a second run finds every eligible person already provisioned and sends nothing.
    """
    started = time.perf_counter()
    summary = ProvisioningSummary()
    now = timezone.now()
    with _one_run_at_a_time():
        with transaction.atomic():
            _record_unprovisioned_reasons()
        allocator = UsernameAllocator()
        for batch in _batches(_eligible_guardians(), batch_size, _GUARDIAN_FIELDS):
            with transaction.atomic():
                _create_parent_accounts(batch, allocator=allocator, now=now, summary=summary)
        _report_students_without_number(summary)
        for batch in _batches(_eligible_students(), batch_size, _STUDENT_FIELDS):
            with transaction.atomic():
                _create_student_accounts(batch, now=now, summary=summary)
    summary.guardians_left_out = dict(
        Guardian.objects.exclude(unprovisioned_reason="")
        .values_list("unprovisioned_reason")
        .annotate(n=Count("pk"))
        .values_list("unprovisioned_reason", "n")
    )
    summary.seconds = time.perf_counter() - started
    logger.info("Provisioning: %s", summary.as_dict())
    return summary


def unusable_password():
    """What set_unusable_password() stores ("!" + random), without its 40 secrets.choice calls."""
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)


# --- guardians -------------------------------------------------------------------------------

_GUARDIAN_FIELDS = ("sourced_id", "given_name", "preferred_given_name", "family_name", "email")
_STUDENT_FIELDS = (
    "sourced_id",
    "student_number",
    "given_name",
    "preferred_given_name",
    "family_name",
    "email",
)


def _provisionable_roles():
    roles = [Guardian.Role.PARENT, Guardian.Role.GUARDIAN]
    if settings.PROVISION_RELATIVES:
        roles.append(Guardian.Role.RELATIVE)
    return roles


def _has_active_student():
    return Exists(GuardianStudent.objects.filter(guardian=OuterRef("pk"), student__active=True))


def _reason_expression():
    """The Unprovisioned value for a guardian without an account ("" = eligible)."""
    return Case(
        When(Q(active=False) | Q(enabled=False), then=Value(Reason.DISABLED.value)),
        When(~Q(role__in=_provisionable_roles()), then=Value(Reason.RELATIVE.value)),
        When(~_has_active_student(), then=Value(Reason.NO_ACTIVE_STUDENT.value)),
        When(email="", then=Value(Reason.NO_EMAIL.value)),
        When(email_shared=True, then=Value(Reason.SHARED_EMAIL.value)),
        default=Value(""),
    )


def _record_unprovisioned_reasons():
    """Set every guardian's reason in two set-based UPDATEs, touching only rows that change."""
    Guardian.objects.filter(account__isnull=False).exclude(unprovisioned_reason="").update(
        unprovisioned_reason=""
    )
    without_account = Guardian.objects.filter(account__isnull=True)
    without_account.alias(new_reason=_reason_expression()).exclude(
        unprovisioned_reason=F("new_reason")
    ).update(unprovisioned_reason=_reason_expression())


def _eligible_guardians():
    return (
        Guardian.objects.filter(
            account__isnull=True,
            active=True,
            enabled=True,
            role__in=_provisionable_roles(),
            email_shared=False,
        )
        .filter(_has_active_student())
        .exclude(email="")
    )


def _create_parent_accounts(rows, *, allocator, now, summary):
    allocator.load(
        username_base(given_name=r["preferred_given_name"] or r["given_name"],
                      family_name=r["family_name"])
        for r in rows
    )  # fmt: skip
    users = [
        User(
            username=allocator.allocate(
                username_base(
                    given_name=row["preferred_given_name"] or row["given_name"],
                    family_name=row["family_name"],
                )
            ),
            password=unusable_password(),
            role=User.Role.PARENT,
            guardian_id=row["sourced_id"],
            first_name=(row["preferred_given_name"] or row["given_name"])[:150],
            last_name=row["family_name"][:150],
            email=row["email"],
            provisioned_at=now,
            welcome_sent_to=row["email"],
        )
        for row in rows
    ]
    User.objects.bulk_create(users)
    for user in users:
        queue_welcome_email(user=user)
    summary.parents_created += len(users)
    summary.welcome_emails_queued += len(users)


def queue_welcome_email(*, user):
    """The welcome email (username + activation link) to the account's SIS email as stored."""
    return queue_email(
        kind="welcome",
        stream=OutboundEmail.Stream.BULK,
        token_purpose="activation",  # noqa: S106 - a link purpose, not a password
        to_address=user.email,
        user=user,
        context={"username": user.get_username()},
    )


# --- students --------------------------------------------------------------------------------


def _students_needing_accounts():
    return Student.objects.filter(account__isnull=True, active=True, enabled=True)


def _eligible_students():
    return _students_needing_accounts().exclude(student_number="")


def _report_students_without_number(summary):
    missing = _students_needing_accounts().filter(student_number="")
    summary.students_without_number = missing.count()
    summary.skipped_student_ids.extend(
        missing.order_by("sourced_id").values_list("sourced_id", flat=True)[:_REPORT_LIMIT]
    )


def _create_student_accounts(rows, *, now, summary):
    numbers = [row["student_number"].strip() for row in rows]
    taken = set(User.objects.filter(username__in=numbers).values_list("username", flat=True))
    on_default = settings.STUDENT_INITIAL_PASSWORD == "default"  # noqa: S105 - a policy name
    users = []
    for row, number in zip(rows, numbers, strict=True):
        if not number or number in taken:
            summary.students_number_taken += 1
            if len(summary.skipped_student_ids) < _REPORT_LIMIT:
                summary.skipped_student_ids.append(row["sourced_id"])
            continue
        taken.add(number)  # two students with one number: the first gets it
        users.append(
            User(
                username=number,
                password=unusable_password(),
                role=User.Role.STUDENT,
                student_id=row["sourced_id"],
                first_name=(row["preferred_given_name"] or row["given_name"])[:150],
                last_name=row["family_name"][:150],
                email=row["email"],
                provisioned_at=now,
                must_change_password=True,
                default_password_active=on_default,
                default_password_since=now if on_default else None,
            )
        )
    User.objects.bulk_create(users)
    summary.students_created += len(users)


# --- plumbing --------------------------------------------------------------------------------


def _batches(queryset, size, fields):
    """Rows of `queryset` as dicts, `size` at a time, by primary key (keyset pagination).

    Each batch is read when the previous one is done, so rows provisioned meanwhile (by the
    previous batch) are simply not seen again.
    """
    last = None
    while True:
        page = queryset.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page.values(*fields)[:size])
        if not rows:
            return
        yield rows
        last = rows[-1]["sourced_id"]


@contextmanager
def _one_run_at_a_time():
    if connection.vendor != "postgresql":
        yield  # SQLite serialises writers itself
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
