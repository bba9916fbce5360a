"""Nightly provisioning in process (PostgreSQL): who gets an account, usernames, reasons, counts.

End to end through the real worker and SMTP server: test_provisioning_e2e.py.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from portal.models import Guardian, Student, User
from portal.provisioning import provision_accounts
from portal.roster.importer import import_roster
from portal.usernames import UsernameAllocator, ascii_fold, split_suffix, username_base
from recovery.models import OutboundEmail
from tests.portal.roster_helpers import guardian, student, write_set

pytestmark = pytest.mark.django_db
Reason = Guardian.Unprovisioned


def district():
    """Every case of the eligibility rule, linked from either side."""
    users = [
        # Siblings s1, s2 (links from the students' side) and s3 (from the guardians' side).
        student("s1", "100001", agentSourcedIds="g-unique,g-shared-a,g-relative"),
        student("s2", "100002", given="Minh", agentSourcedIds="g-unique,g-shared-b"),
        student("s3", "100003", given="Bảo", family="Nguyễn"),
        student("s4", "100004", given="Liam", family="Smith"),
        student("s-no-number", "", given="Noah", family="Smith"),
        student("s-disabled", "100006", given="Mia", family="Kim", enabledUser="false"),
        guardian("g-unique", "Rosa.Garcia@Example.com", given="María", family="García"),
        guardian("g-shared-a", "family@example.net", given="Juan"),
        guardian("g-shared-b", "FAMILY@example.net", given="Ana"),  # same, other case
        guardian("g-no-email", "", given="Lan", agentSourcedIds="s3"),
        guardian("g-disabled", "off@example.org", enabledUser="FALSE", agentSourcedIds="s3"),
        guardian("g-relative", "tia@example.org", given="Carmen", role="relative"),
        guardian(
            "g-guardian",
            "tuan@example.net",
            given="Tuấn",
            family="Nguyễn",
            role="guardian",
            agentSourcedIds="s3",
        ),
        guardian("g-no-student", "lonely@example.org", given="Robert", family="Brown"),
        guardian(
            "g-namesake", "maria2@example.org", given="Maria", family="Garcia", agentSourcedIds="s3"
        ),
    ]
    return users


def import_district(tmp_path, users=None, name="set"):
    return import_roster(write_set(tmp_path / name, users=users or district()))


def test_each_eligible_guardian_gets_one_parent_account_and_one_welcome(tmp_path):
    import_district(tmp_path)
    summary = provision_accounts()

    parents = {u.guardian_id: u for u in User.objects.filter(role=User.Role.PARENT)}
    assert set(parents) == {"g-unique", "g-guardian", "g-namesake"}
    rosa = parents["g-unique"]
    # Namesakes get a number, in SIS id order: g-namesake comes before g-unique.
    assert parents["g-namesake"].username == "maria.garcia"
    assert rosa.username == "maria.garcia2"
    assert parents["g-guardian"].username == "tuan.nguyen"
    for user in parents.values():
        assert not user.has_usable_password()
        assert user.is_active and user.provisioned_at is not None
        assert user.activated_at is None
        assert user.email == user.guardian.email  # as stored by the SIS, not normalised
        assert user.welcome_sent_to == user.email
    assert rosa.email == "Rosa.Garcia@Example.com"

    welcomes = OutboundEmail.objects.filter(kind="welcome")
    assert sorted(welcomes.values_list("to_address", flat=True)) == sorted(
        u.email for u in parents.values()
    )
    assert set(welcomes.values_list("stream", "token_purpose").distinct()) == {
        (OutboundEmail.Stream.BULK, "activation")
    }
    assert welcomes.get(user=rosa).context == {"username": "maria.garcia2"}
    assert summary.parents_created == summary.welcome_emails_queued == 3


def test_guardians_left_out_keep_their_reason(tmp_path):
    import_district(tmp_path)
    summary = provision_accounts()
    reasons = dict(Guardian.objects.values_list("sourced_id", "unprovisioned_reason"))
    assert reasons == {
        "g-unique": "",
        "g-guardian": "",
        "g-namesake": "",
        "g-shared-a": Reason.SHARED_EMAIL,
        "g-shared-b": Reason.SHARED_EMAIL,
        "g-no-email": Reason.NO_EMAIL,
        "g-disabled": Reason.DISABLED,
        "g-relative": Reason.RELATIVE,
        "g-no-student": Reason.NO_ACTIVE_STUDENT,
    }
    assert summary.guardians_left_out == {
        "shared_email": 2,
        "no_email": 1,
        "disabled": 1,
        "relative": 1,
        "no_active_student": 1,
    }


def test_a_second_run_creates_and_sends_nothing(tmp_path):
    import_district(tmp_path)
    provision_accounts()
    before = (User.objects.count(), OutboundEmail.objects.count())
    again = provision_accounts()
    assert (User.objects.count(), OutboundEmail.objects.count()) == before
    assert (again.parents_created, again.welcome_emails_queued, again.students_created) == (0, 0, 0)


def test_relatives_are_provisioned_behind_the_setting(tmp_path):
    import_district(tmp_path)
    with override_settings(PROVISION_RELATIVES=True):
        provision_accounts()
    carmen = User.objects.get(guardian_id="g-relative")
    assert carmen.username == "carmen.garcia-lopez"
    assert OutboundEmail.objects.filter(kind="welcome", user=carmen).count() == 1
    assert Guardian.objects.get(pk="g-relative").unprovisioned_reason == ""


def test_the_reason_clears_when_the_guardian_becomes_eligible(tmp_path):
    import_district(tmp_path)
    provision_accounts()
    users = [
        {**u, "email": "lan@example.org"} if u["sourcedId"] == "g-no-email" else u
        for u in district()
    ]
    import_district(tmp_path, users, name="next-night")
    provision_accounts()
    lan = Guardian.objects.get(pk="g-no-email")
    assert lan.unprovisioned_reason == ""
    assert lan.account.username == "lan.garcia-lopez"


def test_a_guardian_with_only_inactive_students_gets_no_account(tmp_path):
    users = [
        student("s1", "100001", agentSourcedIds="g1"),
        guardian("g1", "rosa@example.org"),
    ]
    import_district(tmp_path, users)
    Student.objects.filter(pk="s1").update(active=False)
    provision_accounts()
    assert not User.objects.filter(guardian_id="g1").exists()
    assert Guardian.objects.get(pk="g1").unprovisioned_reason == Reason.NO_ACTIVE_STUDENT


def test_active_students_get_accounts_on_the_default_policy(tmp_path):
    import_district(tmp_path)
    summary = provision_accounts()
    students = {u.student_id: u for u in User.objects.filter(role=User.Role.STUDENT)}
    # The disabled student and the one without a number are skipped.
    assert set(students) == {"s1", "s2", "s3", "s4"}
    for user in students.values():
        assert user.username == user.student.student_number
        assert not user.has_usable_password()
        assert user.default_password_active and user.default_password_since is not None
        assert user.must_change_password
    assert summary.students_created == 4
    assert summary.students_without_number == 1
    assert "s-no-number" in summary.skipped_student_ids
    # Students get no email: their default password is given out at school.
    assert not OutboundEmail.objects.filter(user__role=User.Role.STUDENT).exists()


def test_the_codes_policy_leaves_students_off_the_default(tmp_path):
    import_district(tmp_path)
    with override_settings(STUDENT_INITIAL_PASSWORD="codes"):
        provision_accounts()
    user = User.objects.get(student_id="s1")
    assert not user.default_password_active
    assert user.default_password_since is None


def test_a_student_number_already_used_as_a_username_is_skipped_and_reported(tmp_path):
    User.objects.create_user("100002", role=User.Role.STAFF)
    import_district(tmp_path)
    summary = provision_accounts()
    assert not User.objects.filter(student_id="s2").exists()
    assert summary.students_number_taken == 1
    assert "s2" in summary.skipped_student_ids


def test_usernames_skip_existing_ones_whatever_their_case(tmp_path):
    User.objects.create_user("Maria.Garcia", role=User.Role.STAFF)
    User.objects.create_user("maria.garcia7", role=User.Role.STAFF)
    import_district(tmp_path)
    provision_accounts()
    assert set(
        User.objects.filter(guardian_id__in=["g-unique", "g-namesake"]).values_list(
            "username", flat=True
        )
    ) == {"maria.garcia8", "maria.garcia9"}


def test_small_batches_give_the_same_result(tmp_path):
    import_district(tmp_path)
    provision_accounts(batch_size=1)
    assert User.objects.filter(role=User.Role.PARENT).count() == 3
    assert User.objects.filter(role=User.Role.STUDENT).count() == 4
    assert OutboundEmail.objects.filter(kind="welcome").count() == 3


def test_the_command_prints_counts_per_outcome(tmp_path):
    import_district(tmp_path)
    out = StringIO()
    call_command("provision_accounts", stdout=out)
    text = out.getvalue()
    assert "parent accounts created: 3" in text
    assert "welcome emails queued: 3" in text
    assert "student accounts created: 4" in text
    assert "guardians without an account (shared_email): 2" in text
    assert "students skipped, no student number: 1" in text
    assert "elapsed_seconds=" in text


@pytest.mark.parametrize(
    ("given", "family", "expected"),
    [
        ("María", "García", "maria.garcia"),
        ("María José", "García-López", "maria.garcia-lopez"),
        ("Đức", "Đặng", "duc.dang"),
        ("Ñoño", "Ñúñez", "nono.nunez"),
        ("Sean", "O'Brien", "sean.obrien"),
        ("Zoë", "Müller", "zoe.muller"),
        ("Ana", "de la Cruz", "ana.delacruz"),
        ("Grete", "Straße", "grete.strasse"),
        ("", "Smith", "smith"),
        ("王", "小明", "parent"),
        ("R2", "D2", "r.d"),
    ],
)
def test_username_base_is_ascii_lower_case_from_the_name(given, family, expected):
    assert username_base(given_name=given, family_name=family) == expected


def test_username_helpers():
    assert ascii_fold("Nguyễn Thị Đào") == "Nguyen Thi Dao"
    assert split_suffix("maria.garcia12") == ("maria.garcia", 12)
    assert split_suffix("Maria.Garcia") == ("maria.garcia", 1)
    allocator = UsernameAllocator()
    allocator.load(["x.y"])
    assert [allocator.allocate("x.y") for _ in range(3)] == ["x.y", "x.y2", "x.y3"]


def _accounts():
    return sorted(
        User.objects.values_list(
            "username", "role", "guardian_id", "student_id", "email", "welcome_sent_to",
            "first_name", "last_name", "is_active", "must_change_password",
            "default_password_active",
        )
    )  # fmt: skip


def _welcomes():
    return sorted(
        OutboundEmail.objects.values_list(
            "kind", "to_address", "user__username", "token_purpose", "context", "language",
            "stream", "status", "attempts",
        )
    )  # fmt: skip


def test_the_sql_and_orm_write_paths_give_the_same_accounts_and_emails(tmp_path):
    User.objects.create_user("100002", role=User.Role.STAFF)  # one student number taken
    import_district(tmp_path)
    by_sql = provision_accounts(writer="postgres")
    accounts, welcomes = _accounts(), _welcomes()
    passwords = list(User.objects.exclude(role=User.Role.STAFF).values_list("password", flat=True))
    User.objects.exclude(role=User.Role.STAFF).delete()
    OutboundEmail.objects.all().delete()
    by_orm = provision_accounts(writer="plain")
    assert _accounts() == accounts
    assert _welcomes() == welcomes
    assert by_orm.as_dict() == by_sql.as_dict()
    assert by_sql.students_number_taken == 1
    # Unusable, distinct per account, and no hasher's format: nothing was hashed.
    assert all(p.startswith("!") and len(p) == 41 for p in passwords)
    assert len(set(passwords)) == len(passwords)


# --- the welcome email and the bulk send tasks


@pytest.mark.parametrize(
    ("language", "label", "days"),
    [("en", "Username", "7 days"), ("es", "Nombre de usuario", "7 días"), ("vi", None, "7 ngày")],
)
def test_the_welcome_email_in_each_language(language, label, days):
    from recovery.rendering import render_outbound_email

    user = User(username="maria.garcia", email="maria@example.org")
    email = OutboundEmail(
        kind="welcome",
        to_address=user.email,
        token_purpose="activation",
        context={"username": "maria.garcia"},
        language=language,
    )
    link = "https://portal.example.org/activate/abc.def.ghi/"
    rendered = render_outbound_email(email, link=link)
    lines = rendered.text.splitlines()
    [username_line] = [line for line in lines if line.endswith(": maria.garcia")]
    if label:
        assert username_line == f"{label}: maria.garcia"
    assert lines.count(link) == 1
    assert days in rendered.text
    assert "(408) 555-0100" in rendered.text  # SUPPORT_CONTACT
    assert rendered.html.count(f'href="{link}"') == 1
    assert "maria.garcia" not in rendered.subject


def test_the_sis_email_notice_carries_no_link():
    from recovery.rendering import render_outbound_email

    email = OutboundEmail(kind="sis_email_changed", to_address="old@example.org", language="en")
    rendered = render_outbound_email(email)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "http" not in part
    assert "(408) 555-0100" in rendered.text


def test_welcome_sends_go_to_the_bulk_queue_in_chunks(settings):
    import json

    import redis

    from portal.provisioning import SEND_CHUNK, enqueue_bulk_sends
    from tests.support.worker import purge_broker

    purge_broker(settings.CELERY_BROKER_URL)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        enqueue_bulk_sends(email_ids=list(range(1, SEND_CHUNK + 2)))
        assert client.llen("batch") == client.llen("email") == 0
        messages = [json.loads(m) for m in client.lrange("bulk_email", 0, -1)]
        assert len(messages) == 2
        assert {m["headers"]["task"] for m in messages} == {"portal.tasks.send_bulk_emails"}
    finally:
        purge_broker(settings.CELERY_BROKER_URL)
        client.close()
