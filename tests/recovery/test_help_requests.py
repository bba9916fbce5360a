"""The Help request machinery (recovery.help_requests, recovery.resolution): one row per
request, a resolver task woken on commit (one for many requests), every row resolved once, by
one worker, and never stuck."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from recovery import ratelimit
from recovery.help_requests import (
    RESOLVER_GATHER_SECONDS,
    RESOLVER_PENDING_KEY,
    HelpRequestThrottled,
    submit_help_request,
    sweep_help_requests,
)
from recovery.models import AuditEvent, HelpRequest
from recovery.resolution import resolve_help_requests
from tests.recovery.test_outbox import queued_task_messages
from tests.recovery.test_password_reset import clear_help_counters
from tests.recovery.test_password_reset_delivery import broker_down
from tests.support.worker import purge_broker

RESOLVER_TASK = "recovery.tasks.resolve_help_requests"


@pytest.fixture(autouse=True)
def fresh_counters():
    clear_help_counters()
    yield
    clear_help_counters()


@pytest.fixture
def broker():
    import redis

    purge_broker(settings.CELERY_BROKER_URL)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    purge_broker(settings.CELERY_BROKER_URL)
    client.close()


def make_request(**meta):
    return RequestFactory().post("/help/forgot-password/", REMOTE_ADDR="192.0.2.5", **meta)


def submit(identifier="rosa.nguyen", kind="forgot_password"):
    submit_help_request(kind=kind, identifier=identifier, request=make_request())


def make_rows(count, kind="forgot_password"):
    return HelpRequest.objects.bulk_create(
        [
            HelpRequest(kind=kind, identifier=f"nobody{n}", identifier_hash=f"h{n}")
            for n in range(count)
        ]
    )


def test_the_resolver_task_is_sent_on_commit_and_carries_nothing(transactional_db, broker):
    with transaction.atomic():
        submit(identifier="rosa.nguyen")
        assert broker.llen("email") == 0, "enqueued before the commit"
    [(raw, headers, args, kwargs)] = queued_task_messages(broker, "email")
    assert headers["task"] == RESOLVER_TASK
    assert args == [] and kwargs == {}
    assert b"rosa" not in raw
    # It starts a moment later, so the requests arriving meanwhile share it.
    assert headers["eta"] is not None and RESOLVER_GATHER_SECONDS > 0


def test_requests_share_the_pending_resolver_until_it_starts(transactional_db, broker):
    for n in range(5):
        submit(identifier=f"person{n}")
    assert len(queued_task_messages(broker, "email")) == 1
    # The task clears the flag before it claims rows: the next request wakes another.
    assert resolve_help_requests() == 5
    submit(identifier="late")
    assert len(queued_task_messages(broker, "email")) == 2
    assert resolve_help_requests() == 1


def test_a_rolled_back_request_queues_nothing(transactional_db, broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        submit(identifier="x")
        raise RuntimeError
    assert broker.llen("email") == 0 and not HelpRequest.objects.exists()


def test_a_failed_publish_keeps_the_row_and_leaves_no_flag_behind(transactional_db, caplog):
    with broker_down():
        submit(identifier="rosa.nguyen")
    assert HelpRequest.objects.filter(resolved_at__isnull=True).count() == 1
    assert "Could not enqueue the Help resolver" in caplog.text and "rosa" not in caplog.text
    # So the next request tries the broker again rather than trusting a task that never left.
    assert not ratelimit.redis_client().exists(RESOLVER_PENDING_KEY)


def test_the_row_keeps_language_ip_and_a_clean_user_agent(db):
    from django.utils import translation

    with translation.override("vi"):
        submit_help_request(
            kind="forgot_username",
            identifier="Someone@Example.org",
            request=make_request(HTTP_USER_AGENT="Agent\x00\r\nX" + "y" * 400),
        )
    row = HelpRequest.objects.get()
    assert (row.kind, row.language, row.ip) == ("forgot_username", "vi", "192.0.2.5")
    assert row.user_agent.startswith("AgentX") and len(row.user_agent) == 255


def test_throttled_requests_raise_with_the_wait_and_write_no_row(db, settings):
    settings.RATELIMIT_RESET_PER_IDENTIFIER = "1/h"
    submit_help_request(kind="forgot_password", identifier="a", request=make_request())
    with pytest.raises(HelpRequestThrottled) as raised:
        submit_help_request(kind="forgot_password", identifier="A ", request=make_request())
    assert 1 <= raised.value.retry_after <= 3600
    assert HelpRequest.objects.count() == 1
    assert AuditEvent.objects.filter(action="help_request.throttled").count() == 1


def test_a_request_is_resolved_once_and_logged_as_made(db):
    submit(identifier="nobody")
    row = HelpRequest.objects.get()
    assert resolve_help_requests() == 1
    assert resolve_help_requests() == 0
    row.refresh_from_db()
    assert row.identifier == "" and row.resolved_at is not None and row.outcome == "unknown"
    submitted = AuditEvent.objects.get(action="help_request.submitted")
    assert submitted.at == row.created_at and submitted.ip == "192.0.2.5"
    assert submitted.identifier_hash == row.identifier_hash
    resolved = AuditEvent.objects.get(action="help_request.resolved")
    assert resolved.detail == {
        "kind": "forgot_password",
        "outcome": "unknown",
        "help_request": row.pk,
    }


def test_a_request_the_flow_cannot_resolve_is_closed_and_the_batch_goes_on(db):
    bad = HelpRequest.objects.create(kind="no_such_kind", identifier="x", identifier_hash="h")
    [good] = make_rows(1)
    assert resolve_help_requests() == 2
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.outcome == "error" and bad.resolved_at is not None and bad.identifier == ""
    assert good.outcome == "unknown"


def test_every_row_is_resolved_in_batches(db):
    make_rows(23)
    assert resolve_help_requests(batch_size=5) == 23
    assert not HelpRequest.objects.filter(resolved_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="help_request.resolved").count() == 23


def test_a_long_backlog_is_handed_to_a_fresh_task(transactional_db, broker):
    make_rows(12)
    assert resolve_help_requests(batch_size=5, max_batches=2) == 10
    [(_, headers, args, _)] = queued_task_messages(broker, "email")
    assert headers["task"] == RESOLVER_TASK and args == []
    assert resolve_help_requests(batch_size=5, max_batches=2) == 2


def test_resolvers_side_by_side_resolve_each_row_once(transactional_db):
    make_rows(60)
    counts = []

    def resolver():
        try:
            counts.append(resolve_help_requests(batch_size=4))
        finally:
            connection.close()

    threads = [threading.Thread(target=resolver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 60
    assert AuditEvent.objects.filter(action="help_request.resolved").count() == 60
    assert not HelpRequest.objects.filter(resolved_at__isnull=True).exists()


def test_the_sweep_queues_a_resolver_only_for_stale_unresolved_requests(
    transactional_db, broker, settings
):
    settings.OUTBOX_STALE_SECONDS = 120
    old = HelpRequest.objects.create(kind="forgot_password", identifier="a", identifier_hash="a")
    done = HelpRequest.objects.create(
        kind="forgot_password", identifier="", identifier_hash="b", resolved_at=timezone.now()
    )
    HelpRequest.objects.create(kind="forgot_password", identifier="c", identifier_hash="c")
    past = timezone.now() - timedelta(seconds=600)
    HelpRequest.objects.filter(pk__in=[old.pk, done.pk]).update(created_at=past)
    assert sweep_help_requests() == 1
    [(_, headers, args, _)] = queued_task_messages(broker, "email")
    assert headers["task"] == RESOLVER_TASK and args == []
    HelpRequest.objects.filter(pk=old.pk).update(resolved_at=timezone.now())
    assert sweep_help_requests() == 0
    assert len(queued_task_messages(broker, "email")) == 1
