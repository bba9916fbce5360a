"""A real SMTP server for tests and benchmarks: aiosmtpd on 127.0.0.1, on a free port.

    def test_something(smtp_server):
        ...  # point the code (or a worker: EMAIL_PORT=smtp_server.port) at it
        [received] = smtp_server.wait_for_messages(1)
        received.rcpt_tos, received.message["Subject"], received.text, received.html

Programmable, thread-safe, from the test's thread:

* `fail_next(n, code=451)`: answer the next n messages' DATA with a temporary failure;
* `reject_recipient(address, code=550)`: refuse that recipient at RCPT;
* `delay_ms`: time taken per message before answering (a real relay's round trip);
* `keep_messages=False`: only count (benchmarks);
* `stop()` then `start()`: a restart on the same port, dropping every open connection.

Also runnable on its own for benchmarks, in a process of its own:
`python -m tests.support.smtp --port 2525 [--delay-ms 50]`.
"""

import argparse
import asyncio
import email
import email.policy
import logging
import socket
import threading
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

from tests.support.waiting import wait_until

# aiosmtpd logs every SMTP command at INFO: noise in every failing test's report.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage = field(repr=False)
    peer: tuple = ()  # the client's (host, port): one per SMTP connection

    @property
    def subject(self):
        return str(self.message["Subject"])

    @property
    def text(self):
        return self._part("text/plain")

    @property
    def html(self):
        return self._part("text/html")

    def _part(self, content_type):
        part = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        if part is None or part.get_content_type() != content_type:
            return None
        return part.get_content()


class _Handler:
    def __init__(self, server):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        code = self.server._rejection_for(address)
        if code:
            return f"{code} 5.1.1 Recipient refused by the test server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        if self.server.delay_ms:
            await asyncio.sleep(self.server.delay_ms / 1000)
        code = self.server._take_failure()
        if code:
            return f"{code} 4.3.0 Try again later (test server)"
        self.server._accept(envelope, peer=session.peer)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, *, host="127.0.0.1", port=None, delay_ms=0, keep_messages=True):
        self.host = host
        self.port = port or free_port(host)
        self.delay_ms = delay_ms
        self.keep_messages = keep_messages
        self._lock = threading.Lock()
        self._messages = []
        self._accepted = 0
        self._failures = []
        self._rejections = {}
        self._controller = None

    # --- lifecycle
    def start(self):
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, enable_SMTPUTF8=True
        )
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # --- programming it
    def fail_next(self, count, *, code=451):
        """Answer the DATA of the next `count` messages with `code` (a 4xx: try again later)."""
        with self._lock:
            self._failures.extend([code] * count)

    def reject_recipient(self, address, *, code=550):
        """Refuse `address` at RCPT TO with `code` (550: no such user here)."""
        with self._lock:
            self._rejections[address.lower()] = code

    def reset(self):
        """Forget messages and programming (between tests sharing one server)."""
        with self._lock:
            self._messages.clear()
            self._accepted = 0
            self._failures.clear()
            self._rejections.clear()
        self.delay_ms = 0

    # --- what it received
    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    @property
    def accepted_count(self):
        with self._lock:
            return self._accepted

    @property
    def pending_failures(self):
        with self._lock:
            return len(self._failures)

    def wait_for_messages(self, count, *, timeout=30):
        """Wait until at least `count` messages arrived; return them all."""
        wait_until(
            lambda: self.accepted_count >= count,
            timeout=timeout,
            message=lambda: f"{count} message(s) at the SMTP server, got {self.accepted_count}",
        )
        return self.messages

    # --- called from the server's event loop thread
    def _rejection_for(self, address):
        with self._lock:
            return self._rejections.get(address.lower())

    def _take_failure(self):
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _accept(self, envelope, *, peer):
        received = None
        if self.keep_messages:
            received = ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=email.message_from_bytes(envelope.content, policy=email.policy.default),
                peer=tuple(peer or ()),
            )
        with self._lock:
            self._accepted += 1
            if received is not None:
                self._messages.append(received)


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A started SmtpServer; a worker sends to it with EMAIL_PORT=smtp_server.port."""
    with SmtpServer() as server:
        yield server


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.support.smtp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args(argv)
    server = SmtpServer(host=args.host, port=args.port, delay_ms=args.delay_ms, keep_messages=False)
    with server:
        print(f"SMTP server listening on {args.host}:{args.port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
