"""The login throttle (SPEC §6.2, §6.4; checklist J3, J4, K4).

    # in the authentication backend (portal.backends), around the password check:
    if not admit(request=request, username=typed, user=user_or_none): refuse, unchecked
    fail(request=request, username=typed, user=user_or_none)  # or succeed(...)
    # in the form, for the reply:
    outcome = attempt_outcome(request); message_for(outcome.verdict)

Three brakes, each read before the password is checked:
- Per account: consecutive failures give growing, capped delays that always end (none for the
  first LOGIN_FREE_FAILURES, then LOGIN_DELAY_BASE seconds doubling up to LOGIN_DELAY_MAX); at
  LOGIN_LOCK_AFTER consecutive failures the account is locked until a password reset
  (user_set_password calls clear_account) or a staff unlock (unlock_account). The count lives on
  the User (durable, one atomic UPDATE). A typed name with no account gets the very same
  state machine in Redis, keyed by the normalised name, so replies (and when they change) are
  identical for known and unknown usernames.
- Per client IP (RATELIMIT_LOGIN_PER_IP): failures counted in Redis by recovery.ratelimit, on the
  address TrustedProxyMiddleware vetted (a forged X-Forwarded-For changes nothing).
- Student-number shaped names (STUDENT_NUMBER_PATTERN): a stricter fixed window
  (RATELIMIT_LOGIN_STUDENT_NUMBER, 10 failures an hour) for every such name, existing or not,
  on the default password or not, so the throttle tells nobody which students exist or which
  are still on the guessable default. Reaching it writes an audit event for staff.

Failures older than LOGIN_FAILURE_MEMORY_DAYS are forgotten (a lock is not). Redis trouble fails
open here: the per-account count on the User still protects known accounts.
"""

import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connections
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from recovery import ratelimit
from recovery.audit import record_event

logger = logging.getLogger(__name__)

ACTION_IP = "login.ip"
ACTION_STUDENT_NUMBER = "login.student_number"
UNKNOWN_KEY_PREFIX = "portal:login:unknown:"
DAY = 24 * 3600


def _setting(name, default):
    return getattr(settings, name, default)


def free_failures():
    return int(_setting("LOGIN_FREE_FAILURES", 5))


def delay_base():
    return int(_setting("LOGIN_DELAY_BASE", 60))


def delay_max():
    return int(_setting("LOGIN_DELAY_MAX", 15 * 60))


def lock_after():
    return int(_setting("LOGIN_LOCK_AFTER", 100))


def failure_memory():
    return int(_setting("LOGIN_FAILURE_MEMORY_DAYS", 30)) * DAY


def per_ip_rate():
    return _setting("RATELIMIT_LOGIN_PER_IP", "200/15m")


def student_number_rate():
    return _setting("RATELIMIT_LOGIN_STUDENT_NUMBER", "10/h")


def is_student_number_shaped(username):
    pattern = _setting("STUDENT_NUMBER_PATTERN", r"^\d{5,10}$")
    # Matched on the normalised name (as the counters are keyed), ignoring case.
    return bool(re.fullmatch(pattern, ratelimit.normalise_identifier(username), re.IGNORECASE))


def delay_after(failures):
    """Seconds to wait after `failures` consecutive failures (0 for the first few)."""
    if failures < free_failures():
        return 0
    # Doubling from the base: cap the exponent first so a huge count cannot overflow.
    exponent = min(failures - free_failures(), 32)
    return min(delay_base() * 2**exponent, delay_max())


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until the next attempt is accepted (0: at once)
    locked: bool = False


@dataclass(frozen=True)
class _State:
    failures: int
    last_failed: float | None  # epoch seconds
    locked: bool


def _account_verdict(state, now):
    if state.locked:
        return Verdict(allowed=False, locked=True)
    if state.last_failed is None or now - state.last_failed >= failure_memory():
        return Verdict(allowed=True)
    wait = math.ceil(state.last_failed + delay_after(state.failures) - now)
    return Verdict(allowed=wait <= 0, retry_after=max(wait, 0))


# --- the per-name state: on the User for accounts, in Redis for names with no account ----------


def _user_state(user):
    last = user.last_failed_login_at
    return _State(
        failures=user.failed_login_count,
        last_failed=last.timestamp() if last else None,
        locked=user.login_locked_at is not None,
    )


def _unknown_key(username):
    digest = salted_hmac(
        "portal.login_throttle.unknown",
        ratelimit.normalise_identifier(username),
        algorithm="sha256",
    ).hexdigest()[:32]
    return UNKNOWN_KEY_PREFIX + digest


def _unknown_state(username):
    client = ratelimit.redis_client()
    if client is None:
        # No Redis (the single-host `make run` demo): Django's cache, not atomic across processes.
        values = cache.get(_unknown_key(username)) or {}
        return _State(
            failures=values.get("failures", 0),
            last_failed=values.get("last"),
            locked=values.get("locked", False),
        )
    try:
        values = client.hgetall(_unknown_key(username))
    except redis.RedisError:
        logger.warning("Login throttle store unavailable; failing open")
        return _State(failures=0, last_failed=None, locked=False)
    return _State(
        failures=int(values.get(b"failures") or 0),
        last_failed=float(values[b"last"]) if b"last" in values else None,
        locked=b"locked" in values,
    )


def _record_unknown_failure(username, now):
    client = ratelimit.redis_client()
    key = _unknown_key(username)
    if client is None:
        state = _unknown_state(username)
        stale = state.last_failed is not None and now - state.last_failed >= failure_memory()
        failures = 1 if stale else state.failures + 1
        locked = state.locked or failures >= lock_after()
        values = {"failures": failures, "last": now, "locked": locked}
        cache.set(key, values, timeout=365 * DAY if locked else failure_memory())
        return
    try:
        state = _unknown_state(username)
        pipe = client.pipeline(transaction=True)
        if state.last_failed is not None and now - state.last_failed >= failure_memory():
            pipe.hset(key, "failures", 0)
        pipe.hincrby(key, "failures", 1)
        pipe.hset(key, "last", repr(now))
        # Kept as long as an account remembers its failures; a lock far longer (an account's
        # lock only ends with a reset).
        pipe.expire(key, failure_memory())
        failures = pipe.execute()[-3]
        if failures >= lock_after() or state.locked:
            pipe = client.pipeline(transaction=True)
            pipe.hset(key, "locked", "1")
            pipe.expire(key, 365 * DAY)
            pipe.execute()
    except redis.RedisError:
        logger.warning("Login throttle store unavailable; a failure went uncounted")


def _record_user_failure(user):
    """Count one failure on the account row and read the new state back, in one statement.

    One UPDATE, so concurrent failures never lose a count; a stale run of failures restarts.
    Written in SQL rather than the ORM's Case/When: building that query cost about 3 ms of CPU,
    which made a known name's refusal measurably slower than an unknown one's (counted in
    Redis), and the time would tell them apart (checklist J2).
    """
    model = type(user)
    moment = timezone.now()
    cutoff = moment - timedelta(seconds=failure_memory())
    connection = connections[model._default_manager.db]
    with connection.cursor() as cursor:
        cursor.execute(
            _failure_update_sql(model, connection),
            {"pk": user.pk, "moment": moment, "cutoff": cutoff, "lock_from": lock_after() - 1},
        )
        row = cursor.fetchone()
    if row is None:  # the account was deleted meanwhile
        return
    if connection.vendor == "postgresql":
        user.failed_login_count, user.last_failed_login_at, user.login_locked_at = row
    else:  # SQLite (the demo) returns datetimes as text: read them back through the fields
        user.refresh_from_db(
            fields=["failed_login_count", "last_failed_login_at", "login_locked_at"]
        )
    if lock_after() <= 1 and user.login_locked_at is None:  # degenerate setting: lock at once
        model._default_manager.filter(pk=user.pk).update(login_locked_at=moment)
        user.login_locked_at = moment


def _failure_update_sql(model, connection):
    quote = connection.ops.quote_name
    count, last, locked, pk = (
        quote(model._meta.get_field(name).column)
        for name in ("failed_login_count", "last_failed_login_at", "login_locked_at", "id")
    )
    # Every SET expression reads the row as it was before the UPDATE.
    return (
        f"UPDATE {quote(model._meta.db_table)} SET "  # noqa: S608 (names from the model)
        f"{locked} = CASE WHEN {locked} IS NOT NULL THEN {locked} "
        f"WHEN {count} >= %(lock_from)s AND {last} >= %(cutoff)s THEN %(moment)s "
        "ELSE NULL END, "
        f"{count} = CASE WHEN {last} < %(cutoff)s THEN 1 ELSE {count} + 1 END, "
        f"{last} = %(moment)s "
        f"WHERE {pk} = %(pk)s RETURNING {count}, {last}, {locked}"
    )


def _state(*, username, user):
    return _user_state(user) if user is not None else _unknown_state(username)


# --- the public interface ----------------------------------------------------------------------


def check(*, request, username, user):
    """May this attempt go ahead? Counts nothing. `user`: the account the name matched, or None."""
    now = time.time()
    verdicts = [_account_verdict(_state(username=username, user=user), now)]
    ip = ratelimit.client_ip(request)
    decision = ratelimit.peek(action=ACTION_IP, key=ip, rate=per_ip_rate(), fail_open=True)
    verdicts.append(Verdict(allowed=decision.allowed, retry_after=decision.retry_after))
    if is_student_number_shaped(username):
        decision = ratelimit.peek(
            action=ACTION_STUDENT_NUMBER, key=username, rate=student_number_rate(), fail_open=True
        )
        verdicts.append(Verdict(allowed=decision.allowed, retry_after=decision.retry_after))
    return _combine(verdicts)


def record_failure(*, request, username, user):
    """Count a failed attempt; return the verdict for the next one (for the reply's wording)."""
    now = time.time()
    if user is not None:
        _record_user_failure(user)
    else:
        _record_unknown_failure(username, now)
    ratelimit.hit(
        action=ACTION_IP, key=ratelimit.client_ip(request), rate=per_ip_rate(), fail_open=True
    )
    if is_student_number_shaped(username):
        decision = ratelimit.hit(
            action=ACTION_STUDENT_NUMBER, key=username, rate=student_number_rate(), fail_open=True
        )
        if decision.remaining == 0 and decision.allowed:
            # The window just filled: tell staff once (K4), by the typed name's hash only.
            record_event(
                action="login.student_number_throttled",
                request=request,
                subject=user,
                identifier=username,
            )
    return check(request=request, username=username, user=user)


def record_success(*, request, username, user):
    """A successful sign-in ends the run of failures for this account (and its name)."""
    if user.failed_login_count or user.last_failed_login_at or is_student_number_shaped(username):
        # (The common case, nothing to forget, costs no write.)
        clear_account(user, username=username)


def clear_account(user, *, username=None):
    """Forget `user`'s failures and lock: called by a password reset (user_set_password)."""
    # The model, not type(user): request.user is a lazy wrapper.
    get_user_model()._default_manager.filter(pk=user.pk).update(
        failed_login_count=0, last_failed_login_at=None, login_locked_at=None
    )
    user.failed_login_count, user.last_failed_login_at, user.login_locked_at = 0, None, None
    for name in {user.get_username(), username} - {None}:
        if is_student_number_shaped(name):
            ratelimit.reset(action=ACTION_STUDENT_NUMBER, key=name, rate=student_number_rate())


def unlock_account(*, user, staff, request=None):
    """A staff unlock: clear the throttle and lock, and put it in the audit trail."""
    was_locked = user.login_locked_at is not None
    clear_account(user)
    record_event(
        action="login.unlocked",
        request=request,
        actor=staff,
        subject=user,
        detail={"was_locked": was_locked},
    )


# --- around one attempt (called by portal.backends.PortalBackend) ---------------------------------

_OUTCOME_ATTRIBUTE = "_portal_login_outcome"


@dataclass(frozen=True)
class Outcome:
    """What became of a refused attempt, for the form's reply."""

    checked: bool  # False: the throttle refused it before the password was checked
    verdict: Verdict  # the verdict for the next attempt


def admit(*, request, username, user):
    """May the password be checked? If not, count nothing more and remember why."""
    verdict = check(request=request, username=username, user=user)
    if verdict.allowed:
        return True
    setattr(request, _OUTCOME_ATTRIBUTE, Outcome(checked=False, verdict=verdict))
    _audit_failure(request, username, user, "locked" if verdict.locked else "throttled")
    return False


def fail(*, request, username, user):
    """The password was checked and refused (or the account may not sign in)."""
    verdict = record_failure(request=request, username=username, user=user)
    setattr(request, _OUTCOME_ATTRIBUTE, Outcome(checked=True, verdict=verdict))
    _audit_failure(request, username, user, "invalid")


def succeed(*, request, username, user):
    record_success(request=request, username=username, user=user)
    if hasattr(request, _OUTCOME_ATTRIBUTE):
        delattr(request, _OUTCOME_ATTRIBUTE)


def attempt_outcome(request):
    """The Outcome of this request's refused attempt, or None."""
    return getattr(request, _OUTCOME_ATTRIBUTE, None)


def _audit_failure(request, username, user, reason):
    record_event(
        action="login.failed",
        request=request,
        subject=user,
        identifier=username,
        detail={"reason": reason},
    )


def message_for(verdict):
    """The reply to a refused attempt: the same words for known and unknown usernames."""
    if verdict.locked:
        return gettext(
            "Too many attempts to sign in. Sign-in is closed for this username until its "
            "password is reset: use Help below, or contact %(support)s."
        ) % {"support": settings.SUPPORT_CONTACT}
    return " ".join(
        [
            gettext("Too many attempts to sign in."),
            ratelimit.retry_after_message(verdict.retry_after),
        ]
    )


def _combine(verdicts):
    if any(verdict.locked for verdict in verdicts):
        return Verdict(allowed=False, locked=True)
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if refused:
        return Verdict(allowed=False, retry_after=max(v.retry_after for v in refused))
    # Allowed now; a pending wait is still worth telling (a failure's reply says when to retry).
    return Verdict(allowed=True, retry_after=max(v.retry_after for v in verdicts))
