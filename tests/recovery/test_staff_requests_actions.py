"""Staff actions as services (recovery.flows.staff_actions), in process: what each writes
(outbox rows to contacts on record only, the request's history, the audit trail) and what
each refuses. End to end through a real worker and SMTP: test_staff_requests_delivery.py."""

import pytest
from django.utils import timezone

from portal.models import Guardian
from recovery.flows import staff_actions
from recovery.flows.staff_actions import ActionRefused
from recovery.models import (
    AuditEvent,
    IssuedToken,
    ManualRequest,
    ManualRequestEvent,
    OutboundEmail,
)
from tests.recovery.staff_requests_helpers import (
    ATTACKER,
    HOUSEHOLD,
    ROSA_OWN,
    ROSA_SIS,
    make_district,
    make_request,
)

pytestmark = pytest.mark.django_db

NOTE = "Mother called from the number in the SIS; confirmed the student's school and grade."


@pytest.fixture
def district():
    return make_district()


@pytest.fixture
def manual_request(district):
    return make_request(school=district.school_a)


@pytest.fixture
def act(district, manual_request):
    """Staff member A does an action on an account (Rosa's unless named) for the request."""

    def act(action, *, account=None, note=NOTE):
        return action(
            manual_request=manual_request,
            account=district.rosa_account if account is None else account,
            staff=district.staff_a,
            note=note,
        )

    return act


@pytest.fixture
def create_account(district):
    """Staff member A creates a guardian's account at an address verified as NOTE says."""

    def create_account(guardian, email, *, verified_how=NOTE, manual_request=None):
        return staff_actions.create_guardian_account(
            guardian=guardian,
            email=email,
            verified_how=verified_how,
            staff=district.staff_a,
            manual_request=manual_request,
        )

    return create_account


@pytest.fixture
def close(district):
    """Staff member A closes a request with an outcome."""

    def close(manual_request, outcome):
        return staff_actions.close_request(
            manual_request=manual_request, outcome=outcome, staff=district.staff_a, note=NOTE
        )

    return close


def audit(action):
    return list(AuditEvent.objects.filter(action=action))


def assert_recorded(manual_request, action, *, staff, subject):
    event = ManualRequestEvent.objects.get(request=manual_request, action=action)
    assert (event.actor, event.note) == (staff, NOTE)
    [entry] = audit(f"staff.{action}")
    assert entry.actor == staff
    assert entry.subject == subject
    assert entry.detail["note"] == NOTE
    assert entry.detail["manual_request"] == manual_request.reference


def test_reset_link_goes_to_the_verified_recovery_email_only(district, manual_request, act):
    act(staff_actions.send_reset_link)
    [email] = OutboundEmail.objects.all()
    assert (email.kind, email.to_address, email.user, email.token_purpose) == (
        "password_reset",
        ROSA_OWN,  # as stored, not normalised, never the SIS or the typed address
        district.rosa_account,
        "reset",
    )
    assert email.language == "es"  # the account holder's language, not the requester's
    assert_recorded(
        manual_request, "reset_link_sent", staff=district.staff_a, subject=district.rosa_account
    )
    manual_request.refresh_from_db()
    assert manual_request.status == ManualRequest.Status.IN_PROGRESS
    assert manual_request.assigned_to == district.staff_a


def test_username_reminder_goes_to_the_verified_recovery_email(district, manual_request, act):
    act(staff_actions.send_username_reminder)
    [email] = OutboundEmail.objects.all()
    assert (email.kind, email.to_address, email.token_purpose) == (
        "username_reminder",
        ROSA_OWN,
        "",
    )
    assert email.context == {"usernames": ["rosa.garcia"]}
    assert_recorded(
        manual_request,
        "username_reminder_sent",
        staff=district.staff_a,
        subject=district.rosa_account,
    )


@pytest.mark.parametrize("action", ["send_reset_link", "send_username_reminder"])
def test_no_self_serve_no_mail_and_the_reason(district, act, action):
    account = district.student_account  # a student who never set up Self Serve
    assert staff_actions.reset_unavailable_reason(account)
    with pytest.raises(ActionRefused) as refused:
        act(getattr(staff_actions, action), account=account)
    assert "Self Serve" in str(refused.value.reason)
    assert not OutboundEmail.objects.exists()
    assert not ManualRequestEvent.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="staff.").exists()


def test_disabled_and_staff_accounts_get_nothing(district, act):
    district.rosa_account.is_active = False
    district.rosa_account.save()
    with pytest.raises(ActionRefused):
        act(staff_actions.send_reset_link)
    assert staff_actions.reset_unavailable_reason(district.supervisor)
    assert not OutboundEmail.objects.exists()


@pytest.mark.parametrize("note", ["", "   \n "])
def test_every_action_needs_a_note(district, act, create_account, note):
    for action in ("send_reset_link", "send_username_reminder", "issue_code", "clear_login_lock"):
        with pytest.raises(ActionRefused):
            act(getattr(staff_actions, action), note=note)
    with pytest.raises(ActionRefused):
        create_account(district.luis, "luis.own@example.org", verified_how=note)
    assert not OutboundEmail.objects.exists()
    assert not type(district.rosa_account).objects.filter(guardian=district.luis).exists()
    assert not ManualRequestEvent.objects.exists()


def test_create_account_for_a_guardian_left_out_for_a_shared_email(
    district, manual_request, create_account
):
    user = create_account(district.luis, " Luis.Own@example.org ", manual_request=manual_request)
    assert user.username == "luis.garcia"
    assert (user.role, user.guardian, user.email, user.welcome_sent_to) == (
        "parent",
        district.luis,
        district.luis.email,  # the SIS address as last seen, for the nightly sync to compare
        "Luis.Own@example.org",  # the welcome went to the address staff verified
    )
    assert not user.has_usable_password()  # the parent chooses it through the welcome's link
    assert user.activated_at is None
    district.luis.refresh_from_db()
    assert district.luis.unprovisioned_reason == ""
    [welcome] = OutboundEmail.objects.all()  # the household address gets nothing
    assert (welcome.kind, welcome.to_address, welcome.user, welcome.token_purpose) == (
        "welcome",
        "Luis.Own@example.org",
        user,
        "activation",
    )
    assert welcome.stream == OutboundEmail.Stream.TRANSACTIONAL  # someone is waiting for it
    assert_recorded(
        manual_request, "guardian_account_created", staff=district.staff_a, subject=user
    )
    [entry] = audit("staff.guardian_account_created")
    assert entry.detail["left_out_because"] == "shared_email"
    assert entry.detail["sis_address_notified"] is False


def test_create_account_without_a_request_notifies_an_unshared_sis_address(
    district, create_account
):
    # A guardian the nightly job has not reached yet, whose own SIS address is on record.
    nadia = Guardian.objects.create(
        sourced_id="g-nadia",
        given_name="Nadia",
        family_name="Rahman",
        email="nadia.sis@example.org",
        email_normalised="nadia.sis@example.org",
        role=Guardian.Role.GUARDIAN,
    )
    nadia.students.add(district.student)
    user = create_account(nadia, "nadia.new@example.org")
    sent = {(e.kind, e.to_address) for e in OutboundEmail.objects.all()}
    assert sent == {
        ("welcome", "nadia.new@example.org"),
        ("guardian_account_created", "nadia.sis@example.org"),
    }
    notice = OutboundEmail.objects.get(kind="guardian_account_created")
    assert notice.token_purpose == "" and notice.context == {}  # a notice: no link, no data
    [entry] = audit("staff.guardian_account_created")
    assert (entry.actor, entry.subject, entry.detail["note"]) == (district.staff_a, user, NOTE)
    assert "manual_request" not in entry.detail


@pytest.mark.parametrize(
    "email",
    [
        HOUSEHOLD,  # the shared household address itself
        ROSA_SIS.upper(),  # another guardian's SIS address, in another case
        "not an address",
        "a@example.org, b@example.org",
        "",
    ],
)
def test_create_account_refuses_an_address_that_is_not_the_guardians_own(
    district, create_account, email
):
    with pytest.raises(ActionRefused):
        create_account(district.luis, email)
    assert not OutboundEmail.objects.exists()
    assert not type(district.rosa_account).objects.filter(guardian=district.luis).exists()


def test_create_account_refused_for_guardians_the_sis_must_fix(district, create_account):
    assert staff_actions.guardian_unavailable_reason(district.rosa)  # has an account
    district.marta.active = False
    district.marta.save()
    with pytest.raises(ActionRefused):
        create_account(district.marta, "marta@example.org")
    assert not OutboundEmail.objects.exists()


def test_two_guardians_with_one_name_get_two_usernames(district, create_account):
    first = create_account(district.luis, "l1@example.org")
    district.marta.given_name = "Luis"
    district.marta.save()
    second = create_account(district.marta, "l2@example.org")
    assert (first.username, second.username) == ("luis.garcia", "luis.garcia2")


def test_issue_code_returns_a_working_code_once(district, manual_request, act):
    code = act(staff_actions.issue_code, account=district.student_account)
    assert code and len(code) >= 10
    token = IssuedToken.objects.get(user=district.student_account, purpose="staff_code")
    assert code not in token.token_id_hash
    assert not OutboundEmail.objects.exists()  # printed and handed over, never emailed
    assert_recorded(
        manual_request,
        "student_code_issued",
        staff=district.staff_a,
        subject=district.student_account,
    )
    assert audit("student_code.issued")[0].actor == district.staff_a
    for entry in AuditEvent.objects.all():
        assert code not in str(entry.detail)
    from portal.student_codes import redeem_student_code

    redeem_student_code(
        username=district.student_account.username,
        code=code,
        password="orange bicycles sing at dawn",
    )


def test_issue_code_is_for_students_only(act):
    with pytest.raises(ActionRefused):
        act(staff_actions.issue_code)
    assert not IssuedToken.objects.exists()


def test_clear_login_lock(district, manual_request, act):
    account = district.rosa_account
    account.failed_login_count = 100
    account.login_locked_at = timezone.now()
    account.save()
    act(staff_actions.clear_login_lock)
    account.refresh_from_db()
    assert (account.failed_login_count, account.login_locked_at) == (0, None)
    assert_recorded(manual_request, "login_lock_cleared", staff=district.staff_a, subject=account)
    assert audit("login.unlocked")[0].detail == {"was_locked": True}
    with pytest.raises(ActionRefused):  # nothing left to clear
        act(staff_actions.clear_login_lock)


def test_assign_and_waiting(district, manual_request):
    staff_actions.assign_request(manual_request=manual_request, staff=district.staff_a)
    manual_request.refresh_from_db()
    assert (manual_request.status, manual_request.assigned_to) == ("in_progress", district.staff_a)
    staff_actions.set_waiting(manual_request=manual_request, staff=district.staff_a, note=NOTE)
    manual_request.refresh_from_db()
    assert manual_request.status == "waiting"
    assert [e.action for e in manual_request.events.all()] == [
        "request_assigned",
        "request_waiting",
    ]
    assert {e.action for e in AuditEvent.objects.all()} == {
        "staff.request_assigned",
        "staff.request_waiting",
    }
    assert not OutboundEmail.objects.exists()


@pytest.mark.parametrize("outcome", ["resolved", "rejected"])
def test_close_sends_only_the_fixed_outcome_to_the_typed_address(
    manual_request, act, close, outcome
):
    close(manual_request, outcome)
    manual_request.refresh_from_db()
    assert manual_request.status == outcome and manual_request.closed_at is not None
    [email] = OutboundEmail.objects.all()
    assert (email.kind, email.to_address, email.user, email.token_purpose) == (
        f"manual_request_{outcome}",
        ATTACKER,
        None,  # no account's data can reach the template
        "",
    )
    assert email.context == {"reference": manual_request.reference}
    event = manual_request.events.get()
    assert (event.action, event.note) == (f"request_{outcome}", NOTE)
    # Closed: no more actions, and no second outcome email.
    with pytest.raises(ActionRefused):
        act(staff_actions.send_reset_link)
    with pytest.raises(ActionRefused):
        close(manual_request, outcome)
    assert OutboundEmail.objects.count() == 1


def test_a_typed_address_that_is_not_one_plain_address_gets_nothing(close):
    manual_request = make_request(answer_address="a@example.org,b@example.org")
    close(manual_request, "rejected")
    assert not OutboundEmail.objects.exists()
    assert audit("staff.request_rejected")[0].detail["outcome_emailed"] is False
