"""Hand a message to Django's default mailer; in a worker, over one reused SMTP connection.

Opening an SMTP connection (TCP, greeting, EHLO, maybe STARTTLS and AUTH) costs more than
sending a small message over it, for us and for the relay. A Celery worker process therefore
keeps the default mailer's connection open between emails (`enable_connection_reuse`, called
from the worker_process_init signal) and drops it after any error or when it has been idle
longer than a relay would keep it. Everywhere else (web processes, tests), and with any backend
but SMTP, each message goes through `EmailMessage.send()` with a connection of its own.

The connection is the thread's: under `--pool threads` every pool thread keeps its own, so a
worker process sends on as many SMTP sessions at once as it has threads (what a relay that
takes tens of milliseconds a message needs; see recovery.emails).
"""

import logging
import smtplib
import threading
import time

from django.conf import settings
from django.core.mail import mailers
from django.core.mail.handler import DEFAULT_MAILER_BACKEND

logger = logging.getLogger(__name__)

# Relays close idle sessions after a few minutes (RFC 5321 suggests 5); reopen well before.
IDLE_SECONDS = 30

_reuse = False


class _ThreadState(threading.local):
    connection = None
    last_used = 0.0


_state = _ThreadState()


def send_message(message):
    """Send one EmailMessage; raise whatever the mailer raises."""
    if not (_reuse and _default_mailer_is_smtp()):
        message.send()
        return
    reused = _state.connection is not None and not _idle_too_long()
    try:
        try:
            _open_connection().send_messages([message])
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            # The relay hung up on our idle connection since its last email: once more, fresh.
            close_connection()
            _open_connection().send_messages([message])
    except BaseException:
        close_connection()  # after an error the session's state is unknown
        raise
    _mark_used()


def enable_connection_reuse():
    global _reuse
    _reuse = True


def close_connection():
    """Close this thread's connection, if it has one."""
    if _state.connection is not None:
        try:
            _state.connection.close()
        except Exception:  # closing a dead connection must not mask the real error
            logger.debug("Error closing the SMTP connection", exc_info=True)
        _state.connection = None


def _open_connection():
    if _state.connection is not None and _idle_too_long():
        close_connection()
    if _state.connection is None:
        connection = mailers.default
        connection.open()  # an open backend keeps its connection across send_messages calls
        _state.connection = connection
        _mark_used()
    return _state.connection


def _default_mailer_is_smtp():
    # Only an SMTP connection is worth keeping; a file or memory backend gains nothing from it.
    backend = settings.MAILERS.get("default", {}).get("BACKEND", DEFAULT_MAILER_BACKEND)
    return backend == DEFAULT_MAILER_BACKEND


def _idle_too_long():
    return time.monotonic() - _state.last_used > IDLE_SECONDS


def _mark_used():
    _state.last_used = time.monotonic()
