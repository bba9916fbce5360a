"""Celery tasks of the recovery app: ids in, services do the work (SPEC §5).

Task arguments are outbox row ids only, never an address, a token or a password: anything in a
task message sits in Redis in clear and shows up in worker logs.
"""

from celery import shared_task

from recovery import emails


@shared_task(ignore_result=True)
def send_outbound_email(*email_ids):
    """Send transactional emails (queue `email`): resets, reminders, notices. One id, or the
    ids of emails written in one transaction (up to outbox.SEND_BATCH), sent as one batch."""
    emails.deliver_outbound_emails(email_ids=email_ids)


@shared_task(ignore_result=True)
def send_bulk_email(*email_ids):
    """Send bulk emails (queue `bulk_email`), e.g. a nightly batch's welcome emails; ids as
    send_outbound_email."""
    emails.deliver_outbound_emails(email_ids=email_ids)


@shared_task(ignore_result=True)
def sweep_outbox():
    """Beat, every OUTBOX_SWEEP_SECONDS: re-enqueue emails no worker picked up in time."""
    emails.sweep_outbox()


@shared_task(ignore_result=True)
def resolve_help_requests():
    """Resolve the pending Help form submissions (queue `email`): find each account, send
    what is due. No arguments: it drains the table (recovery.resolution)."""
    from recovery.resolution import resolve_help_requests as resolve

    resolve()


@shared_task(ignore_result=True)
def resolve_help_request(help_request_id):
    """The earlier one-task-per-request form: messages still queued by the previous release
    drain the table like the new task (the id is not needed any more)."""
    resolve_help_requests()


@shared_task(ignore_result=True)
def sweep_help_requests():
    """Beat, every OUTBOX_SWEEP_SECONDS: re-enqueue Help requests no worker resolved in time."""
    from recovery.help_requests import sweep_help_requests as sweep

    sweep()


@shared_task(ignore_result=True)
def purge_old_records():
    """Beat, daily on queue `batch`: delete records past their retention (recovery.retention)."""
    from recovery.retention import purge_old_records as purge

    purge()
