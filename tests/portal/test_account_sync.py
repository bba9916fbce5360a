"""The roster drives accounts (portal.account_sync), in process on PostgreSQL: each test imports
a roster, provisions, imports a changed roster and checks the accounts and the links.

End to end through the real worker and SMTP server: test_provisioning_e2e.py.
"""

import pytest
from django.utils import timezone

from portal.account_sync import sync_accounts_with_roster
from portal.models import User
from portal.provisioning import provision_accounts
from portal.roster.importer import import_roster
from recovery import tokens
from recovery.models import AuditEvent, OutboundEmail
from tests.portal.roster_helpers import guardian, student, write_set

pytestmark = pytest.mark.django_db


def people(**changes):
    """Two families; `changes` maps a SIS id to the fields that differ tonight (None: absent)."""
    users = [
        student("s1", "100001", agentSourcedIds="g1,g2"),
        student("s2", "100002", given="Minh", family="Nguyễn", agentSourcedIds="g3"),
        guardian("g1", "rosa@example.org", given="Rosa"),
        guardian("g2", "juan@example.org", given="Juan"),
        guardian("g3", "lan@example.net", given="Lan", family="Nguyễn"),
        guardian("g4", "other@example.org", given="Otro", family="Smith", agentSourcedIds="s2"),
    ]
    out = []
    for user in users:
        change = changes.get(user["sourcedId"], {})
        if change is None:
            continue
        out.append({**user, **change})
    return out


class Night:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.count = 0

    def run(self, **changes):
        self.count += 1
        folder = write_set(self.tmp_path / f"night{self.count}", users=people(**changes))
        # A small district: one person is more than ROSTER_MAX_DEACTIVATE_SHARE of it.
        summary = import_roster(folder, allow_mass_deactivation=True)
        provision_accounts()
        return summary


@pytest.fixture
def night(tmp_path):
    night = Night(tmp_path)
    night.run()
    return night


def account(sourced_id):
    if sourced_id.startswith("g"):
        return User.objects.get(guardian_id=sourced_id)
    return User.objects.get(student_id=sourced_id)


def welcomes(user):
    return list(
        OutboundEmail.objects.filter(kind="welcome", user=user)
        .order_by("pk")
        .values_list("to_address", flat=True)
    )


def activate(user, *, recovery_email=None):
    now = timezone.now()
    recovery_email = recovery_email or user.email
    User.objects.filter(pk=user.pk).update(
        activated_at=now, recovery_email=recovery_email, recovery_email_verified_at=now
    )
    user.refresh_from_db()
    return user


def test_a_guardian_gone_from_the_sis_is_disabled_and_loses_every_link(night):
    rosa = account("g1")
    link = tokens.mint(user=rosa, purpose="activation")
    night.run(g1=None)
    rosa.refresh_from_db()
    assert (rosa.is_active, rosa.disabled_by_sis) == (False, True)
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(link, purpose="activation")
    assert account("g2").is_active  # her co-parent is untouched
    event = AuditEvent.objects.filter(action="roster.accounts_synced").first()
    assert event.detail["disabled"] == 1


@pytest.mark.parametrize("spelling", ["false", "FALSE", "False"])
def test_enabled_user_false_disables_a_student(night, spelling):
    student_user = account("s1")
    link = tokens.mint(user=student_user, purpose="reset")
    night.run(s1={"enabledUser": spelling})
    student_user.refresh_from_db()
    assert (student_user.is_active, student_user.disabled_by_sis) == (False, True)
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(link, purpose="reset")


def test_restored_in_the_sis_restores_the_account_and_resends_a_pending_welcome(night):
    rosa = account("g1")
    night.run(g1={"enabledUser": "false"})
    night.run()
    rosa.refresh_from_db()
    assert (rosa.is_active, rosa.disabled_by_sis) == (True, False)
    # Her first link died with the disabling: a fresh welcome goes to the same address.
    assert welcomes(rosa) == ["rosa@example.org", "rosa@example.org"]
    assert rosa.welcome_sent_to == "rosa@example.org"
    night.run()
    assert len(welcomes(rosa)) == 2  # and only once


def test_a_restored_activated_parent_gets_no_welcome(night):
    rosa = activate(account("g1"))
    night.run(g1=None)
    night.run()
    rosa.refresh_from_db()
    assert rosa.is_active
    assert welcomes(rosa) == ["rosa@example.org"]


def test_an_account_disabled_by_staff_stays_disabled_when_the_sis_restores(night):
    rosa = account("g1")
    User.objects.filter(pk=rosa.pk).update(is_active=False)  # staff, not the SIS
    night.run(g1=None)
    night.run()
    rosa.refresh_from_db()
    assert (rosa.is_active, rosa.disabled_by_sis) == (False, False)


def test_a_pending_parents_new_sis_email_gets_the_welcome_and_the_old_link_dies(night):
    rosa = account("g1")
    old_link = tokens.mint(user=rosa, purpose="activation")
    night.run(g1={"email": "Rosa.New@Example.org"})
    rosa.refresh_from_db()
    assert rosa.email == rosa.welcome_sent_to == "Rosa.New@Example.org"
    assert welcomes(rosa) == ["rosa@example.org", "Rosa.New@Example.org"]
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(old_link, purpose="activation")
    event = AuditEvent.objects.filter(action="roster.accounts_synced").first()
    assert event.detail["welcomes_sent"] == 1
    night.run(g1={"email": "Rosa.New@Example.org"})
    assert len(welcomes(rosa)) == 2  # nothing twice


def test_a_change_of_case_only_sends_nothing_and_keeps_the_link(night):
    rosa = account("g1")
    link = tokens.mint(user=rosa, purpose="activation")
    night.run(g1={"email": " ROSA@example.org "})
    rosa.refresh_from_db()
    assert welcomes(rosa) == ["rosa@example.org"]
    assert tokens.check(link, purpose="activation").user == rosa
    assert rosa.email == "ROSA@example.org"  # the SIS's spelling, trimmed by the importer


def test_a_pending_parent_moved_to_a_shared_email_gets_no_welcome_until_it_is_theirs(night):
    rosa = account("g1")
    link = tokens.mint(user=rosa, purpose="activation")
    night.run(g1={"email": "juan@example.org"})  # her co-parent's address
    rosa.refresh_from_db()
    assert welcomes(rosa) == ["rosa@example.org"]
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(link, purpose="activation")
    assert rosa.welcome_sent_to == ""
    night.run(g1={"email": "rosa.garcia@example.org"})
    assert welcomes(rosa) == ["rosa@example.org", "rosa.garcia@example.org"]


def test_a_pending_parent_whose_email_is_removed_keeps_no_live_link(night):
    rosa = account("g1")
    link = tokens.mint(user=rosa, purpose="activation")
    night.run(g1={"email": ""})
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(link, purpose="activation")
    assert welcomes(rosa) == ["rosa@example.org"]


def test_an_activated_parents_new_sis_email_is_a_recovery_channel_change(night):
    rosa = activate(account("g1"))
    link = tokens.mint(user=rosa, purpose="reset")
    night.run(g1={"email": "rosa.new@example.org"})
    rosa.refresh_from_db()
    assert rosa.email == "rosa.new@example.org"
    assert rosa.recovery_email == "rosa@example.org"  # the parent's own choice stays
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(link, purpose="reset")
    [notice] = OutboundEmail.objects.filter(kind="sis_email_changed")
    assert (notice.to_address, notice.user, notice.token_purpose) == ("rosa@example.org", rosa, "")
    assert AuditEvent.objects.filter(action="account.sis_email_changed", subject=rosa).exists()
    assert welcomes(rosa) == ["rosa@example.org"]  # no link is sent to the new address


def test_no_notice_when_the_old_sis_email_was_not_where_notices_went(night):
    activate(account("g1"), recovery_email="rosa.private@example.net")
    night.run(g1={"email": "rosa.new@example.org"})
    assert not OutboundEmail.objects.filter(kind="sis_email_changed").exists()


def test_a_students_sis_email_follows(night):
    night.run(s1={"email": "100001@students.example.org"})
    assert account("s1").email == "100001@students.example.org"


def test_an_unchanged_reimport_changes_no_account(night):
    before = sorted(User.objects.values_list("pk", "is_active", "email", "welcome_sent_to"))
    emails = OutboundEmail.objects.count()
    summary = night.run()
    assert sorted(User.objects.values_list("pk", "is_active", "email", "welcome_sent_to")) == (
        before
    )
    assert OutboundEmail.objects.count() == emails
    assert sync_accounts_with_roster(None, summary=summary) == {
        "disabled": 0,
        "restored": 0,
        "welcomes_sent": 0,
        "welcomes_withheld": 0,
        "activated_email_changes": 0,
        "student_emails": 0,
    }


def test_a_staff_created_account_keeps_its_verified_welcome_across_unrelated_sis_changes(
    tmp_path,
):
    from portal.models import Guardian
    from recovery.flows.staff_actions import create_guardian_account

    night = Night(tmp_path)
    night.run(g2={"email": "rosa@example.org"})  # Juan shares Rosa's address: left out
    staff = User.objects.create(username="helpdesk", role=User.Role.STAFF, is_staff=True)
    juan = create_guardian_account(
        guardian=Guardian.objects.get(pk="g2"),
        email="juan.verified@example.org",
        verified_how="Called the number on file and confirmed the address",
        staff=staff,
    )
    link = tokens.mint(user=juan, purpose="activation")
    night.run(g2={"email": "rosa@example.org", "phone": "408-555-0199"})
    juan.refresh_from_db()
    assert juan.welcome_sent_to == "juan.verified@example.org"
    assert tokens.check(link, purpose="activation").user == juan
    assert welcomes(juan) == ["juan.verified@example.org"]
