"""End to end with the real worker and SMTP server: a lock ends only when the password is set.

An attacker guesses 100 times at a provisioned parent's username before the parent has even
activated; the account locks. Emailing a link and opening it leave the lock in place (the counter
is not reset merely by asking for a link, J3); setting the password through the link opens it.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from portal.models import Guardian, User
from portal.provisioning import queue_welcome_email
from tests.portal.login_helpers import (
    clean_login_counters,  # noqa: F401 (fixture)
    login_error,
    sign_in,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("clean_login_counters")

SIS_EMAIL = "maria.garcia@example.net"
PASSWORD = "seven purple kettles sing"


def provisioned_parent():
    guardian = Guardian.objects.create(
        sourced_id="g-locked",
        given_name="María",
        family_name="García",
        email=SIS_EMAIL,
        email_normalised=SIS_EMAIL,
        role=Guardian.Role.PARENT,
    )
    return User.objects.create_user(
        username="mgarcia",
        role=User.Role.PARENT,
        guardian=guardian,
        email=SIS_EMAIL,
        provisioned_at=timezone.now(),
        welcome_sent_to=SIS_EMAIL,
    )


def test_a_locked_account_opens_when_its_password_is_set(worker_process, smtp_server, settings):
    settings.LOGIN_FREE_FAILURES = 100  # no delays on the way: straight to the lock
    parent = provisioned_parent()
    guesser = Client()
    for attempt in range(100):
        sign_in(guesser, "mgarcia", f"guess {attempt}", ip=f"198.51.100.{attempt + 1}")
    parent.refresh_from_db()
    assert parent.login_locked_at is not None

    with transaction.atomic():
        queue_welcome_email(user=parent)
    [welcome] = smtp_server.wait_for_messages(1)
    [link] = re.findall(r"https?://\S+", welcome.text)
    person = Client()
    page = person.get(urlsplit(link).path, follow=True)
    assert page.status_code == 200
    parent.refresh_from_db()
    assert parent.login_locked_at is not None  # a link asked for and opened changes nothing

    person.post(page.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    parent.refresh_from_db()
    assert parent.has_usable_password()
    assert (parent.failed_login_count, parent.login_locked_at) == (0, None)
    response = sign_in(person, "mgarcia", PASSWORD)
    assert response.status_code == 302, login_error(response)
    assert signed_in(person)
    # The password_changed notice went out too (after the welcome), by the real worker.
    notice = smtp_server.wait_for_messages(2)[1]
    assert notice.rcpt_tos == [SIS_EMAIL] and PASSWORD not in notice.text
