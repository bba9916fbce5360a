"""Reads behind the staff console's other pages: guardians without accounts, contact-change
requests, the audit log and the dashboard (issue 5 item 5).

Every selector takes `scope`, from recovery.staff_access.staff_scope(user): None for all
(supervisors), else the Organisations a support worker may see. A guardian's or a parent's
schools are those of their *active* students; a student's is their own school. Rows outside
the scope are never returned, so a view that fetches one row through these gets a 404 for an
out-of-scope id.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Case, Count, IntegerField, Prefetch, Q, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from portal.models import ContactChangeRequest, Guardian, GuardianStudent
from recovery.audit import identifier_hashes
from recovery.models import AuditEvent, HelpRequest, ManualRequest

OPEN_STATUSES = (
    ManualRequest.Status.NEW,
    ManualRequest.Status.IN_PROGRESS,
    ManualRequest.Status.WAITING,
)
DASHBOARD_DAYS = 14
# A completed password reset (portal.services.user_set_password, reason "reset").
RESET_ACTION = "password.reset"


# --- Guardians left without accounts ---------------------------------------------------------


def _guardian_school_q(schools):
    return Q(links__student__active=True, links__student__school__in=schools)


def guardians_in_scope(*, scope):
    """Every guardian `scope` reaches (for a guardian's own page), with their active links."""
    guardians = Guardian.objects.all()
    if scope is not None:
        ids = Guardian.objects.filter(_guardian_school_q(scope)).values("pk")
        guardians = guardians.filter(pk__in=ids)
    return guardians.prefetch_related(
        Prefetch(
            "links",
            queryset=GuardianStudent.objects.filter(student__active=True).select_related(
                "student__school"
            ),
            to_attr="active_links",
        )
    )


def guardians_without_accounts(*, scope, reason="", school=None, search=""):
    """Guardians the nightly job left without an account (with its reason), newest change first.

    `reason` is a Guardian.Unprovisioned value, `school` an Organisation, `search` words that
    must each appear in a name.
    """
    guardians = (
        guardians_in_scope(scope=scope)
        .filter(account__isnull=True)
        .exclude(unprovisioned_reason="")
    )
    if reason:
        guardians = guardians.filter(unprovisioned_reason=reason)
    if school is not None:
        guardians = guardians.filter(
            pk__in=Guardian.objects.filter(_guardian_school_q([school])).values("pk")
        )
    for word in search.split()[:5]:
        guardians = guardians.filter(
            Q(given_name__icontains=word)
            | Q(family_name__icontains=word)
            | Q(preferred_given_name__icontains=word)
        )
    return guardians.order_by("family_name", "given_name", "pk")


def guardian_schools(guardian):
    """The names of the schools of `guardian`'s active students (needs guardians_in_scope)."""
    links = getattr(guardian, "active_links", None)
    if links is None:
        links = guardian.links.filter(student__active=True).select_related("student__school")
    return sorted({link.student.school.name for link in links if link.student.school})


# --- Contact-change requests -----------------------------------------------------------------


def contact_changes_in_scope(*, scope, status=""):
    """Parents' contact-change requests, pending first, then newest first."""
    changes = ContactChangeRequest.objects.select_related("user", "user__guardian", "decided_by")
    if scope is not None:
        ids = ContactChangeRequest.objects.filter(
            Q(
                user__guardian__links__student__active=True,
                user__guardian__links__student__school__in=scope,
            )
            | Q(user__student__active=True, user__student__school__in=scope)
        ).values("pk")
        changes = changes.filter(pk__in=ids)
    if status:
        changes = changes.filter(status=status)
    return changes.annotate(
        pending_first=Case(
            When(status=ContactChangeRequest.Status.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("pending_first", "-created_at", "-pk")


# --- The audit log ---------------------------------------------------------------------------


def audit_events(*, action="", actor="", since=None, until=None, identifier=""):
    """Audit events, newest first: `action` is a prefix ("staff." = every staff action),
    `actor` a username, `since`/`until` dates (inclusive, the district's time zone) and
    `identifier` what someone typed (matched by its keyed hash, under every key in use)."""
    events = AuditEvent.objects.select_related("actor", "subject")
    if action:
        events = events.filter(action__startswith=action)
    if actor:
        events = events.filter(actor__username__iexact=actor)
    if since is not None:
        events = events.filter(at__gte=_day_start(since))
    if until is not None:
        events = events.filter(at__lt=_day_start(until + timedelta(days=1)))
    if identifier:
        events = events.filter(identifier_hash__in=identifier_hashes(identifier) or [""])
    return events.order_by("-at", "-pk")


def iterate_in_batches(queryset, *, batch_size=2000):
    """Yield `queryset`'s rows (ordered by -pk) a batch at a time, by keyset: memory stays flat
    over any range, with or without server-side cursors (pgbouncer disables them)."""
    queryset = queryset.order_by("-pk")
    last = None
    while True:
        batch = queryset if last is None else queryset.filter(pk__lt=last)
        rows = list(batch[:batch_size])
        if not rows:
            return
        yield from rows
        last = rows[-1].pk


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


# --- The dashboard ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayActivity:
    day: date
    resets: int
    help_requests: int
    manual_requests: int


def _manual_requests(scope):
    requests = ManualRequest.objects.all()
    if scope is not None:
        requests = requests.filter(school__in=scope)
    return requests


def open_requests_by_age(*, scope, now=None):
    """Open manual requests in four age buckets: {"day": n, "days_3": n, "days_7": n, "older": n}
    (under a day, 1 to 3 days, 3 to 7 days, more than 7 days)."""
    now = now or timezone.now()
    day, three, seven = (now - timedelta(days=n) for n in (1, 3, 7))
    return (
        _manual_requests(scope)
        .filter(status__in=OPEN_STATUSES)
        .aggregate(
            day=Count("pk", filter=Q(created_at__gt=day)),
            days_3=Count("pk", filter=Q(created_at__lte=day, created_at__gt=three)),
            days_7=Count("pk", filter=Q(created_at__lte=three, created_at__gt=seven)),
            older=Count("pk", filter=Q(created_at__lte=seven)),
        )
    )


def open_requests_by_school(*, scope):
    """[(school name or None, count)], most first; None: no school matched yet."""
    rows = (
        _manual_requests(scope)
        .filter(status__in=OPEN_STATUSES)
        .values("school__name")
        .annotate(count=Count("pk"))
        .order_by("-count", "school__name")
    )
    return [(row["school__name"], row["count"]) for row in rows]


def activity_per_day(*, scope, days=DASHBOARD_DAYS, now=None):
    """[DayActivity] for the last `days` days (today included, the district's time zone), oldest
    first: completed password resets, Help form submissions and manual requests.

    Resets and manual requests are scoped (a reset by its account's schools); Help form
    submissions carry no school (what was typed is blanked once resolved), so they are the
    whole district's for everyone: a count says nothing about any family.
    """
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    start = _day_start(first)

    resets = AuditEvent.objects.filter(action=RESET_ACTION, at__gte=start)
    if scope is not None:
        resets = resets.filter(
            Q(subject__student__school__in=scope)
            | Q(
                subject__guardian__links__student__active=True,
                subject__guardian__links__student__school__in=scope,
            )
        )
    series = {
        "resets": _per_day(resets, "at"),
        "help_requests": _per_day(HelpRequest.objects.filter(created_at__gte=start), "created_at"),
        "manual_requests": _per_day(
            _manual_requests(scope).filter(created_at__gte=start), "created_at"
        ),
    }
    return [
        DayActivity(day=day, **{name: counts.get(day, 0) for name, counts in series.items()})
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


def _per_day(queryset, field):
    rows = (
        queryset.annotate(day=TruncDate(field, tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(count=Count("pk", distinct=True))
    )
    return {row["day"]: row["count"] for row in rows}
