"""Workers prove they are alive by writing a timestamp to the shared cache; /healthz reads it."""

import time

from django.core.cache import cache

HEARTBEAT_KEY = "worker-heartbeat"
HEARTBEAT_INTERVAL_SECONDS = 10


def record_heartbeat(now=None):
    cache.set(HEARTBEAT_KEY, now if now is not None else time.time(), timeout=None)


def seconds_since_heartbeat(now=None):
    """Seconds since any worker last wrote its heartbeat, or None if none ever has."""
    last = cache.get(HEARTBEAT_KEY)
    if last is None:
        return None
    return max(0.0, (now if now is not None else time.time()) - float(last))
