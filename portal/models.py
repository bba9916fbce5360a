"""The SIS mirror (organisations, students, guardians, links) and the portal's user accounts.

Roster rows are keyed by the SIS `sourcedId` (OneRoster's stable GUID) as primary key, so the
importer merges by that key in SQL without id look-ups.
"""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from portal.fields import ByteOrderCharField, SourcedIdField


class RosterRecord(models.Model):
    sourced_id = SourcedIdField(_("SIS id"), max_length=255, primary_key=True)
    # active: listed by the SIS (not absent from a bulk file, not `tobedeleted` in a delta).
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Organisation(RosterRecord):
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=32)  # school, district, local, state, national, department
    identifier = models.CharField(max_length=255, blank=True)
    parent_sourced_id = SourcedIdField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Person(RosterRecord):
    given_name = models.CharField(max_length=255)
    family_name = models.CharField(max_length=255)
    middle_name = models.CharField(max_length=255, blank=True)
    preferred_given_name = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=255, blank=True)  # the SIS login name, as sent
    email = models.CharField(max_length=320, blank=True)  # as sent (trimmed): mail goes here
    email_normalised = ByteOrderCharField(max_length=320, blank=True, db_index=True)
    # enabledUser=false: the record exists but portal access is curtailed.
    enabled = models.BooleanField(default=True)
    # The PostgreSQL import's memo (portal.roster.postgres): a hash of the raw CSV input this row
    # was last merged from. A re-import skips validating and merging rows whose input has the
    # same digest; '' (any other writer, or unknown) means "compare in full".
    roster_digest = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        abstract = True

    def __str__(self):
        return self.full_name

    @property
    def full_name(self):
        return f"{self.preferred_given_name or self.given_name} {self.family_name}".strip()


class Student(Person):
    student_number = ByteOrderCharField(max_length=64, blank=True, db_index=True)
    birth_date = models.DateField(null=True, blank=True)
    grade = models.CharField(max_length=16, blank=True)
    school = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.SET_NULL, related_name="students"
    )

    class Meta:
        ordering = ["family_name", "given_name"]


class Guardian(Person):
    class Role(models.TextChoices):
        PARENT = "parent", _("Parent")
        GUARDIAN = "guardian", _("Guardian")
        RELATIVE = "relative", _("Relative")

    class Unprovisioned(models.TextChoices):
        """Why the nightly job left this guardian without an account (for staff)."""

        SHARED_EMAIL = "shared_email", _("Email shared with another guardian")
        NO_EMAIL = "no_email", _("No email in the SIS")
        NO_ACTIVE_STUDENT = "no_active_student", _("No active student")
        DISABLED = "disabled", _("Disabled in the SIS")
        RELATIVE = "relative", _("Relative, not a parent or guardian")

    role = models.CharField(max_length=16, choices=Role.choices)
    phone = models.CharField(max_length=64, blank=True)
    sms = models.CharField(max_length=64, blank=True)
    # Set by the importer: another active guardian has the same normalised email.
    email_shared = models.BooleanField(default=False)
    unprovisioned_reason = models.CharField(
        max_length=32, choices=Unprovisioned.choices, blank=True
    )
    students = models.ManyToManyField(Student, through="GuardianStudent", related_name="guardians")

    class Meta:
        ordering = ["family_name", "given_name"]


class GuardianStudent(models.Model):
    # No index of its own: the unique (guardian, student) index below serves lookups by guardian.
    guardian = models.ForeignKey(
        Guardian, on_delete=models.CASCADE, related_name="links", db_index=False
    )
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guardian", "student"], name="unique_guardian_student")
        ]

    def __str__(self):
        return f"{self.guardian_id} → {self.student_id}"


# Support staff and Django staff or superusers: few rows, looked for among many (a partial
# index on User serves every filter written with exactly this condition). "staff" is
# User.Role.STAFF.
STAFF_ACCOUNTS = Q(role="staff") | Q(is_staff=True) | Q(is_superuser=True)


class User(AbstractUser):
    """A portal account: a parent, a student or a member of support staff."""

    class Role(models.TextChoices):
        PARENT = "parent", _("Parent or guardian")
        STUDENT = "student", _("Student")
        STAFF = "staff", _("Support staff")

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PARENT)
    guardian = models.OneToOneField(
        Guardian, null=True, blank=True, on_delete=models.SET_NULL, related_name="account"
    )
    student = models.OneToOneField(
        Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="account"
    )
    # Self Serve: the address recovery mail goes to, once verified while logged in.
    recovery_email = models.CharField(max_length=320, blank=True)
    recovery_email_normalised = models.CharField(max_length=320, blank=True, db_index=True)
    recovery_email_verified_at = models.DateTimeField(null=True, blank=True)
    # Waiting for confirmation from its own mailbox; the verified address stays in force until then.
    pending_recovery_email = models.CharField(max_length=320, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # Set by the nightly job: when the account was made and where its welcome email last went,
    # so a changed SIS address before activation gets a fresh welcome there.
    provisioned_at = models.DateTimeField(null=True, blank=True)
    welcome_sent_to = models.CharField(max_length=320, blank=True)
    # Disabled because the SIS deactivated or disabled the person (restored with them).
    disabled_by_sis = models.BooleanField(default=False)
    must_change_password = models.BooleanField(default=False)
    # Students: still on the district default password (checked against the SIS record at login,
    # never hashed in bulk); it stops working STUDENT_DEFAULT_PASSWORD_DAYS after this date.
    default_password_active = models.BooleanField(default=False)
    default_password_since = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    # Login throttle (SPEC §6.2): consecutive failures give growing, capped delays; at 100 the
    # account is locked until a reset or a staff unlock.
    failed_login_count = models.PositiveIntegerField(default=0)
    last_failed_login_at = models.DateTimeField(null=True, blank=True)
    login_locked_at = models.DateTimeField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True)

    class Meta(AbstractUser.Meta):
        indexes = [
            # Forgot password finds the typed username in any case (username__iexact, which
            # PostgreSQL runs as UPPER(username) = UPPER(%s)): without it, a full table scan.
            models.Index(Upper("username"), name="user_username_upper"),
            models.Index(fields=["id"], condition=STAFF_ACCOUNTS, name="user_staff"),
        ]

    @property
    def has_self_serve(self):
        return bool(self.recovery_email and self.recovery_email_verified_at)

    @property
    def is_awaiting_activation(self):
        return self.role == self.Role.PARENT and self.activated_at is None


class ContactChangeRequest(models.Model):
    """A parent's request to change contact details; staff review it and update the SIS."""

    class Field(models.TextChoices):
        PHONE = "phone", _("Phone number")
        EMAIL = "email", _("Email address")
        OTHER = "other", _("Other details")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        APPROVED = "approved", _("Approved: the school will update its records")
        REJECTED = "rejected", _("Not approved")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="contact_changes")
    field = models.CharField(max_length=16, choices=Field.choices)
    new_value = models.CharField(max_length=2000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decision_reason = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_field_display()} change #{self.pk} ({self.status})"
