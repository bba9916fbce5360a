"""Two families and a student, made directly in the roster tables (no import needed)."""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth import get_user_model

from portal.models import Guardian, GuardianStudent, Organisation, Student

# Long, unusual passphrases: they pass the password policy and are in no breached list.
PASSWORD = "violet kettle marches under quiet harbours"
NEW_PASSWORD = "copper lantern drifts past seven orchards"


@dataclass
class Family:
    guardian: Guardian
    user: object
    children: list
    inactive_child: Student


def school(sourced_id="sch1", name="Lincoln Elementary"):
    return Organisation.objects.get_or_create(
        sourced_id=sourced_id, defaults={"name": name, "type": "school"}
    )[0]


def make_student(sourced_id, number, given, family, *, grade="05", active=True, org=None):
    return Student.objects.create(
        sourced_id=sourced_id,
        student_number=number,
        given_name=given,
        family_name=family,
        grade=grade,
        birth_date=date(2014, 3, 9),
        school=org or school(),
        active=active,
    )


def make_family(prefix, family_name, *, email, phone="408-555-0100", username=None):
    guardian = Guardian.objects.create(
        sourced_id=f"{prefix}-g",
        given_name="Rosa",
        family_name=family_name,
        email=email,
        email_normalised=email.lower(),
        phone=phone,
        role=Guardian.Role.PARENT,
    )
    children = [
        make_student(f"{prefix}-s1", f"{prefix}1001", "Ana", family_name, grade="05"),
        make_student(
            f"{prefix}-s2",
            f"{prefix}1002",
            "Bao",
            family_name,
            grade="08",
            org=school("sch2", "Roosevelt Middle"),
        ),
    ]
    inactive = make_student(f"{prefix}-s3", f"{prefix}1003", "Cruz", family_name, active=False)
    for child in [*children, inactive]:
        GuardianStudent.objects.create(guardian=guardian, student=child)
    user = get_user_model().objects.create_user(
        username=username or f"{prefix}.parent",
        password=PASSWORD,
        first_name="Rosa",
        last_name=family_name,
        role="parent",
        guardian=guardian,
    )
    return Family(guardian=guardian, user=user, children=children, inactive_child=inactive)


def make_student_user(sourced_id="st-1", number="990001", given="Dara", family="Okafor"):
    record = make_student(sourced_id, number, given, family, grade="07")
    user = get_user_model().objects.create_user(
        username=number, password=PASSWORD, role="student", student=record
    )
    return record, user


def send_confirmation_email(user):
    """Send the user's queued recovery-email confirmation as a worker would (in process, with
    the locmem mailer of the `mailoutbox` fixture); return the token from its link."""
    import re

    from django.core import mail

    from recovery.emails import deliver_outbound_email
    from recovery.models import OutboundEmail

    row = OutboundEmail.objects.filter(
        user=user, kind="recovery_email_confirm", status="queued"
    ).latest("pk")
    assert deliver_outbound_email(email_id=row.pk).status == "sent"
    [token] = re.findall(r"/portal/account/confirm-email/([^/\s]+)/", mail.outbox[-1].body)
    return token
