"""Batch work, on the `batch` queue so it never delays a parent's email (SPEC §5)."""

import logging

from celery import shared_task
from django.conf import settings

from portal.provisioning import provision_accounts
from portal.roster.importer import import_roster
from portal.roster.summary import ImportStopped
from recovery.emails import deliver_outbound_emails

logger = logging.getLogger(__name__)


@shared_task(name="portal.tasks.nightly_roster")
def nightly_roster():
    """Beat's nightly job: import the SIS drop (when ROSTER_DROP_PATH is set), then provision.

    A failed import stops the night's work: provisioning from a half-known roster could
    create accounts for people the SIS no longer lists.
    """
    if settings.ROSTER_DROP_PATH:
        try:
            summary = import_roster(settings.ROSTER_DROP_PATH)
        except ImportStopped as error:
            logger.error("Nightly roster import stopped, nothing applied: %s", error)
            return {"import": "failed"}
        for line in summary.lines():
            logger.info("Nightly roster import: %s", line)
    provisioned = provision_accounts()
    for line in provisioned.lines():
        logger.info("Nightly provisioning: %s", line)
    return {"import": "ok" if settings.ROSTER_DROP_PATH else "skipped"}


@shared_task(name="portal.tasks.send_bulk_emails", ignore_result=True)
def send_bulk_emails(email_ids):
    """Deliver a chunk of bulk outbox rows (a night's welcome emails) as one outbox batch.

    Published on the `bulk_email` queue by portal.provisioning. The rows go through the
    outbox's own claim, so a redelivered chunk or a sweeper copy sends nothing twice.
    """
    deliver_outbound_emails(email_ids=email_ids)
