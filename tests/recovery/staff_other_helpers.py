"""A small two-school district for the guardians, contact-changes, audit and dashboard pages.

d = make_two_schools()
sign_in_staff(client, d.staff_a)       # scoped to Lincoln
"""

from dataclasses import dataclass
from datetime import timedelta
from itertools import count

from django.contrib.auth import get_user_model
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Organisation, Student
from portal.normalisation import normalise_email
from tests.recovery.staff_helpers import make_staff

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"

_serial = count(1)


@dataclass
class TwoSchools:
    lincoln: Organisation
    roosevelt: Organisation
    ana: Student  # at Lincoln
    ben: Student  # at Roosevelt
    staff_a: object  # scoped to Lincoln
    staff_b: object  # scoped to Roosevelt
    supervisor: object


def make_two_schools():
    lincoln = Organisation.objects.create(
        sourced_id="org-a", name="Lincoln Elementary", type="school"
    )
    roosevelt = Organisation.objects.create(
        sourced_id="org-b", name="Roosevelt Middle", type="school"
    )
    ana = Student.objects.create(
        sourced_id="st-ana",
        student_number="20230417",
        given_name="Ana",
        family_name="Garcia",
        school=lincoln,
    )
    ben = Student.objects.create(
        sourced_id="st-ben",
        student_number="20230418",
        given_name="Ben",
        family_name="Tran",
        school=roosevelt,
    )
    return TwoSchools(
        lincoln=lincoln,
        roosevelt=roosevelt,
        ana=ana,
        ben=ben,
        staff_a=make_staff("staff.lincoln", schools=[lincoln]),
        staff_b=make_staff("staff.roosevelt", schools=[roosevelt]),
        supervisor=make_staff("super.visor", supervisor=True),
    )


def make_guardian(*, given, family, students=(), email="", reason="", shared=False, **fields):
    guardian = Guardian.objects.create(
        sourced_id=f"g-{next(_serial)}",
        given_name=given,
        family_name=family,
        email=email,
        email_normalised=normalise_email(email) if email else "",
        email_shared=shared,
        role=fields.pop("role", Guardian.Role.PARENT),
        unprovisioned_reason=reason,
        **fields,
    )
    for student in students:
        GuardianStudent.objects.create(guardian=guardian, student=student)
    return guardian


def make_parent(guardian, *, username=None, recovery_email="", language="en"):
    """An activated parent account for `guardian`, with a verified recovery email if given."""
    now = timezone.now()
    return get_user_model().objects.create_user(
        username=username or f"parent{next(_serial)}",
        password=None,
        role="parent",
        guardian=guardian,
        first_name=guardian.given_name,
        last_name=guardian.family_name,
        email=guardian.email,
        activated_at=now - timedelta(days=10),
        recovery_email=recovery_email,
        recovery_email_normalised=normalise_email(recovery_email) if recovery_email else "",
        recovery_email_verified_at=(now - timedelta(days=9)) if recovery_email else None,
        language=language,
    )
