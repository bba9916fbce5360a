"""The request side of every Help form: constant work, whatever was typed (SPEC §5, §6.1).

    try:
        submit_help_request(kind=HelpRequest.Kind.FORGOT_PASSWORD, identifier=username,
                            request=request)
    except HelpRequestThrottled as throttled:
        ...  # the 429 page, "try again in N minutes" (throttled.retry_after seconds)

A submission never looks an account up. It counts the rate limits (per normalised identifier
and per client IP, both always incremented, in one Redis round trip; keyed by what was typed,
so a throttle reads the same for known and unknown identifiers), writes one HelpRequest row
(one INSERT, committed on its own) and makes sure a resolver task is on its way. The worker
(recovery.resolution) finds the account, decides what, if anything, to send, and writes the
request's audit events, dated when it was made. So the page cannot tell whether an account
exists, in content or in time, and a broker or SMTP outage cannot change it.

One task per request would cost every request a Celery publish (the most expensive thing in
it) and every resolution a task of its own. Instead a Redis flag (RESOLVER_PENDING_KEY) says
"a resolver task is queued and has not started": a request publishes one only if it could set
the flag, and that task starts RESOLVER_GATHER_SECONDS later, so under load the requests of
that moment share it. The task clears the flag before it claims rows, so a row committed after
the clear sets it again and publishes the next task: none is left behind. If a publish fails
(the broker is down) the flag is cleared again, it expires anyway, and beat's
sweep_help_requests queues a resolver for anything left unresolved.
"""

import logging
from datetime import timedelta

import redis
from celery import current_app
from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone, translation

from recovery import ratelimit
from recovery.app_settings import app_settings
from recovery.audit import hash_identifier, record_event, request_ip, request_user_agent
from recovery.models import HelpRequest

logger = logging.getLogger(__name__)

Kind = HelpRequest.Kind
_IDENTIFIER_MAX = HelpRequest._meta.get_field("identifier").max_length
RESOLVER_TASK = "recovery.tasks.resolve_help_requests"
RESOLVER_PENDING_KEY = "portal:help:resolver-pending"
# A request that publishes the resolver task has it start this much later, so the requests
# arriving meanwhile ride on it: under load one task (and one publish) serves a whole batch
# instead of one or two rows. A quarter of a second is nothing next to email delivery.
RESOLVER_GATHER_SECONDS = 0.25


class HelpRequestThrottled(Exception):
    """Too many Help requests for this identifier or from this network; nothing was written
    but the audit event. `retry_after` is in seconds."""

    def __init__(self, retry_after):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = int(retry_after)


def submit_help_request(*, kind, identifier, request):
    """Count, record and queue one Help request; raise HelpRequestThrottled past a limit.

    `identifier` is what the form accepted (a username or an email address); forms validate
    it, this only stores it. Returns None: there is nothing the caller may learn.
    """
    kind = Kind(kind)
    identifier = str(identifier)[:_IDENTIFIER_MAX]
    retry_after = _throttled_for(kind=kind, identifier=identifier, request=request)
    if retry_after:
        record_event(
            action="help_request.throttled",
            request=request,
            identifier=identifier,
            detail={"kind": kind.value, "retry_after": retry_after},
        )
        raise HelpRequestThrottled(retry_after)
    _insert_help_request(
        kind=kind.value,
        identifier=identifier,
        identifier_hash=hash_identifier(identifier),
        ip=request_ip(request),
        user_agent=request_user_agent(request),
        language=_language(),
        created_at=timezone.now(),
        outcome="",
    )
    # Immediately in autocommit; after the caller's commit inside a transaction.
    transaction.on_commit(wake_resolver)


def _insert_help_request(**values):
    """INSERT one HelpRequest row: what objects.create() does, without building the query
    afresh on every call (that costs more CPU than anything else in the request but the rate
    limits). Columns and value conversion come from the model's own fields."""
    fields = [HelpRequest._meta.get_field(name) for name in values]
    connection = connections[router.db_for_write(HelpRequest)]
    quote = connection.ops.quote_name
    sql = _INSERT_SQL.get(tuple(values))
    if sql is None:
        # Only the model's own (quoted) table and column names go into the text; values are
        # parameters.
        sql = _INSERT_SQL[tuple(values)] = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
            quote(HelpRequest._meta.db_table),
            ", ".join(quote(field.column) for field in fields),
            ", ".join(["%s"] * len(fields)),
        )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


_INSERT_SQL = {}


def _throttled_for(*, kind, identifier, request):
    """Seconds to wait, or 0. Both counters count every request: constant work."""
    decisions = ratelimit.hit_all(
        [
            (
                f"help.{kind.value}.identifier",
                identifier,
                app_settings.RATELIMIT_RESET_PER_IDENTIFIER,
            ),
            # One per-IP counter for both forms: one network's total Help traffic.
            ("help.ip", ratelimit.client_ip(request), app_settings.RATELIMIT_RESET_PER_IP),
        ]
    )
    return max((d.retry_after for d in decisions if not d.allowed), default=0)


def _language():
    known = {code for code, _ in settings.LANGUAGES}
    language = translation.get_language() or ""
    if language in known:
        return language
    base = language.split("-")[0]
    return base if base in known else settings.LANGUAGE_CODE


def wake_resolver():
    """Make sure a resolver task is queued; publish one only if none is pending.

    Returns True if a task is on its way. Without Redis (the SQLite demo) every call publishes.
    """
    client = ratelimit.redis_client()
    if client is not None:
        try:
            pending = not client.set(
                RESOLVER_PENDING_KEY, 1, nx=True, ex=settings.OUTBOX_STALE_SECONDS
            )
        except redis.RedisError:
            pending = False  # cannot tell: publish, a spare task costs one empty claim
        if pending:
            return True
    if enqueue_resolver(countdown=RESOLVER_GATHER_SECONDS):
        return True
    clear_resolver_pending()  # so the next request tries the broker again
    return False


def clear_resolver_pending():
    """The resolver task calls this before it claims rows (see the module docstring)."""
    client = ratelimit.redis_client()
    if client is None:
        return
    try:
        client.delete(RESOLVER_PENDING_KEY)
    except redis.RedisError:
        logger.warning("Could not clear the Help resolver flag; it expires on its own.")


def enqueue_resolver(*, countdown=0):
    """Publish one resolve_help_requests task, to start `countdown` seconds from now; True if
    the broker took it.

    A broker failure is logged and swallowed: the person's page never changes, and the sweeper
    queues a resolver once the broker is back.
    """
    try:
        # By name (routed to `email` by CELERY_TASK_ROUTES): the request side need not import
        # the tasks, which import this module's sweeper.
        current_app.send_task(
            RESOLVER_TASK,
            countdown=countdown or None,
        )
    except Exception as error:
        logger.warning(
            "Could not enqueue the Help resolver (%s); the sweeper will retry.",
            type(error).__name__,
        )
        return False
    return True


def sweep_help_requests(*, now=None):
    """Queue a resolver if any Help request is still unresolved OUTBOX_STALE_SECONDS after it
    was made; return how many such requests there are (at most OUTBOX_SWEEP_BATCH counted).

    Beat runs this every OUTBOX_SWEEP_SECONDS: it heals a lost publish, a worker killed midway
    (its transaction rolled back) and a broker that was down.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    stale = HelpRequest.objects.filter(
        resolved_at__isnull=True, created_at__lt=stale_before
    ).values("pk")[: settings.OUTBOX_SWEEP_BATCH]
    count = len(stale)
    if count:
        enqueue_resolver()
        logger.info("Help request sweep found %s stale request(s); resolver queued.", count)
    return count
