"""The Help request machinery (recovery.help_requests, recovery.resolution): one row, one task,
resolved once, by one worker, and never stuck."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from recovery.help_requests import (
    HelpRequestThrottled,
    submit_help_request,
    sweep_help_requests,
)
from recovery.models import AuditEvent, HelpRequest
from recovery.resolution import resolve_help_request
from tests.recovery.test_outbox import queued_task_messages
from tests.recovery.test_password_reset import clear_help_counters
from tests.support.worker import purge_broker


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


def test_the_task_carries_only_the_row_id_and_is_sent_on_commit(transactional_db, broker):
    with transaction.atomic():
        submit_help_request(
            kind="forgot_password", identifier="rosa.nguyen", request=make_request()
        )
        assert broker.llen("email") == 0, "enqueued before the commit"
    [(raw, headers, args, kwargs)] = queued_task_messages(broker, "email")
    row = HelpRequest.objects.get()
    assert headers["task"] == "recovery.tasks.resolve_help_request"
    assert args == [row.pk] and kwargs == {}
    assert b"rosa" not in raw


def test_a_rolled_back_request_queues_nothing(transactional_db, broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        submit_help_request(kind="forgot_password", identifier="x", request=make_request())
        raise RuntimeError
    assert broker.llen("email") == 0 and not HelpRequest.objects.exists()


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


def test_a_request_is_resolved_once(db):
    submit_help_request(kind="forgot_password", identifier="nobody", request=make_request())
    row = HelpRequest.objects.get()
    assert resolve_help_request(help_request_id=row.pk) == "unknown"
    assert resolve_help_request(help_request_id=row.pk) is None
    row.refresh_from_db()
    assert row.identifier == "" and row.resolved_at is not None
    assert AuditEvent.objects.filter(action="help_request.resolved").count() == 1


def test_a_request_the_flow_cannot_resolve_is_closed_not_retried_for_ever(db):
    row = HelpRequest.objects.create(kind="no_such_kind", identifier="x", identifier_hash="h")
    assert resolve_help_request(help_request_id=row.pk) == "error"
    row.refresh_from_db()
    assert row.outcome == "error" and row.resolved_at is not None and row.identifier == ""


def test_the_sweep_re_enqueues_only_stale_unresolved_requests(transactional_db, broker, settings):
    settings.OUTBOX_STALE_SECONDS = 120
    old = HelpRequest.objects.create(kind="forgot_password", identifier="a", identifier_hash="a")
    done = HelpRequest.objects.create(
        kind="forgot_password", identifier="", identifier_hash="b", resolved_at=timezone.now()
    )
    fresh = HelpRequest.objects.create(kind="forgot_password", identifier="c", identifier_hash="c")
    past = timezone.now() - timedelta(seconds=600)
    HelpRequest.objects.filter(pk__in=[old.pk, done.pk]).update(created_at=past)
    assert sweep_help_requests() == 1
    assert [args for *_, args, _ in queued_task_messages(broker, "email")] == [[old.pk]]
    assert fresh.resolved_at is None
