"""The retention purge (recovery.retention, checklist O10): each kind of record goes exactly
when its own period has passed, and everything younger stays; beat runs it daily through the
batch queue."""

import itertools
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from portal.models import User
from recovery import retention
from recovery.models import (
    AuditEvent,
    HelpRequest,
    IssuedToken,
    ManualRequest,
    ManualRequestEvent,
    OutboundEmail,
)
from tests.support.waiting import wait_until

NOW = timezone.now().replace(microsecond=0)
_serial = itertools.count(1)


def days_ago(days, *, hours=0):
    return NOW - timedelta(days=days, hours=hours)


def manual_request(*, status, closed_at=None, created_at=None, events=2):
    with time_machine.travel(created_at or days_ago(800), tick=False):
        row = ManualRequest.objects.create(
            reference=f"R-{next(_serial):06d}",
            student_first_name="Ana",
            student_last_name="Garcia",
            student_id="123456",
            request_type=ManualRequest.RequestType.RESET,
            request_for=ManualRequest.RequestFor.PARENT,
            answer_address="family@example.org",
            status=status,
            closed_at=closed_at,
        )
        for number in range(events):
            ManualRequestEvent.objects.create(request=row, action=f"note.{number}")
    return row


def audit_event(at):
    with time_machine.travel(at, tick=False):
        return AuditEvent.objects.create(action="test.event")


def help_request(*, created_at, resolved_at):
    with time_machine.travel(created_at, tick=False):
        return HelpRequest.objects.create(
            kind=HelpRequest.Kind.FORGOT_PASSWORD,
            identifier_hash="x" * 64,
            resolved_at=resolved_at,
        )


def outbound_email(*, created_at, status):
    with time_machine.travel(created_at, tick=False):
        return OutboundEmail.objects.create(
            kind="welcome", to_address="a@example.org", status=status
        )


def issued_token(user, *, issued_at, expires_at, used_at=None, revoked_at=None):
    return IssuedToken.objects.create(
        user=user,
        purpose=IssuedToken.Purpose.RESET,
        token_id_hash=f"{next(_serial):064d}",
        issued_at=issued_at,
        expires_at=expires_at,
        used_at=used_at,
        revoked_at=revoked_at,
    )


def ids(model):
    return set(model.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_manual_requests_closed_past_the_period_go_with_their_history():
    period = settings.MANUAL_REQUEST_RETENTION_DAYS
    gone = [
        manual_request(status="resolved", closed_at=days_ago(period, hours=1)),
        manual_request(status="rejected", closed_at=days_ago(period + 300), events=3),
    ]
    kept = [
        manual_request(status="resolved", closed_at=days_ago(period - 1)),
        manual_request(status="rejected", closed_at=days_ago(period, hours=-1)),
        # Open requests stay, however old: a family is still waiting on them.
        manual_request(status="new", created_at=days_ago(period + 500)),
        manual_request(status="in_progress", created_at=days_ago(period + 500)),
        manual_request(status="waiting", created_at=days_ago(period + 500)),
    ]

    counts = retention.purge_old_records(now=NOW)

    assert ids(ManualRequest) == {row.pk for row in kept}
    assert counts["manual_requests"] == 2
    assert counts["manual_request_events"] == 5
    assert set(ManualRequestEvent.objects.values_list("request_id", flat=True)) == {
        row.pk for row in kept
    }
    assert not ManualRequestEvent.objects.filter(request_id__in=[row.pk for row in gone]).exists()


@pytest.mark.django_db
def test_audit_events_older_than_the_period_go():
    period = settings.AUDIT_RETENTION_DAYS
    audit_event(days_ago(period, hours=1))
    audit_event(days_ago(period * 2))
    kept = {audit_event(days_ago(period, hours=-1)).pk, audit_event(days_ago(1)).pk}

    counts = retention.purge_old_records(now=NOW)

    assert counts["audit_events"] == 2
    purge_event = AuditEvent.objects.get(action="retention.purged")
    assert ids(AuditEvent) == kept | {purge_event.pk}
    assert purge_event.detail == counts


@pytest.mark.django_db
def test_help_requests_resolved_more_than_30_days_ago_go():
    help_request(created_at=days_ago(40), resolved_at=days_ago(30, hours=1))
    kept = {
        help_request(created_at=days_ago(40), resolved_at=days_ago(29)).pk,
        # Never resolved: the sweeper still owes it a worker, so it stays.
        help_request(created_at=days_ago(400), resolved_at=None).pk,
    }

    counts = retention.purge_old_records(now=NOW)

    assert counts["help_requests"] == 1
    assert ids(HelpRequest) == kept


@pytest.mark.django_db
def test_sent_and_failed_emails_older_than_90_days_go_queued_ones_stay():
    outbound_email(created_at=days_ago(91), status="sent")
    outbound_email(created_at=days_ago(200), status="failed")
    kept = {
        outbound_email(created_at=days_ago(89), status="sent").pk,
        outbound_email(created_at=days_ago(89), status="failed").pk,
        outbound_email(created_at=days_ago(200), status="queued").pk,
        outbound_email(created_at=days_ago(200), status="sending").pk,
    }

    counts = retention.purge_old_records(now=NOW)

    assert counts["outbound_emails"] == 2
    assert ids(OutboundEmail) == kept


@pytest.mark.django_db
def test_tokens_used_revoked_or_expired_more_than_90_days_ago_go():
    user = User.objects.create_user(username="rosa.nguyen")
    old = days_ago(120)
    issued_token(user, issued_at=old, expires_at=days_ago(91))
    issued_token(user, issued_at=old, expires_at=days_ago(10), used_at=days_ago(91))
    issued_token(user, issued_at=old, expires_at=days_ago(10), revoked_at=days_ago(95))
    kept = {
        issued_token(user, issued_at=old, expires_at=days_ago(89)).pk,
        issued_token(user, issued_at=old, expires_at=days_ago(10), used_at=days_ago(89)).pk,
        issued_token(user, issued_at=old, expires_at=days_ago(10), revoked_at=days_ago(30)).pk,
        # Still outstanding (a long-lived district setting): never purged while it works.
        issued_token(user, issued_at=old, expires_at=NOW + timedelta(days=1)).pk,
    }

    counts = retention.purge_old_records(now=NOW)

    assert counts["ledger_rows"] == 3
    assert ids(IssuedToken) == kept


@pytest.mark.django_db
def test_the_purge_works_in_batches_past_one_batch(monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 3)
    for _ in range(7):
        audit_event(days_ago(settings.AUDIT_RETENTION_DAYS + 1))
    keep = audit_event(days_ago(2))

    counts = retention.purge_old_records(now=NOW)

    assert counts["audit_events"] == 7
    assert ids(AuditEvent) - set(
        AuditEvent.objects.filter(action="retention.purged").values_list("pk", flat=True)
    ) == {keep.pk}


@pytest.mark.django_db
def test_without_now_the_purge_uses_the_clock():
    audit_event(days_ago(settings.AUDIT_RETENTION_DAYS + 1))
    kept = audit_event(days_ago(settings.AUDIT_RETENTION_DAYS - 1))
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        counts = retention.purge_old_records()
    assert counts["audit_events"] == 2
    assert not AuditEvent.objects.filter(pk=kept.pk).exists()


def test_beat_runs_the_purge_daily_on_the_batch_queue():
    from celery.schedules import crontab

    from recovery import tasks

    [entry] = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "recovery.tasks.purge_old_records"
    ]
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {45}
    assert entry["options"]["queue"] == "batch"
    assert tasks.purge_old_records.name == entry["task"]


def test_a_real_worker_runs_the_task(start_worker):
    manual_request(status="resolved", closed_at=timezone.now() - timedelta(days=1000))
    audit_event(timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS + 5))
    fresh = audit_event(timezone.now() - timedelta(days=1))
    start_worker()

    from recovery.tasks import purge_old_records

    # As beat sends it: the entry's options put it on the batch queue.
    purge_old_records.apply_async(**settings.CELERY_BEAT_SCHEDULE["purge-old-records"]["options"])

    wait_until(
        lambda: AuditEvent.objects.filter(action="retention.purged").exists(),
        timeout=30,
        message="the worker's purge",
    )
    assert not ManualRequest.objects.exists()
    assert set(
        AuditEvent.objects.exclude(action="retention.purged").values_list("pk", flat=True)
    ) == {fresh.pk}
