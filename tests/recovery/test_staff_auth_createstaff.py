"""manage.py createstaff: the account, its profile and authenticator, and what it prints once."""

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import Organisation, User
from recovery.models import AuditEvent
from recovery.staff import otp
from recovery.staff_access import staff_scope

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "lantern meadow copper 8812"
_BACKUP = re.compile(r"^  ([a-z0-9]{5}-[a-z0-9]{5})$", re.M)


def createstaff(*args):
    out = io.StringIO()
    call_command("createstaff", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def schools():
    return [
        Organisation.objects.create(sourced_id=f"sch-{key}", name=f"School {key}", type="school")
        for key in ("a", "b", "c")
    ]


def test_creates_staff_profile_and_confirmed_authenticator(monkeypatch, schools):
    monkeypatch.setenv("STAFF_PASSWORD", GOOD_PASSWORD)
    output = createstaff(
        "sam.staff", "--email", "sam@staff.example.org", "--school", "sch-a", "--school", "sch-b"
    )
    user = User.objects.get(username="sam.staff")
    assert (user.role, user.is_staff, user.is_superuser) == (User.Role.STAFF, True, False)
    assert user.email == "sam@staff.example.org"
    assert user.check_password(GOOD_PASSWORD)
    assert not user.staff_profile.is_supervisor
    assert {s.sourced_id for s in user.staff_profile.schools.all()} == {"sch-a", "sch-b"}
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed

    # The otpauth:// URI, exactly the device's, and a QR block for the terminal.
    [uri] = re.findall(r"^otpauth://\S+$", output, re.M)
    assert uri == device.config_url
    assert "secret=" in uri and "issuer=" in uri
    qr_lines = [line for line in output.splitlines() if set(line) & set("█▀▄")]
    assert len(qr_lines) >= 10

    # Ten backup codes, printed once, stored only as hashes, each usable once.
    codes = _BACKUP.findall(output)
    assert len(codes) == otp.BACKUP_CODE_COUNT
    stored = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert stored == {otp.backup_code_hash(user=user, code=code) for code in codes}
    assert not stored & {code.replace("-", "") for code in codes}
    assert otp.verify_second_factor(user=user, code=codes[0]).verified
    assert not otp.verify_second_factor(user=user, code=codes[0]).verified

    # The app's code works.
    device.refresh_from_db()
    device.throttle_reset()
    assert otp.verify_second_factor(user=user, code=f"{totp(device.bin_key):06d}").verified
    assert GOOD_PASSWORD not in output
    assert AuditEvent.objects.filter(action="staff.created", subject=user).exists()


def test_supervisor_sees_everything(monkeypatch):
    monkeypatch.setenv("STAFF_PASSWORD", GOOD_PASSWORD)
    createstaff("sue.super", "--email", "sue@staff.example.org", "--supervisor")
    user = User.objects.get(username="sue.super")
    assert user.staff_profile.is_supervisor
    assert staff_scope(user) is None


def test_staff_scope_is_their_schools(monkeypatch, schools):
    monkeypatch.setenv("STAFF_PASSWORD", GOOD_PASSWORD)
    createstaff("sam.staff", "--email", "sam@staff.example.org", "--school", "sch-c")
    assert list(staff_scope(User.objects.get(username="sam.staff"))) == [schools[2]]


@pytest.mark.parametrize("weak", ["short", "password1234", "sam.staff2024!"])
def test_weak_password_refused_and_nothing_created(monkeypatch, weak):
    monkeypatch.setenv("STAFF_PASSWORD", weak)
    with pytest.raises(CommandError, match="Password refused"):
        createstaff("sam.staff", "--email", "sam@staff.example.org")
    assert not User.objects.filter(username="sam.staff").exists()
    assert not TOTPDevice.objects.exists()


def test_unknown_school_and_taken_username_refused(monkeypatch, schools):
    monkeypatch.setenv("STAFF_PASSWORD", GOOD_PASSWORD)
    with pytest.raises(CommandError, match="sch-zzz"):
        createstaff("sam.staff", "--email", "sam@staff.example.org", "--school", "sch-zzz")
    assert not User.objects.exists()
    createstaff("sam.staff", "--email", "sam@staff.example.org")
    with pytest.raises(CommandError, match="taken"):
        createstaff("SAM.STAFF", "--email", "other@staff.example.org")


def test_password_is_prompted_twice_without_the_environment_variable(monkeypatch):
    monkeypatch.delenv("STAFF_PASSWORD", raising=False)
    from recovery.management.commands import createstaff as command

    monkeypatch.setattr(command.sys.stdin, "isatty", lambda: True, raising=False)
    typed = iter([GOOD_PASSWORD, GOOD_PASSWORD])
    monkeypatch.setattr(command.getpass, "getpass", lambda prompt: next(typed))
    createstaff("sam.staff", "--email", "sam@staff.example.org")
    assert User.objects.get(username="sam.staff").check_password(GOOD_PASSWORD)

    typed = iter([GOOD_PASSWORD, "something else entirely 99"])
    with pytest.raises(CommandError, match="do not match"):
        createstaff("kim.staff", "--email", "kim@staff.example.org")


def test_without_a_terminal_the_environment_variable_is_required(monkeypatch):
    monkeypatch.delenv("STAFF_PASSWORD", raising=False)
    from recovery.management.commands import createstaff as command

    monkeypatch.setattr(command.sys.stdin, "isatty", lambda: False, raising=False)
    with pytest.raises(CommandError, match="STAFF_PASSWORD"):
        createstaff("sam.staff", "--email", "sam@staff.example.org")
