"""Rate limits: atomic fixed-window counters in Redis (SPEC §6.2; checklist A4, B1-B3).

    decision = hit(action="password_reset.identifier", key=username, rate="5/h")
    if not decision.allowed:
        message = retry_after_message(decision.retry_after)

Why it is built this way:
- One counter per (action, key, window), incremented (and given its expiry) by one Lua script
  call, so concurrent requests on any number of web processes and hosts never lose a count,
  and a request counting several limits pays one round trip.
- The counter is keyed by what was typed (normalised), never by "account found", so a throttle
  reads the same for known and unknown identifiers (A4). Keys are an HMAC of the normalised key,
  so Redis never holds a typed username, email address or IP in clear.
- The window is the clock (time.time()) divided by the period: simple, and tests move it with
  time-machine. A burst straddling a boundary can get up to twice the count; fine for this use.
- Redis errors: every call site chooses (`fail_open`). The default is closed (deny) because
  these are security controls; pass fail_open=True where availability matters more than the
  limit (the login throttle, the mail breaker). Errors are logged with the action, never the key.
- Without REDIS_URL (the SQLite `make run` demo) counters live in Django's cache. Its add + incr
  is not atomic across processes: that fallback is for the single-host demo only.
"""

import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass

import redis
from django.core.cache import cache
from django.utils.crypto import salted_hmac
from django.utils.translation import ngettext

from portal.normalisation import normalise_email
from recovery.app_settings import app_settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "portal:rl:"
# A cautious wait to report when the counter store is down and the call site fails closed.
UNAVAILABLE_RETRY_AFTER = 60
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    """`count` events per `period` seconds, written "5/h", "20/m", "5/15m", "100/30s", "3/d"."""

    count: int
    period: int

    @classmethod
    def parse(cls, value):
        if isinstance(value, Rate):
            return value
        match = _RATE_RE.match(str(value))
        if not match:
            raise ValueError(f"rate {value!r} is not like '5/h' or '5/15m'")
        count, multiplier, unit = match.groups()
        period = int(multiplier or 1) * _UNITS[unit]
        if period <= 0:
            raise ValueError(f"rate {value!r} has an empty period")
        return cls(count=int(count), period=period)

    def __str__(self):
        for unit in ("d", "h", "m", "s"):
            size = _UNITS[unit]
            if self.period % size == 0:
                multiple = self.period // size
                return f"{self.count}/{'' if multiple == 1 else multiple}{unit}"
        return f"{self.count}/{self.period}s"  # pragma: no cover (every period divides by 1 s)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int  # further events allowed in this window
    retry_after: int  # seconds until the window resets, when not allowed; else 0


def normalise_identifier(value):
    """Trim, NFKC, casefold: what people type is matched (and throttled) in this form."""
    return normalise_email(str(value))


def _redis_key(action, key, window):
    digest = salted_hmac(
        "portal.recovery.ratelimit", f"{action}\0{normalise_identifier(key)}", algorithm="sha256"
    ).hexdigest()[:32]
    return f"{KEY_PREFIX}{action}:{digest}:{window}"


def _window(period):
    now = time.time()
    window = int(now // period)
    retry_after = max(math.ceil((window + 1) * period - now), 1)
    return window, retry_after


_clients = {}


def redis_client():
    """One pooled client per REDIS_URL, created on first use (None when there is no Redis)."""
    url = app_settings.REDIS_URL
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        _clients[url] = client
    return client


# INCR every key, giving a new counter its window's expiry: one atomic call for all of them
# (a crash can never leave a counter without its expiry, which would throttle for ever).
_INCREMENT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  counts[i] = count
end
return counts
"""
_scripts = {}


def _increment(counters):
    """Add one to each (redis_key, period) counter; return the new counts, in order.

    With Redis: one script call (EVALSHA) for all the counters, so a request that counts
    several limits pays one round trip.
    """
    client = redis_client()
    if client is None:
        return [_increment_cache(redis_key, period) for redis_key, period in counters]
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_INCREMENT_SCRIPT)
    return script(
        keys=[redis_key for redis_key, _ in counters], args=[period for _, period in counters]
    )


def _increment_cache(redis_key, period):
    cache.add(redis_key, 0, timeout=period)
    try:
        return cache.incr(redis_key)
    except ValueError:  # expired between add and incr
        cache.add(redis_key, 1, timeout=period)
        return 1


def _read(redis_key):
    client = redis_client()
    if client is None:
        return int(cache.get(redis_key) or 0)
    return int(client.get(redis_key) or 0)


def _unavailable(action, fail_open):
    logger.warning(
        "Rate-limit store unavailable for %s; failing %s", action, "open" if fail_open else "closed"
    )
    return Decision(
        allowed=fail_open, remaining=0, retry_after=0 if fail_open else UNAVAILABLE_RETRY_AFTER
    )


def hit(*, action, key, rate, fail_open=False):
    """Count one event for (action, key) and say whether it is within `rate`."""
    [decision] = hit_all([(action, key, rate)], fail_open=fail_open)
    return decision


def hit_all(checks, *, fail_open=False):
    """hit() for several (action, key, rate) at once, in one Redis round trip.

    Every counter is incremented, whatever the others say (constant work). Returns one Decision
    per check, in order.
    """
    checks = [(action, key, Rate.parse(rate)) for action, key, rate in checks]
    if not app_settings.RATELIMIT_ENABLE:
        return [Decision(allowed=True, remaining=rate.count, retry_after=0) for *_, rate in checks]
    windows = [_window(rate.period) for *_, rate in checks]
    try:
        counts = _increment(
            [
                (_redis_key(action, key, window), rate.period)
                for (action, key, rate), (window, _) in zip(checks, windows, strict=True)
            ]
        )
    except redis.RedisError:
        return [_unavailable(action, fail_open) for action, *_ in checks]
    decisions = []
    for (_, _, rate), (_, retry_after), count in zip(checks, windows, counts, strict=True):
        allowed = count <= rate.count
        decisions.append(
            Decision(
                allowed=allowed,
                remaining=max(rate.count - count, 0),
                retry_after=0 if allowed else retry_after,
            )
        )
    return decisions


def peek(*, action, key, rate, fail_open=False):
    """Would the next hit() be allowed? Counts nothing ("is this account throttled now?")."""
    rate = Rate.parse(rate)
    if not app_settings.RATELIMIT_ENABLE:
        return Decision(allowed=True, remaining=rate.count, retry_after=0)
    window, retry_after = _window(rate.period)
    try:
        count = _read(_redis_key(action, key, window))
    except redis.RedisError:
        return _unavailable(action, fail_open)
    allowed = count < rate.count
    return Decision(
        allowed=allowed,
        remaining=max(rate.count - count, 0),
        retry_after=0 if allowed else retry_after,
    )


def reset(*, action, key, rate):
    """Forget (action, key)'s current window, e.g. a successful reset clears the login throttle.

    Takes the same `rate` as hit(): the period names the window's key.
    """
    rate = Rate.parse(rate)
    window, _ = _window(rate.period)
    redis_key = _redis_key(action, key, window)
    client = redis_client()
    try:
        if client is None:
            cache.delete(redis_key)
        else:
            client.delete(redis_key)
    except redis.RedisError:
        logger.warning("Rate-limit store unavailable; could not reset %s", action)


def mail_budget_available():
    """Count one outgoing email against RATELIMIT_MAIL_GLOBAL; False means defer it.

    Fails open: if Redis is down the breaker cannot count, and holding back every email would
    hurt families more than a burst would hurt the relay.
    """
    decision = hit(
        action="mail.global", key="all", rate=app_settings.RATELIMIT_MAIL_GLOBAL, fail_open=True
    )
    return decision.allowed


def client_ip(request):
    """The client's address as rate limits see it: IPv4 as is, IPv6 as its /64, else "unknown".

    REMOTE_ADDR is trusted because portal.middleware.TrustedProxyMiddleware has already replaced
    it with the trusted proxy's view (and dropped forgeable headers). One IPv6 host usually owns
    a whole /64, so counting single addresses would let it rotate freely.
    """
    raw = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def retry_after_message(seconds):
    """'Please try again in N minutes.' (or hours), rounded up, never '0 minutes'."""
    seconds = max(math.ceil(seconds), 1)
    if seconds <= 3600:
        minutes = math.ceil(seconds / 60)
        return ngettext(
            "Please try again in %(count)d minute.",
            "Please try again in %(count)d minutes.",
            minutes,
        ) % {"count": minutes}
    hours = math.ceil(seconds / 3600)
    return ngettext(
        "Please try again in %(count)d hour.",
        "Please try again in %(count)d hours.",
        hours,
    ) % {"count": hours}
