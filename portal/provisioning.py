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

Speed (SPEC §8: 100k guardians in under 30 s): parents are created in batches, each batch in its
own transaction with its welcome emails, so an interrupted run keeps what it finished and the
next run carries on. On PostgreSQL the rows are written by INSERT ... SELECT
(portal.provisioning_pg): Python computes only the usernames. Elsewhere (SQLite, the demo) the
ORM's bulk_create does it. No password is hashed, ever: the unusable password is written in
Django's "!" + random form directly (make_password(None) alone costs ~0.1 ms per account).
Welcome emails are outbox rows like queue_email's, bulk-inserted, and published as one bulk
task per SEND_CHUNK emails (portal.tasks.send_bulk_emails) rather than one per email. Runs are
serialised by a PostgreSQL advisory lock, so a beat run and a hand-run command cannot hand out
the same username.
"""

import logging
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Value, When
from django.template.loader import get_template
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Student, User
from portal.usernames import UsernameAllocator, username_base
from recovery.audit import record_event
from recovery.emails import checked_context, queue_email
from recovery.models import OutboundEmail
from recovery.rendering import template_names

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
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
    phase_seconds: dict = field(default_factory=dict)  # reasons, parents, students

    @contextmanager
    def timed(self, phase):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[phase] = time.perf_counter() - started

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
            tail = f" and {more} more" if more > 0 else ""
            out.append(f"  skipped students (SIS ids): {listed}{tail}")
        return out


def provision_accounts(*, batch_size=BATCH_SIZE, writer=None):
    """Create the accounts the roster calls for and queue the welcome emails; return counts.

    Idempotent: a second run finds every eligible person already provisioned and sends nothing.
    `writer` ("postgres" or "plain") forces a write path; by default PostgreSQL gets the
    INSERT ... SELECT path (portal.provisioning_pg) and other databases the ORM's bulk_create.
    """
    if writer is None:
        writer = "postgres" if connection.vendor == "postgresql" else "plain"
    in_sql = writer == "postgres"
    started = time.perf_counter()
    summary = ProvisioningSummary()
    now = timezone.now()
    with _one_run_at_a_time():
        with summary.timed("reasons"), transaction.atomic():
            _record_unprovisioned_reasons()
        allocator = UsernameAllocator()
        with summary.timed("parents"):
            for batch in _batches(_eligible_guardians(), batch_size, _GUARDIAN_FIELDS):
                with _batch_transaction():
                    _create_parent_accounts(
                        batch, allocator=allocator, now=now, summary=summary, in_sql=in_sql
                    )
        with summary.timed("students"):
            _report_students_without_number(summary)
            _create_student_accounts(now=now, batch_size=batch_size, summary=summary, in_sql=in_sql)
    summary.guardians_left_out = dict(
        Guardian.objects.exclude(unprovisioned_reason="")
        .values_list("unprovisioned_reason")
        .annotate(n=Count("pk"))
        .values_list("unprovisioned_reason", "n")
    )
    summary.seconds = time.perf_counter() - started
    logger.info("Provisioning: %s", summary.as_dict())
    record_event(action="provisioning.run", detail=summary.as_dict())
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


def _create_parent_accounts(rows, *, allocator, now, summary, in_sql):
    first_names = [row["preferred_given_name"] or row["given_name"] for row in rows]
    bases = [
        username_base(given_name=first, family_name=row["family_name"])
        for first, row in zip(first_names, rows, strict=True)
    ]
    allocator.load(bases)
    usernames = [allocator.allocate(base) for base in bases]
    if in_sql:
        from portal import provisioning_pg

        email_ids = provisioning_pg.insert_parent_accounts(
            guardian_ids=[row["sourced_id"] for row in rows],
            usernames=usernames,
            now=now,
            welcome={**WELCOME, "language": settings.LANGUAGE_CODE},
        )
        transaction.on_commit(lambda: enqueue_bulk_sends(email_ids=email_ids))
        # Every eligible guardian has an email, so each new account has exactly one welcome.
        summary.parents_created += len(rows)
        summary.welcome_emails_queued += len(email_ids)
        return
    users = [
        User(
            username=username,
            password=unusable_password(),
            role=User.Role.PARENT,
            guardian_id=row["sourced_id"],
            first_name=first[:150],
            last_name=row["family_name"][:150],
            email=row["email"],
            provisioned_at=now,
            welcome_sent_to=row["email"],
        )
        for row, first, username in zip(rows, first_names, usernames, strict=True)
    ]
    User.objects.bulk_create(users)
    emails = queue_welcome_emails(users=users)
    summary.parents_created += len(users)
    summary.welcome_emails_queued += len(emails)


WELCOME = {
    "kind": "welcome",
    "stream": OutboundEmail.Stream.BULK,
    "token_purpose": "activation",  # a link purpose, not a password
}
# Welcome emails handed to one bulk task: small enough to spread a night's batch over every
# bulk worker, large enough that 100k emails are 200 broker messages, not 100k.
SEND_CHUNK = 500


def queue_welcome_email(*, user):
    """One welcome email (username + activation link) to the account's SIS email as stored."""
    return queue_email(
        **WELCOME, to_address=user.email, user=user, context={"username": user.get_username()}
    )


def queue_welcome_emails(*, users):
    """queue_email(**WELCOME) for many new accounts at once: the same outbox rows, bulk-inserted.

    queue_email writes one row and publishes one task per email (~4 ms each here: 100k welcome
    emails would take minutes). This inserts the rows in one statement and, on commit, publishes
    one `portal.tasks.send_bulk_emails` task per SEND_CHUNK ids; the worker delivers each through
    the outbox's usual claim/send/retry path, and the sweeper covers a lost task as always.
    """
    language = settings.LANGUAGE_CODE  # new accounts have chosen no language yet
    for name in template_names(WELCOME["kind"]).values():
        get_template(name)
    emails = OutboundEmail.objects.bulk_create(
        OutboundEmail(
            **WELCOME,
            to_address=user.email,
            user=user,
            context=checked_context({"username": user.get_username()}),
            language=user.language or language,
        )
        for user in users
        if user.email
    )
    ids = [email.pk for email in emails]
    transaction.on_commit(lambda: enqueue_bulk_sends(email_ids=ids))
    return emails


def enqueue_bulk_sends(*, email_ids):
    """Publish the send tasks for outbox rows in chunks; a broker failure is left to the sweeper."""
    for start in range(0, len(email_ids), SEND_CHUNK):
        chunk = email_ids[start : start + SEND_CHUNK]
        try:
            # By name: this module need not import the tasks, which import it.
            current_app.send_task(
                "portal.tasks.send_bulk_emails",
                args=[chunk],
                queue="bulk_email",
            )
        except Exception as error:
            logger.warning(
                "Could not enqueue %s welcome email(s) (%s); the outbox sweeper will send them.",
                len(email_ids) - start,
                type(error).__name__,
            )
            return


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


def _create_student_accounts(*, now, batch_size, summary, in_sql):
    on_default = settings.STUDENT_INITIAL_PASSWORD == "default"  # noqa: S105 - a policy name
    if in_sql:
        from portal import provisioning_pg

        with _batch_transaction():
            summary.students_created += provisioning_pg.insert_student_accounts(
                now=now, on_default=on_default
            )
    else:
        for rows in _batches(_eligible_students(), batch_size, _STUDENT_FIELDS):
            with _batch_transaction():
                summary.students_created += _create_student_accounts_orm(
                    rows, now=now, on_default=on_default
                )
    # Whoever is still eligible now was skipped: the number is someone's username already.
    skipped = _eligible_students()
    summary.students_number_taken = skipped.count()
    room = _REPORT_LIMIT - len(summary.skipped_student_ids)
    if room > 0:
        summary.skipped_student_ids.extend(
            skipped.order_by("pk").values_list("sourced_id", flat=True)[:room]
        )


def _create_student_accounts_orm(rows, *, now, on_default):
    numbers = [row["student_number"].strip() for row in rows]
    taken = set(User.objects.filter(username__in=numbers).values_list("username", flat=True))
    users = []
    for row, number in zip(rows, numbers, strict=True):
        if not number or number in taken:
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
    return len(users)


# --- plumbing --------------------------------------------------------------------------------


def _batches(queryset, size, fields):
    """Rows of `queryset` as dicts, `size` at a time, in primary key order.

    One query, read through a server-side cursor (WITH HOLD outside a transaction, so it
    survives the batches' commits): the eligibility query runs once and memory holds a batch.
    """
    batch = []
    for row in queryset.order_by("pk").values(*fields).iterator(chunk_size=size):
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _batch_transaction():
    """One batch's transaction; on PostgreSQL it commits without waiting for the disk flush.

    A crash can then lose the last batch or two, which is harmless: a lost account is made
    again by the next run, and a send task for a lost outbox row finds nothing to claim. The
    wait it saves is most of a batch's commit on a busy disk.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


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
