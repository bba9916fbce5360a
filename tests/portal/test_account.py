"""The account page (/portal/account/): change password (G7, I4), Self Serve set-up (M1, M2)
and language. Delivery of the emails through a real worker is in
tests/recovery/test_self_serve_delivery.py."""

import re

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client
from django.utils import timezone

from portal.account_forms import REAUTH_FAILURE_ACTION, REAUTH_FAILURE_RATE
from recovery import ratelimit, tokens
from recovery.models import IssuedToken, OutboundEmail
from tests.portal.family_helpers import NEW_PASSWORD, PASSWORD, make_family

URL = "/portal/account/"


@pytest.fixture
def family(db):
    family = make_family("fam-a", "Nguyen", email="rosa.nguyen@example.org")
    user = family.user
    user.recovery_email = "Rosa.Old@Example.org"
    user.recovery_email_normalised = "rosa.old@example.org"
    user.recovery_email_verified_at = timezone.now()
    user.save()
    ratelimit.reset(action=REAUTH_FAILURE_ACTION, key=str(user.pk), rate=REAUTH_FAILURE_RATE)
    yield family
    ratelimit.reset(action=REAUTH_FAILURE_ACTION, key=str(user.pk), rate=REAUTH_FAILURE_RATE)


@pytest.fixture(autouse=True)
def generous_request_limits(settings):  # the limits have their own test below
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1000/h"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"


@pytest.fixture
def signed_in(client, family):
    client.force_login(family.user)
    return client


def reload(user):
    return get_user_model().objects.get(pk=user.pk)


def change_password(client, old=PASSWORD, new=NEW_PASSWORD, confirm=None):
    data = {"new_password1": new, "new_password2": new if confirm is None else confirm}
    if old is not None:
        data["old_password"] = old
    return client.post(URL, data)


# --- the page


def test_the_page_shows_the_rules_before_the_fields_with_the_right_autocomplete(signed_in):
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    rules = html.index('id="password-rules"')
    for name, autocomplete in [
        ("old_password", "current-password"),
        ("new_password1", "new-password"),
        ("new_password2", "new-password"),
        ("current_password", "current-password"),
        ("recovery_email", "email"),
    ]:
        tag = re.search(rf'<input[^>]+name="{name}"[^>]*>', html)
        assert tag, name
        assert f'autocomplete="{autocomplete}"' in tag.group(0), name
    new_password = re.search(r'<input[^>]+name="new_password1"[^>]*>', html)
    assert rules < new_password.start()
    assert 'aria-describedby="password-rules"' in new_password.group(0)
    assert "at least 12 characters" in html
    assert "In use now: Rosa.Old@Example.org" in html
    assert re.search(r'<select[^>]+name="language"', html)


# --- change password (G7, I4)


def test_a_wrong_old_password_is_refused(signed_in, family):
    response = change_password(signed_in, old="not my password at all")
    assert response.status_code == 400
    assert "old password was entered incorrectly" in response.content.decode()
    assert reload(family.user).check_password(PASSWORD)


def test_a_missing_old_password_is_refused(signed_in, family):
    response = change_password(signed_in, old=None, new=NEW_PASSWORD)
    # Without old_password the POST is not even the password form: nothing changes.
    assert response.status_code == 400
    response = signed_in.post(
        URL,
        {"form": "password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert reload(family.user).check_password(PASSWORD)


def test_the_password_policy_applies(signed_in, family):
    for bad, confirm in [("short", None), ("password1234", None), (NEW_PASSWORD, "different")]:
        assert change_password(signed_in, new=bad, confirm=confirm).status_code == 400
    assert reload(family.user).check_password(PASSWORD)


def test_a_post_without_a_csrf_token_is_refused(family):
    client = Client(enforce_csrf_checks=True)
    client.force_login(family.user)
    assert change_password(client).status_code == 403
    assert (
        client.post(
            URL, {"recovery_email": "new@example.org", "current_password": PASSWORD}
        ).status_code
        == 403
    )
    user = reload(family.user)
    assert user.check_password(PASSWORD) and not user.pending_recovery_email


def test_changing_the_password_keeps_this_session_and_ends_the_others(signed_in, family):
    other = Client()
    other.force_login(family.user)
    assert other.get("/portal/").status_code == 200
    reset_link = tokens.mint(user=family.user, purpose="reset")

    response = change_password(signed_in)
    assert response.status_code == 302 and response["Location"] == URL

    user = reload(family.user)
    assert user.check_password(NEW_PASSWORD) and user.password_changed_at is not None
    assert signed_in.get("/portal/").status_code == 200
    assert signed_in.session[SESSION_KEY] == str(user.pk)
    assert other.get("/portal/").status_code == 302  # the other browser is signed out
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(reset_link, purpose="reset")
    notice = OutboundEmail.objects.get(kind="password_changed")
    assert notice.to_address == "Rosa.Old@Example.org"
    assert NEW_PASSWORD not in str(notice.context) and PASSWORD not in str(notice.context)


def test_wrong_current_passwords_are_throttled_per_account(signed_in, family):
    for _ in range(10):
        assert change_password(signed_in, old="wrong guess number x").status_code == 400
    response = change_password(signed_in)  # the right password, but too late
    assert response.status_code == 400
    assert "Too many wrong passwords" in response.content.decode()
    assert reload(family.user).check_password(PASSWORD)


# --- Self Serve set-up (M1, M2)


def recovery_email_post(client, email="rosa.new@example.org", password=PASSWORD):
    data = {"recovery_email": email}
    if password is not None:
        data["current_password"] = password
    return client.post(URL, data)


@pytest.mark.parametrize("password", [None, "", "not my password at all"])
def test_the_recovery_email_needs_the_current_password(signed_in, family, password):
    response = recovery_email_post(signed_in, password=password)
    assert response.status_code == 400
    user = reload(family.user)
    assert user.pending_recovery_email == ""
    assert user.recovery_email == "Rosa.Old@Example.org"
    assert not OutboundEmail.objects.exists()


def test_a_new_recovery_email_is_pending_until_confirmed(signed_in, family):
    response = recovery_email_post(signed_in, email="  Rosa.New@Example.org ")
    assert response.status_code == 302
    user = reload(family.user)
    assert user.pending_recovery_email == "Rosa.New@Example.org"
    # The old address stays in force until the new one is confirmed from its mailbox (M2).
    assert user.recovery_email == "Rosa.Old@Example.org" and user.has_self_serve
    confirm = OutboundEmail.objects.get(kind="recovery_email_confirm")
    assert confirm.to_address == "Rosa.New@Example.org"
    assert confirm.token_purpose == "email_confirm" and confirm.stream == "email"
    notice = OutboundEmail.objects.get(kind="recovery_email_change_requested")
    assert notice.to_address == "Rosa.Old@Example.org" and notice.token_purpose == ""
    assert "Rosa.New@Example.org" not in str(notice.context)  # masked: R•••@Example.org
    page = signed_in.get(URL).content.decode()
    assert "Waiting for confirmation: Rosa.New@Example.org" in page


def test_the_current_recovery_email_again_is_refused(signed_in, family):
    assert recovery_email_post(signed_in, email=" ROSA.old@example.org").status_code == 400
    assert not OutboundEmail.objects.exists()


@pytest.mark.parametrize("email", ["not an email", "a@b.org\nBcc: c@d.org", "x" * 300 + "@e.org"])
def test_a_malformed_recovery_email_is_refused(signed_in, family, email):
    assert recovery_email_post(signed_in, email=email).status_code == 400
    assert reload(family.user).pending_recovery_email == ""


def test_a_second_request_revokes_the_first_link_at_once(signed_in, family):
    assert recovery_email_post(signed_in, email="first@example.org").status_code == 302
    first_link = tokens.mint(user=family.user, purpose="email_confirm")  # as the worker would
    assert recovery_email_post(signed_in, email="second@example.org").status_code == 302
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(first_link, purpose="email_confirm")
    # The first confirmation email, if still unsent, is withdrawn: it would mint a live link.
    first, second = OutboundEmail.objects.filter(kind="recovery_email_confirm").order_by("pk")
    assert (first.status, first.last_error) == ("failed", "superseded")
    assert second.status == "queued" and second.to_address == "second@example.org"
    assert reload(family.user).pending_recovery_email == "second@example.org"


def test_confirmation_emails_are_limited_per_address_and_per_account(signed_in, family, settings):
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "5/h"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "3/h"
    account_key = ("self_serve.recovery_email.account", str(family.user.pk), "5/h")
    addresses = [f"target{n}@example.org" for n in range(3)]
    for action, key, rate in [account_key] + [
        ("self_serve.recovery_email.address", address, "3/h") for address in addresses
    ]:
        ratelimit.reset(action=action, key=key, rate=rate)

    for _ in range(3):
        assert recovery_email_post(signed_in, email=addresses[0]).status_code == 302
    response = recovery_email_post(signed_in, email=addresses[0].upper())  # the same inbox
    assert response.status_code == 429
    assert "Please try again in" in response.content.decode()
    assert recovery_email_post(signed_in, email=addresses[1]).status_code == 302
    assert recovery_email_post(signed_in, email=addresses[2]).status_code == 429  # 6th: account
    assert OutboundEmail.objects.filter(kind="recovery_email_confirm").count() == 4


def test_staff_accounts_get_no_recovery_email(client, db):
    staff = get_user_model().objects.create_user(
        username="helpdesk", password=PASSWORD, role="staff"
    )
    client.force_login(staff)
    assert "recovery_email" not in client.get(URL).content.decode()
    assert recovery_email_post(client).status_code == 403
    assert not IssuedToken.objects.exists() and not OutboundEmail.objects.exists()


# --- language


def test_the_language_choice_is_saved_on_the_account(signed_in, family):
    response = signed_in.post(URL, {"language": "vi"})
    assert response.status_code == 302
    assert reload(family.user).language == "vi"
    assert response.cookies["django_language"].value == "vi"
    assert signed_in.post(URL, {"language": "fr"}).status_code == 400
    assert reload(family.user).language == "vi"
