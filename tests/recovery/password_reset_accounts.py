"""Accounts in every state the forgot-password flow tells apart (shared by its test files)."""

from datetime import timedelta

from django.utils import timezone

from portal.models import Guardian, Student, User

PASSWORD = "purple orbit juniper lantern"
NEW_PASSWORD = "copper meadow violin harbour"
RECOVERY_EMAIL = "Rosa.Nguyen+home@Example.org"  # mixed case: mail goes to it as stored
SIS_EMAIL = "Maria.Garcia@example.org"


def make_self_serve_parent(username="rosa.nguyen", *, recovery_email=RECOVERY_EMAIL):
    guardian = Guardian.objects.create(
        sourced_id=f"g-{username}",
        given_name="Rosa",
        family_name="Nguyen",
        email=f"sis-{username}@example.org",
        email_normalised=f"sis-{username}@example.org",
        role=Guardian.Role.PARENT,
    )
    now = timezone.now()
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        role=User.Role.PARENT,
        guardian=guardian,
        email=guardian.email,
        provisioned_at=now - timedelta(days=40),
        activated_at=now - timedelta(days=30),
        recovery_email=recovery_email,
        recovery_email_normalised=recovery_email.lower(),
        recovery_email_verified_at=now - timedelta(days=30),
    )
    return user


def make_awaiting_parent(username="maria.garcia", *, email=SIS_EMAIL):
    guardian = Guardian.objects.create(
        sourced_id=f"g-{username}",
        given_name="María",
        family_name="García",
        email=email,
        email_normalised=email.lower(),
        role=Guardian.Role.PARENT,
    )
    return User.objects.create_user(
        username=username,
        role=User.Role.PARENT,
        guardian=guardian,
        email=email,
        provisioned_at=timezone.now(),
        welcome_sent_to=email,
    )


def make_student_without_self_serve(username="40517"):
    record = Student.objects.create(
        sourced_id=f"s-{username}", given_name="Ana", family_name="Lee", student_number=username
    )
    return User.objects.create_user(
        username=username,
        password=PASSWORD,
        role=User.Role.STUDENT,
        student=record,
        email=f"{username}@students.example.org",
    )


def make_disabled_account(username="disabled.parent"):
    user = make_self_serve_parent(username, recovery_email="disabled@example.org")
    user.is_active = False
    user.disabled_by_sis = True
    user.save()
    return user


def make_staff_account(username="helpdesk.staff"):
    return User.objects.create_user(
        username=username,
        password=PASSWORD,
        role=User.Role.STAFF,
        is_staff=True,
        email="staff@example.org",
        recovery_email="staff@example.org",
        recovery_email_normalised="staff@example.org",
        recovery_email_verified_at=timezone.now(),
    )


def make_every_kind():
    """{label: typed identifier} for the identical-page matrix, accounts created."""
    return {
        "self_serve": make_self_serve_parent().username,
        "awaiting_activation": make_awaiting_parent().username,
        "no_self_serve": make_student_without_self_serve().username,
        "disabled": make_disabled_account().username,
        "staff": make_staff_account().username,
        "unknown": "nobody.here",
        "odd_name": "a.b-c_1",
        "email_address": "someone@example.org",
    }
