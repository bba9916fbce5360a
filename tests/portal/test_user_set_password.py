"""After any password change (SPEC §6.5): portal.services.user_set_password and notice_address."""

import re
from datetime import date

import pytest
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from portal.models import Guardian, Student, User
from portal.selectors import notice_address
from portal.services import describe_browser, user_set_password
from recovery import tokens
from recovery.models import AuditEvent, OutboundEmail
from tests.support.waiting import wait_until

OLD = "old kettle sings at dawn"
NEW = "purple orbit juniper lantern"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"


def make_parent(*, username="mgarcia", recovery_email="maria@example.org", verified=True):
    guardian = Guardian.objects.create(
        sourced_id=f"g-{username}",
        given_name="María",
        family_name="García",
        email=f"{username}.sis@example.org",
        role=Guardian.Role.PARENT,
    )
    user = User.objects.create_user(
        username=username,
        password=OLD,
        role=User.Role.PARENT,
        guardian=guardian,
        recovery_email=recovery_email,
        recovery_email_verified_at=timezone.now() if verified and recovery_email else None,
        activated_at=timezone.now(),
    )
    return user


def signed_in_user(client):
    """Who the client's session cookie signs in as (Django's own session-hash check)."""
    request = HttpRequest()
    request.session = client.session
    return auth.get_user(request)


def change_through_own_request(client, *, user_id, password):
    """Run user_set_password inside `client`'s own signed-in request, as the account page does."""

    def view(request):
        user_set_password(
            user=User.objects.get(pk=user_id), password=password, request=request, reason="changed"
        )
        return HttpResponse("changed")

    handler = SessionMiddleware(AuthenticationMiddleware(view))
    request = RequestFactory().post("/portal/account/", HTTP_USER_AGENT=FIREFOX)
    request.COOKIES[settings.SESSION_COOKIE_NAME] = client.cookies[
        settings.SESSION_COOKIE_NAME
    ].value
    response = handler(request)
    client.cookies.update(response.cookies)  # the rotated session key, as a browser would keep
    return response


@pytest.mark.django_db
def test_other_sessions_end_and_the_changing_one_is_kept():
    user = make_parent()
    here, elsewhere = Client(), Client()
    here.force_login(user)
    elsewhere.force_login(user)
    assert signed_in_user(here) == user
    assert signed_in_user(elsewhere) == user

    change_through_own_request(here, user_id=user.pk, password=NEW)

    assert signed_in_user(here) == user
    assert not signed_in_user(elsewhere).is_authenticated
    assert elsewhere.get("/portal/").status_code == 302  # sent to sign in


@pytest.mark.django_db
def test_without_a_request_every_session_ends():
    user = make_parent()
    client = Client()
    client.force_login(user)
    user_set_password(user=user, password=NEW, reason="reset")
    assert not signed_in_user(client).is_authenticated


@pytest.mark.django_db
def test_the_password_is_hashed_with_argon2_in_its_normal_form():
    user = make_parent()
    decomposed = "man\u0303ana tacos en la playa"
    user_set_password(user=user, password=decomposed)
    user.refresh_from_db()
    assert user.password.startswith("argon2$")
    assert user.check_password("mañana tacos en la playa")  # typed composed
    assert not user.check_password(OLD)


@pytest.mark.django_db
def test_every_outstanding_link_is_revoked():
    user = make_parent()
    minted = {purpose: tokens.mint(user=user, purpose=purpose) for purpose in tokens.Purpose.values}
    user_set_password(user=user, password=NEW)
    for purpose, token in minted.items():
        with pytest.raises(tokens.TokenRevoked):
            tokens.check(token, purpose=purpose)


@pytest.mark.django_db
def test_flags_and_the_login_throttle_are_cleared():
    user = make_parent()
    User.objects.filter(pk=user.pk).update(
        failed_login_count=100,
        login_locked_at=timezone.now(),
        must_change_password=True,
        default_password_active=True,
    )
    user.refresh_from_db()
    before = timezone.now()
    user_set_password(user=user, password=NEW, reason="reset")
    user.refresh_from_db()
    assert user.failed_login_count == 0
    assert user.login_locked_at is None
    assert not user.must_change_password
    assert not user.default_password_active
    assert user.password_changed_at >= before


@pytest.mark.django_db
def test_one_notice_is_queued_with_when_and_which_browser_and_no_secret():
    user = make_parent()
    request = RequestFactory().post("/help/reset/", HTTP_USER_AGENT=FIREFOX)
    request.user = auth.models.AnonymousUser()
    user_set_password(user=user, password=NEW, request=request, reason="reset")

    [notice] = OutboundEmail.objects.all()
    assert notice.kind == "password_changed"
    assert notice.to_address == "maria@example.org"
    assert notice.token_purpose == ""  # a notice carries no link
    assert notice.context["browser"] == "Firefox, Windows"
    assert "changed_at" in notice.context
    assert NEW not in str(notice.context)
    [event] = AuditEvent.objects.filter(action="password.reset")
    assert event.subject == user
    assert NEW not in str(event.detail)


@pytest.mark.django_db
def test_no_notice_without_an_address():
    user = make_parent(recovery_email="")
    Guardian.objects.filter(pk=user.guardian_id).update(email_shared=True)
    user.refresh_from_db()
    user_set_password(user=user, password=NEW)
    assert not OutboundEmail.objects.exists()
    assert AuditEvent.objects.get(action="password.changed").detail == {"notice_sent": False}


def test_unknown_reasons_are_refused():
    with pytest.raises(ValueError):
        user_set_password(user=User(), password=NEW, reason="because")


@pytest.mark.parametrize(
    ("agent", "described"),
    [
        (FIREFOX, "Firefox, Windows"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
            "Safari, iPhone",
        ),
        ("Mozilla/5.0 (Linux; Android 14) Chrome/130.0 Mobile Safari/537.36", "Chrome, Android"),
        ("curl/8.0 visit https://evil.example/", ""),  # nothing typed reaches the email
        ("", ""),
    ],
)
def test_the_browser_is_described_in_fixed_words(agent, described):
    assert describe_browser(agent) == described


# --- notice_address ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_verified_recovery_email_comes_first():
    assert notice_address(make_parent()) == "maria@example.org"


@pytest.mark.django_db
def test_else_a_parents_own_sis_email():
    user = make_parent(recovery_email="unconfirmed@example.org", verified=False)
    assert notice_address(user) == "mgarcia.sis@example.org"


@pytest.mark.django_db
def test_never_a_shared_household_address():
    user = make_parent(recovery_email="")
    Guardian.objects.filter(pk=user.guardian_id).update(email_shared=True)
    user.refresh_from_db()
    assert notice_address(user) == ""


@pytest.mark.django_db
def test_a_student_without_self_serve_gets_no_notice():
    record = Student.objects.create(
        sourced_id="s-1",
        given_name="Ana",
        family_name="García",
        email="ana@students.example.org",
        student_number="40517",
        birth_date=date(2012, 4, 15),
    )
    user = User.objects.create_user(username="40517", role=User.Role.STUDENT, student=record)
    assert notice_address(user) == ""


# --- delivered by the real worker and SMTP server ------------------------------------------------


@pytest.mark.slow
def test_the_notice_is_delivered_once_without_password_or_link(worker_process, smtp_server):
    user = make_parent()
    request = RequestFactory().post("/portal/account/", HTTP_USER_AGENT=FIREFOX)
    request.user = auth.models.AnonymousUser()
    with transaction.atomic():
        user_set_password(user=user, password=NEW, request=request)
    wait_until(
        lambda: OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).exists(),
        message="the password-changed notice to be sent",
    )
    [received] = smtp_server.wait_for_messages(1)
    assert received.rcpt_tos == ["maria@example.org"]
    assert "password was changed" in received.subject
    assert "Firefox, Windows" in received.text
    assert settings.SUPPORT_CONTACT in received.text
    for part in (received.text, received.html):
        assert NEW not in part
        assert not re.search(r"https?://", part)  # a notice performs nothing
        assert "href" not in part
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_the_login_throttles_own_clearing_runs_once_committed(django_capture_on_commit_callbacks):
    user = make_parent(recovery_email="")
    Guardian.objects.filter(pk=user.guardian_id).update(email_shared=True)  # no notice: no task
    User.objects.filter(pk=user.pk).update(
        failed_login_count=7, last_failed_login_at=timezone.now()
    )
    user.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        user_set_password(user=user, password=NEW, reason="reset")
    user.refresh_from_db()
    # Only portal.login_throttle.clear_account forgets the last failure's time.
    assert user.last_failed_login_at is None
    assert user.failed_login_count == 0
