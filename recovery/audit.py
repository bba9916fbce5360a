"""The audit trail: who did what, when, from where (SPEC §4, §6.7).

    record_event(action="password_reset.requested", request=request, identifier=username)

What was typed into a form is kept only as `identifier_hash`, a keyed HMAC of its normal form:
staff can still find every event about one identifier (hash_identifier(value) and filter), but a
leaked table does not list who asked about which account, and without SECRET_KEY the hashes
cannot be tested against a list of guesses. `detail` is for small, non-secret facts (a reason,
a count); a guard refuses keys that name secrets, birth dates, tokens, links or passwords.

Events are written in the caller's transaction: record failures that the caller rolls back
(e.g. a refused token) after the rollback, or outside the atomic block.
"""

import ipaddress
import json
import re
import unicodedata

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from portal.normalisation import normalise_email
from recovery.models import AuditEvent

_HASH_SALT = "portal.recovery.audit.identifier"
_ACTION_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
_USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length
# Substrings of a detail key (lower-cased, separators removed) that name something that must
# never be stored. Short ones ("otp", "dob", "pin") only as whole words, so "footprint"
# and "smtp_code" stay allowed.
_FORBIDDEN_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "birth",
    "signature",
    "cookie",
    "session",
    "csrf",
    "authorization",
    "apikey",
    "link",
    "url",
    "activationcode",
    "recoverycode",
    "backupcode",
    "onetime",
)
_FORBIDDEN_KEY_WORDS = {"pwd", "pw", "dob", "otp", "totp", "pin"}
# A value shaped like a signed token (payload.timestamp.signature) is refused whatever its key.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeAuditDetail(ValueError):
    """`detail` holds something the audit trail must never store, or is not plain JSON."""


def normalise_identifier(value):
    """Email addresses by portal.normalisation; usernames NFKC, trimmed, lower-cased."""
    value = str(value or "")
    if "@" in value:
        return normalise_email(value)
    return unicodedata.normalize("NFKC", value).strip().lower()


def hash_identifier(value):
    """The keyed hash stored in AuditEvent.identifier_hash; "" for an empty identifier."""
    normal = normalise_identifier(value)
    if not normal:
        return ""
    return salted_hmac(_HASH_SALT, normal, algorithm="sha256").hexdigest()


def identifier_hashes(value):
    """hash_identifier(value) under SECRET_KEY and each fallback: for correlation queries that
    reach back past a key rotation (`identifier_hash__in=identifier_hashes(typed)`)."""
    normal = normalise_identifier(value)
    if not normal:
        return []
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return [
        salted_hmac(_HASH_SALT, normal, secret=key, algorithm="sha256").hexdigest() for key in keys
    ]


def _check_key(key):
    if not isinstance(key, str):
        raise UnsafeAuditDetail("detail keys must be strings")
    # camelCase and any punctuation split words too: "dobValue", "otp-code", "user.pin".
    lowered = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    words = [word for word in re.split(r"[^a-z0-9]+", lowered) if word]
    squashed = "".join(words)  # "pass_word", "api-key", "One Time Code" read as one word too
    if any(part in squashed for part in _FORBIDDEN_KEY_PARTS) or _FORBIDDEN_KEY_WORDS & set(words):
        raise UnsafeAuditDetail(f"detail key {key!r} names something the audit must not store")


def _check_value(value):
    if isinstance(value, dict):
        for key, item in value.items():
            _check_key(key)
            _check_value(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item)
    elif isinstance(value, str) and _TOKEN_SHAPE.search(value):
        raise UnsafeAuditDetail("a detail value looks like a signed token")


def check_detail(detail):
    """Return `detail` as plain JSON-safe dict, or raise UnsafeAuditDetail."""
    if detail is None:
        return {}
    if not isinstance(detail, dict):
        raise UnsafeAuditDetail("detail must be a dict")
    _check_value(detail)
    try:
        return json.loads(json.dumps(detail, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise UnsafeAuditDetail(f"detail is not plain JSON: {exc}") from None


def request_ip(request):
    # The exact address (TrustedProxyMiddleware already chose the trusted hop); rate limits
    # group IPv6 by /64, but an investigation wants the host.
    raw = (request.META.get("REMOTE_ADDR") or "").split("%", 1)[0].strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def request_user_agent(request):
    agent = _CONTROL_CHARS.sub("", request.META.get("HTTP_USER_AGENT") or "")
    return agent[:_USER_AGENT_MAX]


def record_event(*, action, request=None, actor=None, subject=None, identifier=None, detail=None):
    """Write one AuditEvent. `actor` defaults to the request's signed-in user."""
    event = build_event(
        action=action,
        request=request,
        actor=actor,
        subject=subject,
        identifier_hash=hash_identifier(identifier),
        detail=detail,
    )
    event.save(force_insert=True)
    return event


def build_event(
    *,
    action,
    request=None,
    actor=None,
    subject=None,
    identifier_hash="",
    detail=None,
    ip=None,
    user_agent="",
    at=None,
):
    """An unsaved AuditEvent, checked as record_event checks it: for bulk_create of several.

    `ip` and `user_agent` are for events written after the request, from what was kept of it
    (taken already cleaned by request_ip / request_user_agent); `at` backdates such an event to
    when it happened.
    """
    if not isinstance(action, str) or len(action) > 64 or not _ACTION_RE.match(action):
        raise ValueError(f"audit action {action!r} is not a short dotted name like 'a.b'")
    detail = check_detail(detail)
    if request is not None:
        ip, user_agent = request_ip(request), request_user_agent(request)
        request_user = getattr(request, "user", None)
        if actor is None and request_user is not None and request_user.is_authenticated:
            actor = request_user
    return AuditEvent(
        at=at or timezone.now(),
        action=action,
        actor=actor,
        subject=subject,
        identifier_hash=identifier_hash,
        ip=ip,
        user_agent=user_agent or "",
        detail=detail,
    )
