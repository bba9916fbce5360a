"""Provisioning and the roster-driven account lifecycle end to end: real Celery worker, Redis,
PostgreSQL and an aiosmtpd server. What the families receive is read back from the SMTP server.
"""

import re

import pytest
from django.conf import settings
from django.test import override_settings

from portal.models import Guardian, User
from portal.provisioning import provision_accounts
from portal.roster.importer import import_roster
from portal.tasks import nightly_roster
from recovery import tokens
from recovery.emails import queue_email
from recovery.models import OutboundEmail
from tests.portal.roster_helpers import guardian, student, write_set
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

BASE = settings.PORTAL_BASE_URL.rstrip("/")
BIRTH_DATES = {"s1": "2012-03-09", "s2": "2014-11-23", "s3": "2010-07-04"}


def district(**changes):
    """Siblings, both link directions, unique / shared (case) / missing / disabled emails,
    a relative, namesakes, a student without a number. `changes`: SIS id -> fields (None: gone).
    """
    users = [
        student("s1", "100001", agentSourcedIds="g-maria,g-juan,g-tia"),
        student("s2", "100002", given="Minh", agentSourcedIds="g-maria,g-ana"),
        student("s3", "100003", given="Bảo", family="Nguyễn"),
        student("s4", "", given="Noah", family="Smith", agentSourcedIds="g-maria"),
        guardian("g-maria", "Maria.Garcia@Example.com", given="María", family="García"),
        guardian("g-juan", "Family@Example.net", given="Juan"),
        guardian("g-ana", "family@example.net", given="Ana"),
        guardian("g-lan", "", given="Lan", agentSourcedIds="s3"),
        guardian("g-off", "off@example.org", given="Rosa", enabledUser="FALSE",
                 agentSourcedIds="s3"),
        guardian("g-tia", "tia@example.org", given="Carmen", role="relative"),
        guardian("g-tuan", "tuan@example.net", given="Tuấn", family="Nguyễn", role="guardian",
                 agentSourcedIds="s3"),
        guardian("g-maria2", "mgarcia@example.org", given="Maria", family="Garcia",
                 agentSourcedIds="s3"),
    ]  # fmt: skip
    out = []
    for user in users:
        change = changes.get(user["sourcedId"], {})
        if change is not None:
            out.append({**user, **change})
    demographics = [{"sourcedId": sid, "birthDate": day} for sid, day in BIRTH_DATES.items()]
    return out, demographics


def write_district(folder, **changes):
    users, demographics = district(**changes)
    return write_set(folder, users=users, demographics=demographics)


def import_night(tmp_path, name, **changes):
    return import_roster(write_district(tmp_path / name, **changes), allow_mass_deactivation=True)


def welcome_messages(smtp_server):
    return [m for m in smtp_server.messages if m.text and "/activate/" in m.text]


def check_welcome(message, *, username):
    """One Username: line, one activation link on a line of its own, nothing secret."""
    lines = message.text.splitlines()
    assert [line for line in lines if line.startswith("Username:")] == [f"Username: {username}"]
    links = re.findall(r"https?://\S+", message.text)
    assert len(links) == 1
    [link] = links
    assert link in lines
    assert link.startswith(f"{BASE}/activate/")
    assert re.findall(r'href="([^"]+)"', message.html) == [link]
    for part in (message.subject, message.text, message.html):
        assert not re.search(r"^\W*password\W*:", part, re.IGNORECASE | re.MULTILINE)
        assert "AG030912" not in part.upper()  # s1's default password
        for day in BIRTH_DATES.values():
            year, month, dom = day.split("-")
            for shape in (day, f"{month}{dom}{year[2:]}", f"{month}/{dom}/{year}"):
                assert shape not in part
    for name in ("Ana", "Minh", "Bảo", "Noah"):
        assert name not in message.subject
    return link.rstrip("/").rsplit("/", 1)[1]


def wait_for_welcomes(smtp_server, count, worker):
    return wait_until(
        lambda: len(welcome_messages(smtp_server)) >= count and welcome_messages(smtp_server),
        timeout=60,
        message=lambda: (
            f"{count} welcome emails, got {len(welcome_messages(smtp_server))}\n{worker.log}"
        ),
    )


def drain(smtp_server):
    """Send a marker through the worker and wait for it: everything queued before is done."""
    marker = queue_email(kind="password_changed", to_address="marker@example.org")
    wait_until(
        lambda: OutboundEmail.objects.filter(pk=marker.pk, status="sent").exists(),
        message="the marker email sent",
    )


def by_recipient(messages):
    out = {}
    for message in messages:
        [to] = message.rcpt_tos
        out.setdefault(to, []).append(message)
    return out


def test_the_nightly_job_sends_exactly_the_right_welcome_emails_once(
    start_worker, smtp_server, tmp_path
):
    folder = write_district(tmp_path / "drop")
    worker = start_worker(env={"ROSTER_DROP_PATH": str(folder)})
    nightly_roster.apply_async()  # beat's task, run by the worker: import, then provision

    messages = by_recipient(wait_for_welcomes(smtp_server, 3, worker))
    assert set(messages) == {"Maria.Garcia@Example.com", "tuan@example.net", "mgarcia@example.org"}
    assert all(len(copies) == 1 for copies in messages.values())
    expected = {
        "Maria.Garcia@Example.com": ("g-maria", "maria.garcia"),
        "mgarcia@example.org": ("g-maria2", "maria.garcia2"),
        "tuan@example.net": ("g-tuan", "tuan.nguyen"),
    }
    for address, (sourced_id, username) in expected.items():
        token = check_welcome(messages[address][0], username=username)
        user = tokens.check(token, purpose="activation").user
        assert (user.guardian_id, user.username) == (sourced_id, username)
        assert not user.has_usable_password()

    reasons = dict(Guardian.objects.values_list("sourced_id", "unprovisioned_reason"))
    assert reasons == {
        "g-maria": "",
        "g-maria2": "",
        "g-tuan": "",
        "g-juan": "shared_email",
        "g-ana": "shared_email",
        "g-lan": "no_email",
        "g-off": "disabled",
        "g-tia": "relative",
    }
    students = {u.student_id: u for u in User.objects.filter(role=User.Role.STUDENT)}
    assert set(students) == {"s1", "s2", "s3"}  # s4 has no student number
    for user in students.values():
        assert user.username == user.student.student_number
        assert user.default_password_active and not user.has_usable_password()

    # The second night (here, in process): nothing new is queued, so nothing is sent twice.
    outbox = OutboundEmail.objects.count()
    with override_settings(ROSTER_DROP_PATH=str(folder)):
        assert nightly_roster() == {"import": "ok"}
    assert provision_accounts().parents_created == 0
    drain(smtp_server)
    assert OutboundEmail.objects.count() == outbox + 1  # the marker only
    assert len(welcome_messages(smtp_server)) == 3

    # The district turns relatives on: the aunt gets hers, nobody else gets another.
    with override_settings(PROVISION_RELATIVES=True):
        provision_accounts()
    messages = by_recipient(wait_for_welcomes(smtp_server, 4, worker))
    check_welcome(messages["tia@example.org"][0], username="carmen.garcia-lopez")
    drain(smtp_server)
    assert len(welcome_messages(smtp_server)) == 4


def test_sis_deactivation_restoration_and_email_change_drive_access(
    start_worker, smtp_server, tmp_path, client
):
    worker = start_worker()
    import_night(tmp_path, "night1")
    provision_accounts()
    first = by_recipient(wait_for_welcomes(smtp_server, 3, worker))
    tuan_link = check_welcome(first["tuan@example.net"][0], username="tuan.nguyen")
    maria_link = check_welcome(first["Maria.Garcia@Example.com"][0], username="maria.garcia")

    # An activated student with a session, and a parent waiting to activate.
    student_user = User.objects.get(student_id="s3")
    client.force_login(student_user)
    User.objects.filter(pk=student_user.pk).update(
        must_change_password=False, default_password_active=False
    )
    assert client.get("/portal/").status_code == 200

    # Night 2: Tuấn and the student s3 are gone from the SIS; María's email changed.
    gone = {"g-tuan": None, "s3": {"enabledUser": "false"}}
    import_night(tmp_path, "night2", **gone, **{"g-maria": {"email": "maria.new@example.com"}})
    tuan = User.objects.get(guardian_id="g-tuan")
    student_user.refresh_from_db()
    for user in (tuan, student_user):
        assert (user.is_active, user.disabled_by_sis) == (False, True)
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(tuan_link, purpose="activation")
    response = client.get("/portal/")  # the session ends with the account
    assert response.status_code == 302 and response["Location"].startswith("/login/")

    # María's welcome goes to the new address; the old link is dead, the new one works.
    messages = by_recipient(wait_for_welcomes(smtp_server, 4, worker))
    new_link = check_welcome(messages["maria.new@example.com"][0], username="maria.garcia")
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(maria_link, purpose="activation")
    maria = tokens.check(new_link, purpose="activation").user
    assert maria.email == maria.welcome_sent_to == "maria.new@example.com"

    # Night 3: the SIS restores both. Tuấn gets a fresh welcome (his link died with the account).
    import_night(tmp_path, "night3", **{"g-maria": {"email": "maria.new@example.com"}})
    for user in (tuan, student_user):
        user.refresh_from_db()
        assert (user.is_active, user.disabled_by_sis) == (True, False)
    messages = by_recipient(wait_for_welcomes(smtp_server, 5, worker))
    assert len(messages["tuan@example.net"]) == 2
    fresh = check_welcome(messages["tuan@example.net"][1], username="tuan.nguyen")
    assert tokens.check(fresh, purpose="activation").user == tuan
    client.force_login(student_user)
    assert client.get("/portal/").status_code == 200
    drain(smtp_server)
    assert len(welcome_messages(smtp_server)) == 5
