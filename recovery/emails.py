"""Sending email through the outbox (SPEC §5): the one way this project sends mail.

    queue_email(kind=..., to_address=..., user=..., token_purpose=..., context=...)

writes an `OutboundEmail` row in the caller's transaction and, once that transaction commits,
enqueues a Celery task carrying only row ids: the rows one transaction wrote share tasks of up
to outbox.SEND_BATCH ids. A worker claims a task's rows with one atomic UPDATE, and for each
mints the token (for action emails) at send time, renders subject, text and HTML from
templates in the recipient's language, sends through Django's default mailer (over the worker
process's one SMTP connection) and marks the row sent. Transient failures (SMTP 4xx,
refused/reset connections, timeouts) go back to the queue with capped exponential backoff, row
by row; permanent ones (SMTP 5xx for the message or recipient) and emails out of attempts are
marked failed. Past the global mail breaker (RATELIMIT_MAIL_GLOBAL) claimed rows are put back
untried and enqueued again after a while: mail waits in the outbox, nothing is dropped. Beat's
`sweep_outbox` re-enqueues rows that no worker picked up within OUTBOX_STALE_SECONDS.

Guarantees:

* Durable: an email exists iff the change that caused it committed. A broker outage at commit
  time only delays it: the enqueue error is logged (by id) and swallowed, the caller's request
  succeeds, and the sweeper enqueues the row once the broker is back.
* At least once: a queued email is delivered unless it fails permanently or runs out of
  attempts (then it is `failed`, with a short error code, and logged).
* Duplicates are rare and bounded. Redelivered tasks and sweeper re-enqueues are harmless
  (the claim lets one through and the row is sent once). A queue slower to drain than
  OUTBOX_STALE_SECONDS (a big nightly bulk batch) does get extra task copies from the sweeper,
  at most OUTBOX_SWEEP_BATCH per sweep, each costing one no-op UPDATE. A second *send*
  happens only when a worker dies, or stalls past OUTBOX_STALE_SECONDS, after the SMTP server
  accepted the message but before the row was marked sent (each row is marked as soon as it
  is sent, so that is one email per worker process); the next worker then reclaims the stale
  row and sends again. The rest of a dead worker's batch was never sent and is reclaimed the
  same way. Claims and sent marks commit without waiting for PostgreSQL's disk flush
  (recovery.outbox), so a database crash can lose the last of them and cause the same. Both
  copies carry the same Message-ID. For an action email the second copy's token supersedes
  the first (a newer link of a purpose revokes the older), so only the newest link works.
* Never in the outbox, a task or a log line: tokens, passwords, links (the context is checked)
  or, in logs and task arguments, the address.
"""

import json
import logging
import random
import re
import smtplib
import socket
import time
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template

from recovery import mailer, outbox, ratelimit
from recovery.app_settings import app_settings
from recovery.links import absolute_link
from recovery.models import OutboundEmail
from recovery.rendering import build_message, render_outbound_email, template_names

logger = logging.getLogger(__name__)
SEND_TASKS = {
    OutboundEmail.Stream.TRANSACTIONAL: "recovery.tasks.send_outbound_email",
    OutboundEmail.Stream.BULK: "recovery.tasks.send_bulk_email",
}

TOKEN_PURPOSES = ("reset", "activation", "email_confirm")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Context keys that smell of a secret or a live link are refused: the worker mints links at
# send time, and secrets never belong in an email at all (SPEC §5, §6.6).
_SECRET_KEY_WORDS = ("token", "password", "passwd", "secret", "birth", "credential")
_SECRET_KEY_PARTS = {"link", "url", "uri", "href", "otp", "pin", "dob", "key"}


class UnsafeEmailContext(ValueError):
    """The context would put a secret, a link or non-JSON data into the outbox."""


class PermanentEmailError(Exception):
    """The email can never be sent as it is (no recipient account, bad template, ...)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class DeliveryResult:
    # "sent", "retry", "failed", "deferred" (the mail breaker) or "skipped" (not claimable:
    # sent or in another worker's hand)
    status: str
    error_code: str = ""
    retry_in_seconds: float | None = None


def queue_email(
    *,
    kind,
    to_address,
    user=None,
    token_purpose="",
    context=None,
    language="",
    stream=OutboundEmail.Stream.TRANSACTIONAL,
):
    """Write an outbox row in the current transaction; its task is enqueued on commit.

    `to_address` is the address on record (never one typed into a form). `context` holds
    plain, non-secret template values (JSON; datetimes become ISO strings). `token_purpose`
    ("reset", "activation", "email_confirm") makes it an action email: the worker mints a token
    for `user` when it sends, and the templates get `link`.
    """
    if not _KIND.match(kind):
        raise ValueError(f"Not an email kind: {kind!r}.")
    for name in template_names(kind).values():
        get_template(name)  # a typo should fail in the caller's tests, not in a worker later
    if not to_address:
        raise ValueError("An email needs an address.")
    if token_purpose and token_purpose not in TOKEN_PURPOSES:
        raise ValueError(f"Unknown token purpose {token_purpose!r}.")
    if token_purpose and user is None:
        raise ValueError("An action email needs the user its link is for.")
    email = OutboundEmail.objects.create(
        kind=kind,
        to_address=to_address,
        user=user,
        token_purpose=token_purpose,
        context=checked_context(context),
        language=_language(language, user),
        stream=OutboundEmail.Stream(stream),
    )
    _enqueue_on_commit(email)
    return email


def checked_context(context):
    """`context` as the JSON the outbox stores, or UnsafeEmailContext."""
    try:
        data = json.loads(json.dumps(context or {}, cls=DjangoJSONEncoder))
    except TypeError as error:
        raise UnsafeEmailContext(f"Email context must be JSON data: {error}") from None
    if not isinstance(data, dict):
        raise UnsafeEmailContext("Email context must be a mapping.")
    _refuse_secrets(data)
    return data


def enqueue_outbound_email(*, email_id, stream=OutboundEmail.Stream.TRANSACTIONAL, countdown=None):
    """Publish the send task for one row; True if the broker took it."""
    return enqueue_outbound_emails(email_ids=[email_id], stream=stream, countdown=countdown)


def enqueue_outbound_emails(
    *, email_ids, stream=OutboundEmail.Stream.TRANSACTIONAL, countdown=None
):
    """Publish send tasks for rows of one stream, SEND_BATCH ids a task; True if all went out.

    A broker failure is logged and swallowed, and the rest is not tried: the rows stay queued
    and the sweeper enqueues them later, so no caller ever fails, or waits on every chunk in
    turn, because Redis is down.
    """
    # By name (routed by CELERY_TASK_ROUTES): this module need not import the tasks, which
    # import it.
    task = SEND_TASKS[OutboundEmail.Stream(stream)]
    email_ids = list(email_ids)
    for start in range(0, len(email_ids), outbox.SEND_BATCH):
        chunk = email_ids[start : start + outbox.SEND_BATCH]
        try:
            current_app.send_task(
                task,
                args=chunk,
                countdown=countdown,  # (publish retries: CELERY_TASK_PUBLISH_RETRY_POLICY)
            )
        except Exception as error:
            logger.warning(
                "Could not enqueue outbound email %s (%s); the outbox sweeper will retry.",
                _id_list(email_ids[start:]),
                type(error).__name__,
            )
            return False
    return True


def deliver_outbound_email(*, email_id):
    """Claim, render, send and record one outbox row."""
    return deliver_outbound_emails(email_ids=[email_id])[email_id]


def deliver_outbound_emails(*, email_ids):
    """Claim, render, send and record outbox rows (a send task's whole job): {id: result}.

    Rows are claimed SEND_BATCH at a time in one statement and sent one after the other over
    the worker's one SMTP connection, each marked sent as soon as the relay took it. The claims
    and marks of the whole batch commit without waiting for the disk (outbox.asynchronous_
    commits), which is what makes a batch cheaper than the same rows one task each.
    """
    email_ids = list(dict.fromkeys(email_ids))
    results = dict.fromkeys(email_ids, DeliveryResult(status="skipped"))
    with outbox.asynchronous_commits():
        for start in range(0, len(email_ids), outbox.SEND_BATCH):
            claimed = outbox.claim_outbound_emails(
                email_ids=email_ids[start : start + outbox.SEND_BATCH]
            )
            results.update(_deliver_claimed(claimed))
    return results


def _deliver_claimed(claimed):
    """Send rows this worker has just claimed; {id: DeliveryResult}.

    Rows it did not get to (past the mail breaker, or a batch running so long that its claim
    would soon look stale and be handed to another worker) go back to the queue untried.
    """
    results = {}
    if not claimed:
        return results
    claimed_at = time.monotonic()
    allowed = _mail_budget(len(claimed))
    if allowed < len(claimed):
        results.update(_defer(claimed[allowed:]))
    for index, email in enumerate(claimed[:allowed]):
        # (Always one email a claim, so a relay slower than the limit still gets mail out.)
        if index and time.monotonic() - claimed_at > settings.OUTBOX_STALE_SECONDS / 2:
            results.update(_hand_back(claimed[index:allowed]))
            break
        results[email.pk] = _deliver_one(email)
    return results


def _mail_budget(count):
    """How many of `count` emails the global mail breaker lets out now: ratelimit.
    mail_budget_available's one count an email, for a whole batch in one Redis round trip
    (failing open, as it does)."""
    rate = app_settings.RATELIMIT_MAIL_GLOBAL
    decisions = ratelimit.hit_all([("mail.global", "all", rate)] * count, fail_open=True)
    return sum(decision.allowed for decision in decisions)


def _deliver_one(email):
    try:
        message = build_message(email, render_outbound_email(email, link=_mint_link(email)))
        mailer.send_message(message)
    except PermanentEmailError as error:
        return _give_up(email, error.code)
    except Exception as error:
        code, permanent = classify_send_error(error)
        if permanent:
            return _give_up(email, code)
        if code == "unexpected":
            logger.exception("Unexpected error sending outbound email %s", email.pk)
        delay = outbox.schedule_outbound_email_retry(email=email, error_code=code)
        if delay is None:
            return DeliveryResult(status="failed", error_code=code)
        logger.info(
            "Outbound email %s (%s) attempt %s failed (%s); retrying in %.0f s",
            email.pk,
            email.kind,
            email.attempts,
            code,
            delay,
        )
        enqueue_outbound_email(email_id=email.pk, stream=email.stream, countdown=delay)
        return DeliveryResult(status="retry", error_code=code, retry_in_seconds=delay)
    if not outbox.mark_outbound_email_sent(email=email):
        logger.warning("Outbound email %s was sent by two workers (a stale claim).", email.pk)
    return DeliveryResult(status="sent")


def sweep_outbox():
    """Re-enqueue emails no worker picked up in time; return how many (beat runs this)."""
    stale = outbox.take_stale_outbound_emails()
    by_stream = {}
    for email_id, stream in stale:
        by_stream.setdefault(stream, []).append(email_id)
    for stream, email_ids in by_stream.items():
        enqueue_outbound_emails(email_ids=email_ids, stream=stream)
    if stale:
        logger.info("Outbox sweep re-enqueued %s email(s).", len(stale))
    return len(stale)


def classify_send_error(error):
    """(short code, permanent?) for an exception raised while sending.

    The code is safe to store and log: a class name or SMTP status, never the server's text,
    which often quotes the address.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        code = max(codes) if codes else 550
        return f"smtp_{code}", code >= 500
    if isinstance(error, smtplib.SMTPAuthenticationError | smtplib.SMTPSenderRefused):
        # Our relay set-up is wrong, not this email: keep it queued until someone fixes it.
        return f"smtp_{error.smtp_code}", False
    if isinstance(error, smtplib.SMTPResponseException):
        return f"smtp_{error.smtp_code}", 500 <= error.smtp_code < 600
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "smtp_disconnected", False
    if isinstance(error, TimeoutError | socket.timeout):
        return "timeout", False
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused", False
    if isinstance(error, ConnectionResetError):
        return "connection_reset", False
    if isinstance(error, smtplib.SMTPException | OSError):
        return type(error).__name__, False
    if isinstance(error, TemplateDoesNotExist | TemplateSyntaxError):
        return "template_error", True
    if isinstance(error, ValueError):
        # Django refuses an address it cannot encode; no retry will change that, nor any other
        # bad value. (The message names the address: it is looked at, never kept.)
        return ("invalid_address" if "address" in str(error) else "ValueError"), True
    return "unexpected", False


def _mint_link(email):
    if not email.token_purpose:
        return None
    user = email.user
    if user is None:
        raise PermanentEmailError("no_user")
    if not user.is_active:
        # The account was disabled after the email was queued: no live link for it.
        raise PermanentEmailError("inactive_user")
    from recovery.tokens import mint  # the token ledger; imported late, it is a sibling service

    with outbox.durable_commit():
        token = mint(user=user, purpose=email.token_purpose)
    return absolute_link(purpose=email.token_purpose, token=token)


def _defer(emails):
    # Spread the waiting mail over the breaker's next window, so it does not all return at once.
    period = ratelimit.Rate.parse(app_settings.RATELIMIT_MAIL_GLOBAL).period
    delay = period * random.uniform(0.5, 1.0)
    outbox.defer_outbound_emails(emails=emails, delay=delay)
    logger.info(
        "Outbound email(s) %s deferred %.0f s by the mail breaker.",
        _id_list(e.pk for e in emails),
        delay,
    )
    _enqueue_rows(emails, countdown=delay)
    return {email.pk: DeliveryResult(status="deferred", retry_in_seconds=delay) for email in emails}


def _hand_back(emails):
    # Untried and due now: another task (or this worker, next) takes them with a fresh claim.
    outbox.defer_outbound_emails(emails=emails, delay=0)
    logger.info(
        "Outbound email(s) %s handed back: the batch ran long.", _id_list(e.pk for e in emails)
    )
    _enqueue_rows(emails)
    return {email.pk: DeliveryResult(status="deferred", retry_in_seconds=0) for email in emails}


def _enqueue_rows(emails, countdown=None):
    by_stream = {}
    for email in emails:
        by_stream.setdefault(email.stream, []).append(email.pk)
    for stream, email_ids in by_stream.items():
        enqueue_outbound_emails(email_ids=email_ids, stream=stream, countdown=countdown)


def _id_list(email_ids, shown=10):
    # Ids only (never an address), and a bounded line for a big batch.
    email_ids = list(email_ids)
    more = f" and {len(email_ids) - shown} more" if len(email_ids) > shown else ""
    return ", ".join(map(str, email_ids[:shown])) + more


def _give_up(email, code):
    outbox.mark_outbound_email_failed(email=email, error_code=code)
    return DeliveryResult(status="failed", error_code=code)


class _PendingEnqueues:
    """The rows one transaction has queued, enqueued together when it commits (an on_commit
    callback), SEND_BATCH ids a task: a batch of emails written in one transaction, the
    nightly kind, becomes a task per SEND_BATCH emails, not one per email."""

    def __init__(self):
        self.by_stream = {}

    def add(self, email):
        self.by_stream.setdefault(email.stream, []).append(email.pk)

    def __call__(self):
        for stream, email_ids in self.by_stream.items():
            enqueue_outbound_emails(email_ids=email_ids, stream=stream)


def _enqueue_on_commit(email):
    connection = transaction.get_connection()
    pending = getattr(connection, "_outbox_pending_enqueues", None)
    # Still waiting for this transaction's commit? A rolled-back savepoint drops the callback
    # (and then a fresh one is registered); rows rolled back with a savepoint after joining a
    # live callback are enqueued all the same and their tasks find nothing to claim.
    if pending is None or not any(entry[1] is pending for entry in connection.run_on_commit):
        pending = _PendingEnqueues()
        connection._outbox_pending_enqueues = pending
        pending.add(email)
        transaction.on_commit(pending)  # outside a transaction: at once
        return
    pending.add(email)


def _language(language, user):
    known = {code for code, _ in settings.LANGUAGES}
    for candidate in (language, getattr(user, "language", "")):
        if candidate in known:
            return candidate
    return settings.LANGUAGE_CODE


def _refuse_secrets(value, path="context"):
    if isinstance(value, dict):
        for key, item in value.items():
            lowered = key.lower()
            parts = set(re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()))
            if any(word in lowered for word in _SECRET_KEY_WORDS) or parts & _SECRET_KEY_PARTS:
                raise UnsafeEmailContext(f"{path}[{key!r}] looks like a secret or a link.")
            _refuse_secrets(item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_secrets(item, f"{path}[{index}]")
    elif isinstance(value, str) and "://" in value:
        raise UnsafeEmailContext(f"{path} holds a URL; links are minted when the email is sent.")
