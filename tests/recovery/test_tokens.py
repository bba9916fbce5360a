"""Tokens: signed random ids; a ledger makes them single-use and revocable (C1-C9)."""

import hashlib
import json
import string
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from itsdangerous.encoding import base64_decode

from recovery import tokens
from recovery.models import IssuedToken

pytestmark = pytest.mark.django_db

RESET = IssuedToken.Purpose.RESET
ACTIVATION = IssuedToken.Purpose.ACTIVATION
EMAIL_CONFIRM = IssuedToken.Purpose.EMAIL_CONFIRM
PURPOSES = list(IssuedToken.Purpose.values)
B64_ALPHABET = string.ascii_letters + string.digits + "-_"
START = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="garcia.maria", email="maria.garcia@example.org", first_name="Maria"
    )


def ledger_snapshot():
    return list(IssuedToken.objects.order_by("pk").values())


def token_id_of(token):
    """What anyone holding the link can read without any key."""
    payload = token.split(".")[0]
    return json.loads(base64_decode(payload))


def test_round_trip(user):
    token = tokens.mint(user=user, purpose=RESET)
    row = tokens.check(token, purpose=RESET)
    assert row.user == user and row.purpose == RESET
    assert tokens.consume(token, purpose=RESET) == user
    row.refresh_from_db()
    assert row.used_at is not None and row.revoked_at is None


def test_ledger_row_records_issue_and_expiry(user):
    with time_machine.travel(START, tick=False):
        token = tokens.mint(user=user, purpose=ACTIVATION)
    row = IssuedToken.objects.get()
    assert row.issued_at == START
    assert row.expires_at == START + timedelta(seconds=7 * 24 * 3600)
    assert row.token_id_hash == hashlib.sha256(token_id_of(token).encode()).hexdigest()


@pytest.mark.parametrize("purpose", PURPOSES)
def test_valid_a_minute_before_max_age_expired_a_minute_after(user, purpose, settings):
    settings.STAFF_CODE_MAX_AGE = 3 * 24 * 3600
    max_age = {
        "reset": settings.RECOVERY_RESET_TOKEN_MAX_AGE,
        "activation": settings.ACTIVATION_TOKEN_MAX_AGE,
        "email_confirm": settings.EMAIL_CONFIRM_TOKEN_MAX_AGE,
        "staff_code": settings.STAFF_CODE_MAX_AGE,
    }[purpose]
    with time_machine.travel(START, tick=False) as clock:
        token = tokens.mint(user=user, purpose=purpose)
        clock.move_to(START + timedelta(seconds=max_age - 60))
        assert tokens.check(token, purpose=purpose).user == user
        clock.move_to(START + timedelta(seconds=max_age + 60))
        with pytest.raises(tokens.TokenExpired):
            tokens.check(token, purpose=purpose)
        with pytest.raises(tokens.TokenExpired):
            tokens.consume(token, purpose=purpose)
    assert IssuedToken.objects.get().used_at is None


def test_ledger_expiry_holds_even_if_the_max_age_setting_grows(user, settings):
    # The ledger's expires_at was fixed at mint time: lengthening the policy later does not
    # resurrect links already sent.
    with time_machine.travel(START, tick=False) as clock:
        token = tokens.mint(user=user, purpose=RESET)
        settings.RECOVERY_RESET_TOKEN_MAX_AGE = 10 * 3600
        clock.move_to(START + timedelta(hours=2))
        with pytest.raises(tokens.TokenExpired):
            tokens.check(token, purpose=RESET)


def test_shortening_the_max_age_setting_shortens_outstanding_links(user, settings):
    with time_machine.travel(START, tick=False) as clock:
        token = tokens.mint(user=user, purpose=RESET)
        settings.RECOVERY_RESET_TOKEN_MAX_AGE = 600
        clock.move_to(START + timedelta(minutes=11))
        with pytest.raises(tokens.TokenExpired):
            tokens.check(token, purpose=RESET)


def variants_with_one_character_changed(token):
    for index, char in enumerate(token):
        position = B64_ALPHABET.find(char)
        if position < 0:  # a "." separator
            yield token[:index] + "A" + token[index + 1 :]
            continue
        # The neighbouring letter (changes only low bits: catches lax base64 decoding) and the
        # letter 32 away (changes the high bit of the group: always a different byte).
        for other in (position ^ 1, (position + 32) % 64):
            yield token[:index] + B64_ALPHABET[other] + token[index + 1 :]


def test_changing_any_single_character_is_rejected(user):
    token = tokens.mint(user=user, purpose=RESET)
    variants = list(variants_with_one_character_changed(token))
    assert len(variants) > 2 * (len(token) - 2)
    for variant in variants:
        assert variant != token
        with pytest.raises(tokens.TokenInvalid):
            tokens.check(variant, purpose=RESET)
        with pytest.raises(tokens.TokenInvalid):
            tokens.consume(variant, purpose=RESET)
    # The original still works: nothing above spent or damaged it.
    assert tokens.consume(token, purpose=RESET) == user


def test_every_truncation_is_rejected(user):
    token = tokens.mint(user=user, purpose=RESET)
    for length in range(len(token)):
        with pytest.raises(tokens.TokenInvalid):
            tokens.check(token[:length], purpose=RESET)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        ".",
        "..",
        "a.b.c",
        "\x00",
        "abc\x00def.ghi.jkl",
        "x" * 20_000,
        "é" * 50,
        "Ωμέγα.ünï.çødé",
        "\ud800",  # a lone surrogate: cannot even be encoded
        "%2E%2E%2F",
        None,
        12345,
        b"bytes.are.not-a-token",
    ],
)
def test_garbage_is_invalid_and_never_escapes_as_another_exception(user, garbage):
    tokens.mint(user=user, purpose=RESET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.check(garbage, purpose=RESET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.consume(garbage, purpose=RESET)


def test_canonical_check_accepts_what_the_signer_writes():
    # itsdangerous compresses a payload when that is shorter (a leading "."); random ids never
    # compress, but the strictness check must not break the day one does.
    compressed = tokens._serializer(RESET).dumps("A" * 32)
    assert compressed.startswith(".")
    tokens._require_canonical(compressed)
    tokens._require_canonical(tokens._serializer(RESET).dumps("B" * 31))


def test_valid_token_plus_trailing_data_is_rejected(user):
    token = tokens.mint(user=user, purpose=RESET)
    for suffix in ("\x00", " ", "A", ".", "é"):
        with pytest.raises(tokens.TokenInvalid):
            tokens.check(token + suffix, purpose=RESET)


@pytest.mark.parametrize("minted_for", PURPOSES)
def test_a_token_is_rejected_for_every_other_purpose(user, minted_for):
    token = tokens.mint(user=user, purpose=minted_for)
    for other in PURPOSES:
        if other == minted_for:
            continue
        with pytest.raises(tokens.TokenInvalid):
            tokens.check(token, purpose=other)
        with pytest.raises(tokens.TokenInvalid):
            tokens.consume(token, purpose=other)
    assert tokens.check(token, purpose=minted_for).user == user


def test_reuse_after_consume_is_rejected(user):
    token = tokens.mint(user=user, purpose=RESET)
    tokens.consume(token, purpose=RESET)
    with pytest.raises(tokens.TokenUsed):
        tokens.check(token, purpose=RESET)
    with pytest.raises(tokens.TokenUsed):
        tokens.consume(token, purpose=RESET)


def test_consume_rolls_back_with_the_callers_transaction(user):
    token = tokens.mint(user=user, purpose=RESET)
    with pytest.raises(RuntimeError), transaction.atomic():
        tokens.consume(token, purpose=RESET)
        raise RuntimeError("setting the password failed")
    assert tokens.consume(token, purpose=RESET) == user


def test_a_newer_link_revokes_older_ones_of_the_same_purpose_only(user):
    first = tokens.mint(user=user, purpose=RESET)
    activation = tokens.mint(user=user, purpose=ACTIVATION)
    second = tokens.mint(user=user, purpose=RESET)
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(first, purpose=RESET)
    with pytest.raises(tokens.TokenRevoked):
        tokens.consume(first, purpose=RESET)
    assert tokens.check(second, purpose=RESET).user == user
    assert tokens.check(activation, purpose=ACTIVATION).user == user


def test_a_newer_link_for_another_user_revokes_nothing(user, django_user_model):
    other = django_user_model.objects.create_user(username="other")
    token = tokens.mint(user=user, purpose=RESET)
    tokens.mint(user=other, purpose=RESET)
    assert tokens.check(token, purpose=RESET).user == user


def test_revoke_tokens_kills_every_outstanding_token(user, django_user_model):
    other = django_user_model.objects.create_user(username="other")
    others = tokens.mint(user=other, purpose=RESET)
    spent = tokens.mint(user=user, purpose=EMAIL_CONFIRM)
    tokens.consume(spent, purpose=EMAIL_CONFIRM)
    outstanding = {p: tokens.mint(user=user, purpose=p) for p in (RESET, ACTIVATION)}

    assert tokens.revoke_tokens(user=user) == 2

    for purpose, token in outstanding.items():
        with pytest.raises(tokens.TokenRevoked):
            tokens.check(token, purpose=purpose)
    with pytest.raises(tokens.TokenUsed):  # a spent token stays "used", not "revoked"
        tokens.check(spent, purpose=EMAIL_CONFIRM)
    assert tokens.check(others, purpose=RESET).user == other


def test_revoke_tokens_of_one_purpose(user):
    reset = tokens.mint(user=user, purpose=RESET)
    confirm = tokens.mint(user=user, purpose=EMAIL_CONFIRM)
    assert tokens.revoke_tokens(user=user, purpose=RESET) == 1
    with pytest.raises(tokens.TokenRevoked):
        tokens.check(reset, purpose=RESET)
    assert tokens.check(confirm, purpose=EMAIL_CONFIRM).user == user


def test_unknown_purpose_is_a_programming_error(user):
    with pytest.raises(ValueError):
        tokens.mint(user=user, purpose="magic")
    with pytest.raises(ValueError):
        tokens.check("x", purpose="magic")


def test_validly_signed_but_unknown_to_the_ledger_is_invalid(user):
    token = tokens.mint(user=user, purpose=RESET)
    IssuedToken.objects.all().delete()
    with pytest.raises(tokens.TokenInvalid):
        tokens.check(token, purpose=RESET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.consume(token, purpose=RESET)


def test_key_rotation(user):
    with override_settings(SECRET_KEY="old-key-" + "a" * 50, SECRET_KEY_FALLBACKS=[]):
        token = tokens.mint(user=user, purpose=RESET)
    with override_settings(
        SECRET_KEY="new-key-" + "b" * 50, SECRET_KEY_FALLBACKS=["old-key-" + "a" * 50]
    ):
        assert tokens.check(token, purpose=RESET).user == user
        fresh = tokens.mint(user=user, purpose=ACTIVATION)
    # New tokens are signed with the new key: they verify with it alone.
    with override_settings(SECRET_KEY="new-key-" + "b" * 50, SECRET_KEY_FALLBACKS=[]):
        assert tokens.check(fresh, purpose=ACTIVATION).user == user
        # The old key has been retired: its links stop working.
        with pytest.raises(tokens.TokenInvalid):
            tokens.check(token, purpose=RESET)
    assert IssuedToken.objects.get(purpose=RESET).used_at is None


def test_payload_holds_only_a_random_id(user):
    token = tokens.mint(user=user, purpose=RESET)
    payload = token.split(".")[0]
    decoded = base64_decode(payload)
    token_id = json.loads(decoded)
    # A bare string, not an object: there is no field for a user id to hide in.
    assert isinstance(token_id, str)
    assert len(token_id) == 32 and set(token_id) <= set(B64_ALPHABET)  # 192 random bits
    text = decoded.decode().casefold()
    for personal in (user.username, user.email, user.first_name, "garcia", "maria"):
        assert personal.casefold() not in text
    # Two tokens for the same user share nothing but their shape.
    other_id = token_id_of(tokens.mint(user=user, purpose=RESET))
    assert other_id != token_id


def test_database_never_holds_the_token_or_its_id(user):
    token = tokens.mint(user=user, purpose=RESET)
    token_id = token_id_of(token)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [name for (name,) in cursor.fetchall()]
        assert "recovery_issuedtoken" in tables
        for table in tables:
            cursor.execute(f'SELECT t::text FROM "{table}" AS t')  # noqa: S608 (catalog names)
            for (row,) in cursor.fetchall():
                assert token_id not in row and token.split(".")[-1] not in row, table


def test_check_changes_nothing(user):
    with time_machine.travel(START, tick=False) as clock:
        valid = tokens.mint(user=user, purpose=RESET)
        spent = tokens.mint(user=user, purpose=EMAIL_CONFIRM)
        tokens.consume(spent, purpose=EMAIL_CONFIRM)
        before = ledger_snapshot()
        with CaptureQueriesContext(connection) as queries:
            tokens.check(valid, purpose=RESET)
            tokens.check(valid, purpose=RESET)
            for bad, purpose in ((spent, EMAIL_CONFIRM), (valid, ACTIVATION), ("junk", RESET)):
                with pytest.raises(tokens.TokenError):
                    tokens.check(bad, purpose=purpose)
            clock.move_to(START + timedelta(days=1))
            with pytest.raises(tokens.TokenExpired):
                tokens.check(valid, purpose=RESET)
        assert ledger_snapshot() == before
        assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)
        clock.move_to(START + timedelta(minutes=5))
        assert tokens.consume(valid, purpose=RESET) == user


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_consumes_exactly_one_wins(django_user_model):
    user = django_user_model.objects.create_user(username="racer")
    token = tokens.mint(user=user, purpose=RESET)
    barrier = threading.Barrier(10)
    outcomes = []
    lock = threading.Lock()

    def use():
        try:
            barrier.wait()
            try:
                with transaction.atomic():  # as a set-password POST would
                    tokens.consume(token, purpose=RESET)
                outcome = "won"
            except tokens.TokenError as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=use) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["TokenUsed"] * 9 + ["won"]
    assert IssuedToken.objects.get().used_at is not None
