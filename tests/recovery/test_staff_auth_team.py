"""Supervisor team pages: the staff list, re-issuing a lost authenticator, and a staff member's
password reset (emailed by the real worker through real SMTP to their own address, usable, and
leaving the authenticator as it was: checklist G5)."""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import Organisation
from recovery import tokens
from recovery.flows.password_reset import reset_user
from recovery.links import link_max_age_seconds
from recovery.models import AuditEvent, IssuedToken, OutboundEmail
from recovery.staff import otp
from tests.portal.login_helpers import clean_login_counters, make_parent  # noqa: F401
from tests.recovery.staff_helpers import (
    STAFF_PASSWORD,
    current_code,
    make_staff,
    post_code,
    post_password,
    sign_in_staff,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("clean_login_counters")

NEW_PASSWORD = "umbrella orchard quietly 4096"
_URI = re.compile(r"otpauth://totp/[^\s<\"]+")


def _reissue_url(member):
    return reverse("staff:team_reissue_authenticator", args=[member.pk])


def _reset_url(member):
    return reverse("staff:team_password_reset", args=[member.pk])


@pytest.mark.django_db
def test_team_lists_staff_with_their_schools_and_not_families(client):
    school = Organisation.objects.create(
        sourced_id="sch-a", name="Alder <Elementary>", type="school"
    )
    supervisor = make_staff("sue.super", supervisor=True)
    make_staff("sam.staff", schools=[school])
    make_parent("parent.one")
    sign_in_staff(client, supervisor)
    page = client.get(reverse("staff:team"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "sam.staff" in body and "sue.super" in body
    assert "Alder &lt;Elementary&gt;" in body  # escaped
    assert "parent.one" not in body
    assert "no-store" in page["Cache-Control"]


@pytest.mark.django_db
def test_plain_staff_cannot_use_the_team_actions(client):
    member = make_staff("sam.staff")
    other = make_staff("kim.staff")
    sign_in_staff(client, member)
    assert client.post(_reissue_url(other)).status_code == 403
    assert client.post(_reset_url(other)).status_code == 403
    assert TOTPDevice.objects.get(user=other).confirmed
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_reissue_shows_the_new_authenticator_once_and_stops_the_old(client):
    supervisor = make_staff("sue.super", supervisor=True)
    member = make_staff("sam.staff")
    old_device = TOTPDevice.objects.get(user=member)
    old_code = current_code(member)
    old_backup = member.backup_codes[0]

    # The staff member is signed in somewhere with the old authenticator.
    their_browser = Client()
    sign_in_staff(their_browser, member)
    assert DEVICE_ID_SESSION_KEY in their_browser.session

    sign_in_staff(client, supervisor)
    page = client.post(_reissue_url(member))
    body = page.content.decode()
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    [uri] = set(_URI.findall(body))
    assert 'src="data:image/svg+xml' in body  # the QR code
    new_device = TOTPDevice.objects.get(user=member)
    assert new_device.pk != old_device.pk and not new_device.confirmed
    assert uri.replace("&amp;", "&") == new_device.config_url
    shown_backup = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", body)
    assert len(shown_backup) == otp.BACKUP_CODE_COUNT
    stored = set(StaticToken.objects.filter(device__user=member).values_list("token", flat=True))
    assert not stored & {code.replace("-", "") for code in shown_backup}
    assert AuditEvent.objects.filter(
        action="staff.authenticator_reissued", actor=supervisor, subject=member
    ).exists()

    # Not shown again anywhere: the team page has no URI, a GET of the action is refused.
    assert "otpauth://" not in client.get(reverse("staff:team")).content.decode()
    assert client.get(_reissue_url(member)).status_code == 405

    # The old authenticator's session lost its second factor; old codes no longer work.
    assert their_browser.get(reverse("staff:team"))["Location"].startswith(
        reverse("staff:login_code")
    )
    fresh = Client()
    post_password(fresh, member.username)
    assert post_code(fresh, old_backup).status_code == 200
    new_key = TOTPDevice.objects.get(user=member).bin_key
    if f"{totp(new_key):06d}" != old_code:
        assert post_code(fresh, old_code).status_code == 200
    assert DEVICE_ID_SESSION_KEY not in fresh.session

    # The handed-over authenticator works, and its first code confirms it.
    TOTPDevice.objects.filter(user=member).update(throttling_failure_count=0)
    assert post_code(fresh, f"{totp(new_key):06d}").status_code == 302
    assert TOTPDevice.objects.get(user=member).confirmed


@pytest.mark.django_db
def test_a_supervisor_cannot_reissue_their_own(client):
    supervisor = make_staff("sue.super", supervisor=True)
    device = TOTPDevice.objects.get(user=supervisor)
    sign_in_staff(client, supervisor)
    response = client.post(_reissue_url(supervisor))
    assert response.status_code == 303
    assert TOTPDevice.objects.get(user=supervisor).pk == device.pk


@pytest.mark.django_db
def test_team_actions_on_a_family_account_are_404(client):
    supervisor = make_staff("sue.super", supervisor=True)
    parent = make_parent("parent.one", email="rosa@example.org")
    sign_in_staff(client, supervisor)
    assert client.post(_reissue_url(parent)).status_code == 404
    assert client.post(_reset_url(parent)).status_code == 404
    assert not TOTPDevice.objects.filter(user=parent).exists()
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_reset_refused_without_an_address_on_record(client):
    supervisor = make_staff("sue.super", supervisor=True)
    member = make_staff("sam.staff", email="")
    sign_in_staff(client, supervisor)
    response = client.post(_reset_url(member), follow=True)
    assert "has no email address on record" in response.content.decode()
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_a_staff_reset_link_no_supervisor_sent_is_not_honoured(client):
    make_staff("sue.super", supervisor=True)  # a supervisor exists, but sent nothing
    member = make_staff("sam.staff")
    token = _mint_reset(member)
    assert reset_user(token=token) is None  # no supervisor sent it: not honoured


def _mint_reset(user):
    return tokens.mint(user=user, purpose=IssuedToken.Purpose.RESET)


@pytest.mark.slow
def test_staff_password_reset_end_to_end(start_worker, smtp_server, settings):
    settings.RATELIMIT_LANDING_PER_IP = "1000/m"
    supervisor = make_staff("sue.super", supervisor=True)
    member = make_staff("sam.staff", email="Sam.Staff@Staff.Example.org")
    device_before = TOTPDevice.objects.get(user=member)
    start_worker()

    console = Client()
    sign_in_staff(console, supervisor)
    response = console.post(_reset_url(member))
    assert response.status_code == 303
    assert AuditEvent.objects.filter(
        action="staff.password_reset_sent", actor=supervisor, subject=member
    ).exists()

    smtp_server.wait_for_messages(1)
    [message] = smtp_server.messages
    assert message.rcpt_tos == [member.email]  # their own address, as stored
    [link] = re.findall(r"https?://\S+", message.text)
    assert "sam.staff" in message.text

    browser = Client()
    landing = browser.get(urlsplit(link).path)
    assert landing.status_code == 302
    form = browser.get(landing["Location"])
    assert form.status_code == 200 and "sam.staff" in form.content.decode()
    done = browser.post(
        landing["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code in (302, 303), done.content.decode()[:400]
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert not member.check_password(STAFF_PASSWORD)

    # G5: the authenticator is untouched; the new password alone does not open the console.
    device_after = TOTPDevice.objects.get(user=member)
    assert (device_after.pk, device_after.key, device_after.confirmed) == (
        device_before.pk,
        device_before.key,
        True,
    )
    assert otp.remaining_backup_codes(member) == otp.BACKUP_CODE_COUNT
    fresh = Client()
    post_password(fresh, member.username, NEW_PASSWORD)
    assert fresh.get(reverse("staff:team"))["Location"].startswith(reverse("staff:login_code"))
    assert post_code(fresh, current_code(member)).status_code == 302
    assert DEVICE_ID_SESSION_KEY in fresh.session

    # The link works once.
    again = Client()
    landing = again.get(urlsplit(link).path)
    page = again.get(landing["Location"])
    assert "sam.staff" not in page.content.decode()
    wait_until(
        lambda: OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count() >= 1,
        message="the reset email marked sent",
    )


@pytest.mark.django_db
def test_a_staff_reset_link_is_honoured_only_while_the_supervisors_reset_is_recent(client):
    supervisor = make_staff("sue.super", supervisor=True)
    member = make_staff("sam.staff")
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        sign_in_staff(client, supervisor)
        client.post(_reset_url(member))
        token = _mint_reset(member)  # as the worker mints it when it sends
        assert reset_user(token=token) == member
        traveller.shift(dt.timedelta(seconds=link_max_age_seconds(purpose="reset") + 1))
        assert reset_user(token=_mint_reset(member)) is None
