"""A small district for the staff queue and action tests: two schools, a family, staff."""

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import count

from django.contrib.auth import get_user_model
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Organisation, Student
from portal.normalisation import normalise_email
from recovery.models import ManualRequest
from tests.recovery.staff_helpers import make_staff

PASSWORD = "violet kettle marches under quiet harbours"
STUDENT_NUMBER = "20230417"
ROSA_SIS = "rosa.sis@example.org"  # Rosa's SIS email (her own)
ROSA_OWN = "Rosa.Own@example.org"  # Rosa's verified recovery email, as stored
HOUSEHOLD = "garcia.family@example.org"  # shared by Luis and Marta in the SIS
ATTACKER = "attacker@evil.example"  # typed into a request form; on record nowhere

XSS_PAYLOADS = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "{{7*7}}",
    "javascript:alert(3)",
)

_references = count(1)


@dataclass
class District:
    school_a: Organisation
    school_b: Organisation
    student: Student
    student_account: object
    rosa: Guardian
    rosa_account: object
    luis: Guardian  # left out: shares HOUSEHOLD with Marta
    marta: Guardian
    staff_a: object  # scoped to school A
    staff_b: object  # scoped to school B
    supervisor: object


def user_model():
    return get_user_model()


def _guardian(sourced_id, given, family, email, **fields):
    return Guardian.objects.create(
        sourced_id=sourced_id,
        given_name=given,
        family_name=family,
        email=email,
        email_normalised=normalise_email(email),
        role=Guardian.Role.PARENT,
        **fields,
    )


def make_district():
    now = timezone.now()
    school_a = Organisation.objects.create(
        sourced_id="org-a", name="Lincoln Elementary", type="school"
    )
    school_b = Organisation.objects.create(
        sourced_id="org-b", name="Roosevelt Middle", type="school"
    )
    student = Student.objects.create(
        sourced_id="st-ana",
        student_number=STUDENT_NUMBER,
        given_name="Ana",
        family_name="García",
        birth_date=date(2012, 3, 9),
        grade="05",
        school=school_a,
    )
    student_account = user_model().objects.create_user(
        username=STUDENT_NUMBER, password=None, role="student", student=student
    )
    rosa = _guardian("g-rosa", "Rosa", "García", ROSA_SIS)
    luis = _guardian(
        "g-luis",
        "Luis",
        "García",
        HOUSEHOLD,
        email_shared=True,
        unprovisioned_reason="shared_email",
    )
    marta = _guardian(
        "g-marta",
        "Marta",
        "García",
        HOUSEHOLD,
        email_shared=True,
        unprovisioned_reason="shared_email",
    )
    for guardian in (rosa, luis, marta):
        GuardianStudent.objects.create(guardian=guardian, student=student)
    rosa_account = user_model().objects.create_user(
        username="rosa.garcia",
        password=PASSWORD,
        role="parent",
        guardian=rosa,
        email=ROSA_SIS,
        activated_at=now - timedelta(days=30),
        recovery_email=ROSA_OWN,
        recovery_email_normalised=normalise_email(ROSA_OWN),
        recovery_email_verified_at=now - timedelta(days=29),
        language="es",
    )
    return District(
        school_a=school_a,
        school_b=school_b,
        student=student,
        student_account=student_account,
        rosa=rosa,
        rosa_account=rosa_account,
        luis=luis,
        marta=marta,
        staff_a=make_staff("staff.lincoln", schools=[school_a]),
        staff_b=make_staff("staff.roosevelt", schools=[school_b]),
        supervisor=make_staff("super.visor", supervisor=True),
    )


def make_request(*, school=None, **fields):
    """A manual request as the form stores it (Rosa asking for Ana, from an attacker's address
    by default: the typed address is never proof of anything)."""
    values = {
        "reference": f"R-{next(_references):06d}",
        "student_first_name": "Ana",
        "student_last_name": "Garcia",
        "student_id": STUDENT_NUMBER,
        "student_email": "",
        "request_type": ManualRequest.RequestType.RESET,
        "request_for": ManualRequest.RequestFor.PARENT,
        "parent_first_name": "Rosa",
        "parent_last_name": "Garcia",
        "parent_email": ATTACKER,
        "comments": "I cannot sign in.",
        "answer_address": ATTACKER,
        "language": "en",
        "school": school,
    }
    values.update(fields)
    return ManualRequest.objects.create(**values)
