"""seed_demo: a synthetic roster imported for real (PostgreSQL), demo logins, idempotent."""

from io import StringIO

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.management.commands.seed_demo import DEMO_PASSWORDS, demo_logins
from portal.models import Guardian, GuardianStudent, Student
from recovery.models import OutboundEmail

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    return settings


def seed(*args):
    out = StringIO()
    call_command("seed_demo", "--students", "40", *args, stdout=out)
    return out.getvalue()


def test_refuses_without_debug_or_force(settings, tmp_path):
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="DEBUG"):
        seed()
    assert not Student.objects.exists()
    assert not get_user_model().objects.exists()
    assert not (tmp_path / "demo-roster").exists()


def test_seeds_roster_and_demo_logins_then_does_nothing(demo_settings, tmp_path, client):
    User = get_user_model()
    output = seed()

    assert (tmp_path / "demo-roster" / "users.csv").is_file()
    assert Student.objects.count() == 40
    assert Guardian.objects.count() > 40
    assert GuardianStudent.objects.exists()

    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser and admin.role == User.Role.STAFF
    assert admin.check_password(DEMO_PASSWORDS["staff"])

    parent = User.objects.get(username=demo_logins()[1][1])
    guardian = parent.guardian
    assert guardian is not None and guardian.active and guardian.enabled
    assert guardian.email and not guardian.email_shared
    assert (
        Guardian.objects.filter(email_normalised=guardian.email_normalised)
        .exclude(pk=guardian.pk)
        .count()
        == 0
    )
    assert parent.has_self_serve and parent.activated_at is not None
    assert parent.check_password(DEMO_PASSWORDS["parent"])

    student_user = User.objects.get(username=demo_logins()[2][1])
    assert student_user.student is not None
    assert student_user.username == student_user.student.student_number
    assert student_user.student.guardians.filter(pk=guardian.pk).exists()
    assert not student_user.is_staff

    # The nightly job ran too: every other eligible guardian has an account and a welcome.
    assert User.objects.filter(role=User.Role.PARENT).count() > 1
    assert OutboundEmail.objects.filter(kind="welcome").exists()
    assert not OutboundEmail.objects.filter(kind="welcome", user=parent).exists()
    # The demo supervisor's code is printable by demo_code (and a real TOTP of its device).
    code_out = StringIO()
    call_command("demo_code", stdout=code_out)
    assert TOTPDevice.objects.get(user=admin).verify_token(code_out.getvalue().strip())

    assert "demo only" in output
    for username, password in (
        ("admin", DEMO_PASSWORDS["staff"]),
        (parent.username, DEMO_PASSWORDS["parent"]),
        (student_user.username, DEMO_PASSWORDS["student"]),
    ):
        assert username in output and password in output
        response = client.post("/login/", {"username": username, "password": password})
        assert response.status_code == 302, username
        assert client.session[SESSION_KEY] == str(User.objects.get(username=username).pk)
        client.post("/logout/")

    students, users = Student.objects.count(), User.objects.count()
    again = seed()
    assert "nothing to do" in again
    assert parent.username in again  # the logins are shown again
    assert (Student.objects.count(), User.objects.count()) == (students, users)


def test_force_runs_without_debug(settings, tmp_path):
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    seed("--force")
    assert Student.objects.count() == 40
    assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()


def test_keeps_an_existing_roster(demo_settings, tmp_path):
    Student.objects.create(sourced_id="real-1", given_name="Ana", family_name="Real")
    output = seed()
    assert "not importing" in output
    assert list(Student.objects.values_list("sourced_id", flat=True)) == ["real-1"]
    assert not (tmp_path / "demo-roster").exists()
    assert get_user_model().objects.filter(username="admin").exists()
