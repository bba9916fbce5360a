"""/healthz: what a load balancer or monitor polls. Cheap, and never says why something failed.

200 when the database and Redis answer, 503 when either does not. Worker liveness and the
outbox backlog are reported but do not fail the check: the web tier can still serve pages
(and queue mail in the outbox) without workers.
"""

import functools
import logging

import redis
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from recovery.heartbeat import HEARTBEAT_INTERVAL_SECONDS, seconds_since_heartbeat
from recovery.selectors import oldest_unsent_email_age_seconds

logger = logging.getLogger(__name__)

# A worker that missed three heartbeats in a row is considered stale.
WORKER_STALE_SECONDS = 3 * HEARTBEAT_INTERVAL_SECONDS
REDIS_TIMEOUT_SECONDS = 1.0


@functools.lru_cache(maxsize=4)
def _redis_client(url):
    # One client (and connection pool) per URL, reused across polls.
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )


def check_database(*, alias="default"):
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.warning("healthz: database check failed", exc_info=True)
        return "error"
    return "ok"


def check_redis():
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "not configured"
    try:
        _redis_client(url).ping()
    except Exception:
        logger.warning("healthz: Redis check failed", exc_info=True)
        return "error"
    return "ok"


def check_workers():
    try:
        age = seconds_since_heartbeat()
    except Exception:
        logger.warning("healthz: could not read the worker heartbeat", exc_info=True)
        age = None
    if age is None:
        return {"status": "none", "last_heartbeat_seconds": None}
    status = "ok" if age <= WORKER_STALE_SECONDS else "stale"
    return {"status": status, "last_heartbeat_seconds": int(age)}


@never_cache
def healthz(request):
    database = check_database()
    redis_status = check_redis()
    # The heartbeat lives in the cache (Redis outside the demo): skip it when Redis is down
    # rather than wait for a second timeout.
    if redis_status == "error":
        workers = {"status": "none", "last_heartbeat_seconds": None}
    else:
        workers = check_workers()
    outbox_age = None
    if database == "ok":
        try:
            outbox_age = oldest_unsent_email_age_seconds()
        except Exception:
            logger.warning("healthz: could not read the outbox", exc_info=True)
    healthy = database == "ok" and redis_status != "error"
    return JsonResponse(
        {
            "database": database,
            "redis": redis_status,
            "workers": workers,
            "outbox_oldest_unsent_seconds": outbox_age,
        },
        status=200 if healthy else 503,
    )
