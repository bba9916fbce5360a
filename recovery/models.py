"""Recovery's durable state: the email outbox, the token ledger and the audit trail."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboundEmail(models.Model):
    """An email is a row first, committed with the change that caused it (SPEC §5).

    It holds what to send, never a live link: a worker mints the token (for `token_purpose`)
    when it renders the message, so a leaked outbox row cannot reset anyone's password.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    class Stream(models.TextChoices):
        TRANSACTIONAL = "email", _("Transactional")
        BULK = "bulk_email", _("Bulk")

    kind = models.CharField(max_length=64)  # template name: recovery/email/<kind>_*.txt|html
    to_address = models.CharField(max_length=320)  # the address on record, never a typed one
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_emails",
    )
    token_purpose = models.CharField(max_length=32, blank=True)
    context = models.JSONField(default=dict, blank=True)  # non-secret template values only
    language = models.CharField(max_length=8, blank=True)
    stream = models.CharField(max_length=16, choices=Stream.choices, default=Stream.TRANSACTIONAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="outbox_status_created")]

    def __str__(self):
        return f"{self.kind} #{self.pk} ({self.status})"


class IssuedToken(models.Model):
    """The ledger of every emailed link: makes each single-use and revocable (SPEC §4, §5).

    Only a hash of the token id is kept; the signed token itself exists only in the email.
    """

    class Purpose(models.TextChoices):
        RESET = "reset", _("Password reset")
        ACTIVATION = "activation", _("Account activation")
        EMAIL_CONFIRM = "email_confirm", _("Recovery email confirmation")
        STAFF_CODE = "staff_code", _("Staff-issued code")

    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="issued_tokens"
    )
    token_id_hash = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose"], name="token_user_purpose")]

    def __str__(self):
        return f"{self.purpose} token #{self.pk}"


class AuditEvent(models.Model):
    """Who did what, when and from where. Typed identifiers are kept only as keyed hashes."""

    # Not auto_now_add: an event written after the fact (a Help request, logged by the worker
    # that resolves it) keeps the time it happened.
    at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_actor",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_subject",
    )
    identifier_hash = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M:%S}"


class HelpRequest(models.Model):
    """One Help form submission, written in the request so the page can do constant work.

    The worker resolves it (looks the account up, sends what is due) and then blanks what was
    typed: only its keyed hash stays, for correlation with the audit trail.
    """

    class Kind(models.TextChoices):
        FORGOT_PASSWORD = "forgot_password", _("Forgot password")
        FORGOT_USERNAME = "forgot_username", _("Forgot username")

    kind = models.CharField(max_length=32, choices=Kind.choices)
    identifier = models.CharField(max_length=320, blank=True)  # as typed; blanked once resolved
    identifier_hash = models.CharField(max_length=64, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # For staff and the audit trail only, never for the person asking.
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["resolved_at", "created_at"], name="help_unresolved")]

    def __str__(self):
        return f"{self.kind} #{self.pk}"


class StaffProfile(models.Model):
    """A support-staff member's role: scoped to schools, or a supervisor who sees everything."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    is_supervisor = models.BooleanField(default=False)
    # Empty for a supervisor; a support worker sees only these schools' requests.
    schools = models.ManyToManyField("portal.Organisation", blank=True, related_name="+")

    def __str__(self):
        return f"{'supervisor' if self.is_supervisor else 'staff'} {self.user_id}"


class ManualRequest(models.Model):
    """A family's "Portal Account Reset Request" (SPEC §2.6), stored before anything else."""

    class RequestType(models.TextChoices):
        RESET = "reset", _("Portal reset")
        NEW_ACCOUNT = "new_account", _("New account")

    class RequestFor(models.TextChoices):
        PARENT = "parent", _("Parent")
        STUDENT = "student", _("Student")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("In progress")
        WAITING = "waiting", _("Waiting on family")
        RESOLVED = "resolved", _("Resolved")
        REJECTED = "rejected", _("Rejected")

    reference = models.CharField(max_length=16, unique=True)  # in the acknowledgement email
    # What the family typed, exactly (always escaped when shown; never proof of identity).
    student_first_name = models.CharField(max_length=100)
    student_last_name = models.CharField(max_length=100)
    student_id = models.CharField(max_length=32)
    student_email = models.CharField(max_length=254, blank=True)
    request_type = models.CharField(max_length=16, choices=RequestType.choices)
    request_for = models.CharField(max_length=16, choices=RequestFor.choices)
    parent_first_name = models.CharField(max_length=100, blank=True)
    parent_last_name = models.CharField(max_length=100, blank=True)
    parent_email = models.CharField(max_length=254, blank=True)
    comments = models.TextField(max_length=2000, blank=True)
    # Where fixed-text answers go: the typed parent email, else the student's (never account data).
    answer_address = models.CharField(max_length=254)
    language = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_manual_requests",
    )
    # Set by the roster match, for scoping staff to schools and for the queue's filters.
    school = models.ForeignKey(
        "portal.Organisation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="manual_status_created")]

    def __str__(self):
        return f"Request {self.reference}"


class ManualRequestEvent(models.Model):
    """The history of a manual request: every status change, assignment, action and note."""

    request = models.ForeignKey(ManualRequest, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    note = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.action} on {self.request_id}"
