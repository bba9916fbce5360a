"""Forgot username in process: the page (one sent page for every address, never a 500, rate
limits that read the same for known and unknown addresses) and the worker's resolution (who
gets what, at which address, with what content). The same journey through a real worker and
SMTP server is in test_username_reminder_delivery.py."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.db import transaction

from recovery.flows.username_reminder import plain_single_address
from recovery.models import AuditEvent, HelpRequest, OutboundEmail
from recovery.rendering import render_outbound_email
from recovery.resolution import resolve_help_requests
from tests.recovery.username_reminder_helpers import (
    DISABLED,
    FORM,
    NEW_PARENT,
    NO_SELF_SERVE,
    SENT,
    SHARED,
    STAFF,
    STUDENT_BIRTH,
    STUDENT_NAMES,
    STUDENT_NUMBER,
    blank_csrf,
    clear_rate_limits,
    make_accounts,
    signature,
)

UNKNOWN = "nobody.here@example.org"
FULL_WIDTH_EXAMPLE = "".join(chr(ord(c) + 0xFEE0) for c in "example")
# Look-alikes of SHARED: the dotless i (U+0131), the Kelvin sign K (U+212A) in a neighbour's
# address, full-width letters, upper case, and pollution of every kind.
LOOK_ALIKES = [
    "FAMILY.GARCIA@EXAMPLE.ORG",
    "fam\u0131ly.garcia@example.org",
    f"family.garcia@{FULL_WIDTH_EXAMPLE}.org",
    "\uff46\uff41\uff4d\uff49\uff4c\uff59.garcia@example.org",
    "family.garcia@example.org&email=attacker@evil.example",
    "family.garcia@example.org,attacker@evil.example",
    "family.garcia@example.org;attacker@evil.example",
    "family.garcia@example.org attacker@evil.example",
    '"family.garcia@example.org" <attacker@evil.example>',
]


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    clear_rate_limits()
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1000/h"
    settings.RATELIMIT_RESET_PER_IP = "1000/m"
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "1000/h"
    settings.RECOVERY_EMAIL_UNKNOWN_ACCOUNTS = True
    yield
    clear_rate_limits()


@pytest.fixture
def accounts(db):
    return make_accounts()


def ask(client, email, **extra):
    return client.post(FORM, {"email": email}, **extra)


def resolve_all():
    resolve_help_requests()


def resolve(email):
    """Resolve one forgot-username request for `email`, as the worker would; return the new
    outbox rows."""
    before = set(OutboundEmail.objects.values_list("pk", flat=True))
    help_request = HelpRequest.objects.create(
        kind=HelpRequest.Kind.FORGOT_USERNAME, identifier=email, identifier_hash="x", language="en"
    )
    resolve_help_requests()
    help_request.refresh_from_db()
    assert help_request.resolved_at is not None and help_request.identifier == ""
    return list(OutboundEmail.objects.exclude(pk__in=before).order_by("pk"))


def rendered(email):
    return render_outbound_email(email)


def assert_minimal(message):
    """SPEC §6.6, checklist N3/P2: no link, no birth date, no student name beside a number,
    no student name in the subject."""
    for part in (message.text, message.html):
        assert "http" not in part and "href" not in part
        for date_form in ("%m%d%y", "%m/%d/%Y", "%Y-%m-%d", "%d/%m/%Y"):
            assert STUDENT_BIRTH.strftime(date_form) not in part
        for name in STUDENT_NAMES:
            assert name not in part
    for name in STUDENT_NAMES:
        assert name not in message.subject


# --- The page ---------------------------------------------------------------------------------


def test_the_form_asks_for_an_email_and_redirects_with_see_other(client, accounts):
    page = client.get(FORM)
    assert page.status_code == 200
    assert 'name="email"' in page.content.decode() and 'autocomplete="email"' in page.text
    assert "no-store" in page["Cache-Control"]
    response = ask(client, SHARED)
    assert response.status_code == 303 and response["Location"] == SENT
    assert "no-store" in response["Cache-Control"]
    [help_request] = HelpRequest.objects.all()
    assert help_request.kind == "forgot_username" and help_request.identifier == SHARED
    sent = client.get(SENT)
    assert sent.status_code == 200 and "no-store" in sent["Cache-Control"]
    assert "request form" in sent.text and "/help/request/" in sent.text
    # The request path looked nothing up and queued no email: the worker does that, and logs it.
    assert not OutboundEmail.objects.exists()
    assert not AuditEvent.objects.exists()
    resolve_all()
    assert AuditEvent.objects.filter(action="help_request.submitted").count() == 1


def test_one_page_for_known_unknown_differently_cased_and_look_alike_addresses(accounts):
    """Checklist A1/N1: status, Location, header and cookie names, and the sent page (CSRF
    token aside) are the same whatever the address and whatever account it belongs to."""
    addresses = [
        SHARED,
        UNKNOWN,
        SHARED.upper(),
        NEW_PARENT,
        DISABLED,
        STAFF,
        NO_SELF_SERVE,
        "  Family.Garcia@Example.ORG ",
        *LOOK_ALIKES[1:5],
    ]
    signatures = {signature(address) for address in addresses}
    assert len(signatures) == 1
    [(status, location, *_)] = signatures
    assert (status, location) == (303, SENT)
    # Neither any username nor what was typed ever reaches a page.
    body = signature(SHARED)[6]
    for secret in ("rosa.garcia", STUDENT_NUMBER, "luis.ortega", SHARED, "family.garcia"):
        assert secret not in body


def test_the_sent_page_ignores_any_query_string(client):
    plain = blank_csrf(client.get(SENT).content.decode())
    for query in ("?email=family.garcia@example.org", "?username=rosa.garcia&x=%00", "?a=b"):
        response = client.get(SENT + query)
        assert response.status_code == 200
        assert blank_csrf(response.content.decode()) == plain


@pytest.mark.parametrize(
    "value",
    [
        "a" * 20_000 + "@example.org",
        "x" * 20_000,
        "family.garcia\x00@example.org",
        "\x00",
        "😀@😀.example",
        "😀",
        "family.garcia@example.org\r\nBcc: attacker@evil.example",
        "",
        " ",
    ],
)
def test_bad_input_gets_the_normal_page_or_a_4xx_never_a_500(client, db, value):
    response = ask(client, value)
    assert response.status_code in (200, 303) or 400 <= response.status_code < 500
    if response.status_code == 200:  # the form again, with its error
        assert 'name="email"' in response.text and 'class="errorlist' in response.text
    resolve_all()
    assert not OutboundEmail.objects.filter(to_address__icontains="attacker").exists()


def test_a_polluted_query_uses_neither_address(client, db):
    """email=victim&email=attacker: Django would read the last; the form refuses both."""
    response = client.post(
        FORM,
        "email=family.garcia%40example.org&email=attacker%40evil.example",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200 and "Type one email address." in response.text
    assert not HelpRequest.objects.exists()


def test_a_huge_body_or_query_string_is_a_4xx_or_the_page(client, db):
    assert client.get(FORM + "?email=" + "a" * 20_000).status_code == 200
    response = client.post(FORM, {"email": "b@example.org", "junk": "x" * 20_000})
    assert response.status_code == 303
    response = client.post(FORM, {f"f{i}": "x" for i in range(2000)})
    assert response.status_code < 500


def test_the_form_needs_a_csrf_token(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(FORM, {"email": SHARED})
    assert response.status_code == 403
    assert not HelpRequest.objects.exists()


# --- Rate limits ------------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)  # early in a minute and an hour window


def _throttle_curve(address, *, remote_addr):
    from django.test import Client

    client = Client(REMOTE_ADDR=remote_addr)
    curve = []
    for _ in range(5):
        response = ask(client, address)
        curve.append((response.status_code, response.get("Retry-After"), blank_csrf(response.text)))
    return curve


def test_the_per_address_limit_reads_the_same_for_known_and_unknown(accounts, settings):
    """Checklist A4: the request at which the reply changes, and the changed reply, are the
    same for an address with accounts and one without."""
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "3/h"
    with time_machine.travel(NOW, tick=False):
        known = _throttle_curve(SHARED, remote_addr="192.0.2.1")
        unknown = _throttle_curve(UNKNOWN, remote_addr="192.0.2.2")
        # Spelling variants of one address share its counter.
        variant = _throttle_curve(" Family.GARCIA@example.org", remote_addr="192.0.2.3")
    assert known == unknown
    assert [status for status, *_ in known] == [303, 303, 303, 429, 429]
    assert [status for status, *_ in variant] == [429] * 5
    _, retry_after, body = known[3]
    assert int(retry_after) == 3600 - 5
    assert "Too many requests. Please try again in 60 minutes." in body
    assert SHARED not in body and UNKNOWN not in body
    assert HelpRequest.objects.count() == 6  # throttled requests write no row


def test_the_per_ip_limit_holds_against_forged_forwarding_headers(accounts, settings):
    settings.RATELIMIT_RESET_PER_IP = "4/m"
    from django.test import Client

    client = Client(REMOTE_ADDR="198.51.100.7")
    with time_machine.travel(NOW, tick=False):
        statuses = [
            ask(
                client,
                address,
                HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
                HTTP_X_REAL_IP=f"203.0.113.{i}",
            ).status_code
            for i, address in enumerate([SHARED, UNKNOWN, "a@example.org", "b@example.org"] * 2)
        ]
        elsewhere = ask(Client(REMOTE_ADDR="198.51.100.8"), SHARED)
    assert statuses == [303] * 4 + [429] * 4
    assert elsewhere.status_code == 303  # one network's limit locks nobody else out


# --- What the worker sends --------------------------------------------------------------------


def test_every_username_tied_to_the_address_one_line_each_at_the_stored_address(accounts):
    [email] = resolve("  Family.Garcia@EXAMPLE.org ")
    assert email.kind == "username_reminder" and email.to_address == SHARED
    assert email.token_purpose == "" and email.stream == "email"
    message = rendered(email)
    lines = message.text.splitlines()
    assert "Username: rosa.garcia" in lines and f"Username: {STUDENT_NUMBER}" in lines
    assert sum(line.startswith("Username:") for line in lines) == 2
    assert message.subject == f"Your {settings.DISTRICT_NAME} portal username"
    assert_minimal(message)
    assert settings.SUPPORT_CONTACT in message.text


def test_addresses_stored_differently_are_different_mailboxes(accounts):
    """Two verified addresses that normalise equal but are stored differently: each stored
    address gets only its own username (neither learns the other's)."""
    accounts["student"].recovery_email = "Family.Garcia@Example.org"
    accounts["student"].save()
    emails = resolve(SHARED)
    assert {e.to_address: e.context["usernames"] for e in emails} == {
        SHARED: ["rosa.garcia"],
        "Family.Garcia@Example.org": [STUDENT_NUMBER],
    }


def test_a_kelvin_sign_reaches_only_the_stored_address(accounts):
    accounts["parent"].recovery_email = "kate@example.org"
    accounts["parent"].recovery_email_normalised = "kate@example.org"
    accounts["parent"].save()
    [email] = resolve("\u212aate@example.org")  # K (Kelvin) + "ate": NFKC gives "Kate"
    assert email.to_address == "kate@example.org"
    assert email.context == {"usernames": ["rosa.garcia"]}


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_look_alikes_get_at_most_the_fixed_text_and_never_at_another_address(accounts, look_alike):
    emails = resolve(look_alike)
    for email in emails:
        if email.kind == "username_reminder":
            assert email.to_address == SHARED  # normalised equal: mailed as stored, only there
        else:
            assert email.kind == "no_account" and email.context == {}
            assert "attacker" not in email.to_address and "\n" not in email.to_address
    assert all("attacker" not in e.to_address for e in emails)


def test_a_parent_not_yet_activated_gets_a_fresh_welcome_at_the_sis_address(accounts):
    [email] = resolve(NEW_PARENT.upper())
    assert email.kind == "welcome" and email.token_purpose == "activation"
    assert email.to_address == NEW_PARENT and email.user == accounts["new_parent"]
    assert email.stream == "email"  # transactional, not behind a nightly bulk batch
    assert email.context == {"username": "luis.ortega"}
    assert AuditEvent.objects.filter(
        action="username_reminder.welcome_resent", subject=accounts["new_parent"]
    ).exists()


@pytest.mark.parametrize(
    "address",
    [DISABLED, STAFF, NO_SELF_SERVE, "old.sis@example.org", "ana.g@students.example.org"],
)
def test_disabled_staff_and_not_set_up_get_nothing_not_even_the_no_account_text(accounts, address):
    assert resolve(address) == []
    assert HelpRequest.objects.get().outcome == "no_self_serve"


def test_an_unknown_address_gets_the_fixed_no_account_text(accounts):
    [email] = resolve(f"  {UNKNOWN} ")
    assert email.kind == "no_account" and email.to_address == UNKNOWN and email.user is None
    assert email.context == {} and email.token_purpose == ""
    message = rendered(email)
    assert "Username:" not in message.text
    assert "request form" in message.text
    assert_minimal(message)


def test_no_account_text_is_off_with_the_setting(accounts, settings):
    settings.RECOVERY_EMAIL_UNKNOWN_ACCOUNTS = False
    assert resolve(UNKNOWN) == []
    assert HelpRequest.objects.get().outcome == "unknown"


@pytest.mark.parametrize(
    "typed",
    [
        "x@example.org\r\nBcc: attacker@evil.example",
        "x@example.org,attacker@evil.example",
        "x@example.org&email=attacker@evil.example",
        "Someone <attacker@evil.example>",
        "n\u0131body@example.org",
        "x@\uff45vil.example",
        "no-at-sign",
        "a@b",
    ],
)
def test_the_no_account_text_goes_only_to_one_plain_address(db, typed):
    assert plain_single_address(typed) == ""
    assert resolve(typed) == []


def test_the_emails_to_one_address_are_capped(accounts, settings):
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "2/h"
    with time_machine.travel(NOW, tick=False):
        counts = [len(resolve(address)) for address in [SHARED] * 3 + [UNKNOWN] * 3]
    assert counts == [1, 1, 0, 1, 1, 0]
    outcomes = list(HelpRequest.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes[2] == "address_capped" and outcomes[5] == "unknown_capped"


def test_usernames_and_no_account_texts_in_spanish_and_vietnamese(accounts):
    for language, label in (("es", "Nombre de usuario"), ("vi", "Tên người dùng")):
        accounts["parent"].language = language
        accounts["parent"].save()
        accounts["student"].language = language
        accounts["student"].save()
        [email] = resolve(SHARED)
        text = rendered(email).text
        assert f"\n{label}: rosa.garcia\n" in text, text
        assert "Username:" not in text
        HelpRequest.objects.create(
            kind="forgot_username", identifier=UNKNOWN, identifier_hash="x", language=language
        )
        resolve_help_requests()
        no_account = OutboundEmail.objects.filter(kind="no_account").latest("pk")
        assert no_account.language == language
        assert "request form" not in rendered(no_account).text


def test_a_batch_resolves_every_address_as_it_would_alone(accounts, settings):
    """The worker's one look-up per batch (addresses_in_use) only skips queries that would
    come back empty: each outcome is the one the address gets resolved on its own."""
    from recovery.flows.username_reminder import (
        addresses_in_use,
        resolve_username_reminder_request,
    )

    typed = [SHARED, NEW_PARENT, DISABLED, STAFF, NO_SELF_SERVE, UNKNOWN, "HelpDesk@Example.org"]
    rows = [
        HelpRequest(kind="forgot_username", identifier=address, language="en", pk=n)
        for n, address in enumerate(typed)
    ]
    settings.RATELIMIT_EMAIL_PER_ADDRESS = "100/h"  # each address is resolved twice here
    in_use = addresses_in_use(help_requests=rows)
    assert UNKNOWN.casefold() not in in_use and "staff" in in_use["helpdesk@example.org"]
    assert in_use[SHARED] == {"recovery"} and in_use[NEW_PARENT] == {"guardian"}
    for row in rows:
        with transaction.atomic():
            alone = resolve_username_reminder_request(help_request=row)
            transaction.set_rollback(True)
        with transaction.atomic():
            batched = resolve_username_reminder_request(help_request=row, addresses_in_use=in_use)
            transaction.set_rollback(True)
        assert batched == alone, row.identifier
