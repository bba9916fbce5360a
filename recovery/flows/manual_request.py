"""The manual request form's journey (SPEC §2.6): store the request, acknowledge it, nothing else.

    try:
        manual_request = submit_manual_request(data=form.cleaned_data, request=request)
    except ManualRequestThrottled as throttled:
        ...  # the 429 page (throttled.retry_after seconds)
    file_under_school(manual_request=manual_request)  # after the response is decided

The request is stored before anything else happens: the ManualRequest row, its `received`
history event, the audit event and the acknowledgement email's outbox row commit together.
The acknowledgement goes to the answer address (a typed one: the parent's email, else the
student's) and is fixed text with the reference number only: nothing typed, nothing about any
account (SPEC §6.6, checklist B6). Staff match the request against the roster when they open it
(recovery.matching); the submit only files the request under the school of the one student
with exactly the typed number, for staff scoping, in a single UPDATE that costs the same
whether a student matches or not, after the page's response is decided.
"""

import logging
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import translation

from portal.models import Student
from recovery import ratelimit
from recovery.audit import hash_identifier, record_event
from recovery.emails import queue_email
from recovery.models import ManualRequest, ManualRequestEvent
from recovery.resolution import address_email_allowed

logger = logging.getLogger(__name__)

ACKNOWLEDGEMENT_EMAIL = "manual_request_received"
RESOLVED_EMAIL = "manual_request_resolved"
REJECTED_EMAIL = "manual_request_rejected"
RECEIVED = "received"
# No 0/O, 1/I/L, U/V or 5/S look-alikes: read over the phone without mistakes.
REFERENCE_ALPHABET = "2346789ABCDEFGHJKMNPQRTWXYZ"
_TYPED_FIELDS = (
    "student_first_name",
    "student_last_name",
    "student_id",
    "student_email",
    "request_type",
    "request_for",
    "parent_first_name",
    "parent_last_name",
    "parent_email",
    "comments",
)


class ManualRequestThrottled(Exception):
    """Too many requests from this network or to this answer address; nothing was stored."""

    def __init__(self, retry_after):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = int(retry_after)


def new_reference():
    """A random reference like R-7KQ4-M2XP (27^8 ≈ 2.8e11 values: not guessable in bulk)."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"R-{chars[:4]}-{chars[4:]}"


def submit_manual_request(*, data, request):
    """Store one request from the form's cleaned `data` and queue its acknowledgement.

    Raises ManualRequestThrottled past RATELIMIT_MANUAL_REQUEST_PER_IP or
    RATELIMIT_MANUAL_REQUEST_PER_ADDRESS (both counters always count: constant work).
    """
    answer_address = data["answer_address"]
    retry_after = _throttled_for(answer_address=answer_address, request=request)
    if retry_after:
        record_event(
            action="manual_request.throttled",
            request=request,
            identifier=answer_address,
            detail={"retry_after": retry_after},
        )
        raise ManualRequestThrottled(retry_after)
    language = _language()
    for _attempt in range(5):
        try:
            with transaction.atomic():
                manual_request = _store(
                    data=data, answer_address=answer_address, language=language, request=request
                )
            break
        except IntegrityError:
            # A reference drawn twice (about once in 10^11 requests): draw again.
            continue
    else:  # pragma: no cover (five collisions in a row means the alphabet is broken)
        raise RuntimeError("Could not draw a unique manual request reference.")
    logger.info("Manual request %s received.", manual_request.pk)
    return manual_request


def _store(*, data, answer_address, language, request):
    reference = new_reference()
    manual_request = ManualRequest.objects.create(
        reference=reference,
        **{name: data.get(name) or "" for name in _TYPED_FIELDS},
        answer_address=answer_address,
        language=language,
        ip_hash=hash_identifier(ratelimit.client_ip(request)),
    )
    ManualRequestEvent.objects.create(request=manual_request, action=RECEIVED)
    record_event(
        action="manual_request.received",
        request=request,
        identifier=answer_address,
        detail={
            "manual_request": manual_request.pk,
            "request_type": manual_request.request_type,
            "request_for": manual_request.request_for,
        },
    )
    # The per-address cap shared by every flow (inbox flooding, checklist B1): the request is
    # stored either way; only the acknowledgement is skipped.
    if address_email_allowed(address=answer_address):
        queue_email(
            kind=ACKNOWLEDGEMENT_EMAIL,
            to_address=answer_address,
            context={"reference": reference},
            language=language,
        )
    else:
        logger.info("Manual request %s: acknowledgement skipped (address cap).", manual_request.pk)
    return manual_request


def file_under_school(*, manual_request):
    """Set the request's school from the one student with exactly the typed number.

    One UPDATE with a subquery, the same statement whether a student matches or not; two
    students sharing a number file it under no school (staff decide, with the match).
    """
    unique_school = (
        Student.objects.filter(student_number=OuterRef("student_id"))
        .values("student_number")
        .annotate(count=Count("sourced_id"), school=Max("school_id"))
        .filter(count=1)
        .values("school")[:1]
    )
    ManualRequest.objects.filter(pk=manual_request.pk, school__isnull=True).update(
        school_id=Subquery(unique_school)
    )


def queue_outcome_email(*, manual_request, resolved):
    """Queue the fixed-text outcome email (resolved or rejected) to the answer address.

    For staff actions (recovery.flows.staff_actions): call inside the action's transaction.
    It says the outcome and what to do next, and carries only the reference.
    """
    return queue_email(
        kind=RESOLVED_EMAIL if resolved else REJECTED_EMAIL,
        to_address=manual_request.answer_address,
        context={"reference": manual_request.reference},
        language=manual_request.language,
    )


def _throttled_for(*, answer_address, request):
    decisions = [
        ratelimit.hit(
            action="manual_request.ip",
            key=ratelimit.client_ip(request),
            rate=getattr(settings, "RATELIMIT_MANUAL_REQUEST_PER_IP", "10/h"),
        ),
        ratelimit.hit(
            action="manual_request.address",
            key=ratelimit.normalise_identifier(answer_address),
            rate=getattr(settings, "RATELIMIT_MANUAL_REQUEST_PER_ADDRESS", "3/d"),
        ),
    ]
    return max((d.retry_after for d in decisions if not d.allowed), default=0)


def _language():
    known = {code for code, _ in settings.LANGUAGES}
    language = translation.get_language() or ""
    if language in known:
        return language
    base = language.split("-")[0]
    return base if base in known else settings.LANGUAGE_CODE
