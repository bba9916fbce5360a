"""Signed, single-use, revocable links (SPEC §5; security checklist C1-C9).

A token is an itsdangerous URLSafeTimedSerializer signature over ONE value: a random token id.
It carries no user id, username or email (itsdangerous signs, it does not encrypt: anyone can
base64-decode the payload). The signature makes the link unforgeable and expiring without a
database hit; the IssuedToken ledger row, keyed by the SHA-256 of the id, makes it single-use
and revocable. Neither the token nor its id is ever stored.

- Each purpose has its own salt, so a reset token is not an activation token (C2).
- Keys are SECRET_KEY_FALLBACKS + [SECRET_KEY]: itsdangerous signs with the last and verifies
  with any, so a link survives a key rotation while its old key stays in the fallbacks (C9).
- Expiry is enforced twice: the signature's max_age (itsdangerous reads time.time()) and the
  ledger's expires_at (django.utils.timezone.now()). time-machine moves both in tests.
- check() is read-only, for GET/HEAD landing pages that mail scanners open; only consume(),
  from the POST that does the work, spends a token, in one conditional UPDATE (C4, C8).
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from recovery.app_settings import app_settings
from recovery.models import IssuedToken

Purpose = IssuedToken.Purpose

# 24 random bytes = 192 bits (ASVS/WSTG ask for at least 128), 32 URL-safe characters.
TOKEN_ID_BYTES = 24
# A real token is about 100 characters; anything much longer is refused before any hashing.
MAX_TOKEN_LENGTH = 512


class TokenError(Exception):
    """The link cannot be used. Show one generic page; the subclass is for audit only."""


class TokenInvalid(TokenError):
    """Tampered, truncated, garbage, signed for another purpose, or unknown to the ledger."""


class TokenExpired(TokenError):
    """Older than the purpose's max age (by signature or by ledger)."""


class TokenUsed(TokenError):
    """Already spent by consume()."""


class TokenRevoked(TokenError):
    """Superseded by a newer link, or killed by a password/email/MFA change or deactivation."""


def _salt(purpose):
    return f"portal.recovery.token.{purpose}"


def _serializer(purpose):
    # Built per call: settings (keys, under override_settings too) are read when used.
    keys = [*settings.SECRET_KEY_FALLBACKS, settings.SECRET_KEY]
    return URLSafeTimedSerializer(
        keys, salt=_salt(purpose), signer_kwargs={"digest_method": hashlib.sha256}
    )


def _check_purpose(purpose):
    if purpose not in Purpose.values:
        raise ValueError(f"unknown token purpose {purpose!r}")


def _hash_token_id(token_id):
    return hashlib.sha256(token_id.encode("ascii")).hexdigest()


def _token_id_hash(token, purpose):
    """Verify the signature (and its age) and return the ledger key; raise TokenError."""
    _check_purpose(purpose)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("malformed token")
    try:
        _require_canonical(token)
        token_id = _serializer(purpose).loads(token, max_age=app_settings.token_max_age(purpose))
    except SignatureExpired:
        raise TokenExpired("signature expired") from None
    except (BadData, UnicodeError, ValueError):
        # BadData covers bad signatures, timestamps and payloads; the others non-ASCII oddities.
        raise TokenInvalid("bad signature") from None
    if not isinstance(token_id, str) or not token_id.isascii() or len(token_id) < 22:
        raise TokenInvalid("unexpected payload")
    return _hash_token_id(token_id)


def _require_canonical(token):
    """Refuse base64 spellings the decoder would tolerate but the signer never writes.

    The last character of a base64 group carries unused low bits, so `...A` and `...B` can decode
    to the same signature; accepting both would make "flip any character -> rejected" untrue.
    """
    # A leading "." marks a zlib-compressed payload; a random id never compresses, but allow it.
    segments = token.removeprefix(".").split(".")
    if len(segments) != 3:
        raise BadData("expected payload.timestamp.signature")
    for segment in segments:
        if not segment or base64_encode(base64_decode(segment)) != segment.encode("ascii"):
            raise BadData("non-canonical base64")


def _raise_for_state(row, now):
    if row is None:
        raise TokenInvalid("unknown token")
    if row.used_at is not None:
        raise TokenUsed("already used")
    if row.revoked_at is not None:
        raise TokenRevoked("revoked")
    if row.expires_at <= now:
        raise TokenExpired("ledger expired")


def mint(*, user, purpose):
    """Issue a new link token for `user`; older outstanding ones of the same purpose die.

    Called by the outbox worker at send time, so the outbox never holds a live link.
    """
    _check_purpose(purpose)
    token_id = secrets.token_urlsafe(TOKEN_ID_BYTES)
    now = timezone.now()
    with transaction.atomic():
        _outstanding(user=user, purpose=purpose).update(revoked_at=now)
        IssuedToken.objects.create(
            user=user,
            purpose=purpose,
            token_id_hash=_hash_token_id(token_id),
            issued_at=now,
            expires_at=now + timedelta(seconds=app_settings.token_max_age(purpose)),
        )
    return _serializer(purpose).dumps(token_id)


def check(token, *, purpose):
    """Return the usable IssuedToken for `token`, or raise a TokenError. Changes nothing."""
    token_id_hash = _token_id_hash(token, purpose)
    row = (
        IssuedToken.objects.select_related("user")
        .filter(token_id_hash=token_id_hash, purpose=purpose)
        .first()
    )
    _raise_for_state(row, timezone.now())
    return row


def consume(token, *, purpose):
    """Spend `token` and return its user, or raise a TokenError.

    One conditional UPDATE, so of two simultaneous uses exactly one matches the row. Call it
    inside the transaction that does the work (sets the password...), so a failure after it
    rolls the spending back too.
    """
    token_id_hash = _token_id_hash(token, purpose)
    now = timezone.now()
    matched = IssuedToken.objects.filter(
        token_id_hash=token_id_hash,
        purpose=purpose,
        used_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).update(used_at=now)
    row = (
        IssuedToken.objects.select_related("user")
        .filter(token_id_hash=token_id_hash, purpose=purpose)
        .first()
    )
    if not matched:
        _raise_for_state(row, now)
        raise TokenInvalid("not usable")  # unreachable unless the row changed in between
    return row.user


def revoke_tokens(*, user, purpose=None):
    """Revoke every outstanding token of `user` (optionally of one purpose); return how many.

    For password, email and MFA changes and deactivation (SPEC §5, checklist C5).
    """
    if purpose is not None:
        _check_purpose(purpose)
    return _outstanding(user=user, purpose=purpose).update(revoked_at=timezone.now())


def _outstanding(*, user, purpose=None):
    rows = IssuedToken.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True)
    if purpose is not None:
        rows = rows.filter(purpose=purpose)
    return rows


# --- Staff-issued one-time codes (purpose staff_code) ------------------------------------------
# A code a person reads off paper and types, not a link: 12 characters of Crockford's base32
# (no I, L, O or U; 32**12 = 2**60), shown as XXXX-XXXX-XXXX. The ledger row holds only a keyed
# HMAC of the code bound to the user, so a leaked table can neither be reversed nor replayed
# against another account. Single use and revocable like links; it lives STAFF_CODE_MAX_AGE.

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12
_CODE_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalise_code(code):
    """What was typed, as issued: case, spaces and dashes ignored, O read as 0 and I/L as 1."""
    text = "".join(str(code or "").split()).replace("-", "").upper()
    return text.translate(_CODE_READS_AS)


def _code_hash(user, code):
    return salted_hmac(
        "portal.recovery.tokens.staff_code", f"{user.pk}:{code}", algorithm="sha256"
    ).hexdigest()


def mint_code(*, user):
    """Issue a one-time code for `user` (older outstanding codes die); return it, grouped."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    now = timezone.now()
    purpose = Purpose.STAFF_CODE
    with transaction.atomic():
        _outstanding(user=user, purpose=purpose).update(revoked_at=now)
        IssuedToken.objects.create(
            user=user,
            purpose=purpose,
            token_id_hash=_code_hash(user, code),
            issued_at=now,
            expires_at=now + timedelta(seconds=app_settings.token_max_age(purpose)),
        )
    return "-".join(code[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def consume_code(*, user, code):
    """Spend `user`'s code, or raise a TokenError. One conditional UPDATE, as consume()."""
    code = normalise_code(code)
    if len(code) != CODE_LENGTH or any(char not in CODE_ALPHABET for char in code):
        raise TokenInvalid("malformed code")
    code_hash = _code_hash(user, code)
    now = timezone.now()
    rows = IssuedToken.objects.filter(
        user=user, purpose=Purpose.STAFF_CODE, token_id_hash=code_hash
    )
    matched = rows.filter(used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now).update(
        used_at=now
    )
    if not matched:
        _raise_for_state(rows.first(), now)
        raise TokenInvalid("not usable")
