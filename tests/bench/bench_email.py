"""Email dispatch (SPEC §8): emails per second through the outbox with 1 and 2 real workers.

1 (and afterwards 2) `celery -A portal worker` processes (prefork, one child each, on
settings.production) are started, then N notices (2000; --quick: 200) are queued in one
transaction, and the workers deliver them to a local aiosmtpd server running in a process of
its own and answering at once. The rate is measured from the first claim to the last `sent_at`
in the database. The same again against a relay answering in 50 ms, with N/4 emails, where a
process sending one email at a time cannot beat 20 emails/s; one worker with 4 pool processes,
and one with 8 pool threads (each thread its own SMTP connection, recovery.mailer), show how
concurrency lifts that bound.

To tell whether the worker or the SMTP server is the limit, the server's own ceiling is measured
too: a tight loop of the same message sent straight from 1 and 2 processes with smtplib, one
connection per message, as Django's SMTP backend does.
"""

import multiprocessing
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from email.utils import parseaddr
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Max, Min
from django.utils import timezone

from recovery.emails import queue_email
from recovery.models import OutboundEmail
from recovery.rendering import build_message, render_outbound_email
from tests.support.smtp import free_port
from tests.support.worker import ROOT, WorkerProcess, purge_broker, worker_environment

KIND = "password_changed"
RELAY_DELAY_MS = 50
# (worker processes, pool size, pool) against the slow relay.
RELAY_ARMS = ((1, 1, "prefork"), (2, 1, "prefork"), (1, 4, "prefork"), (1, 8, "threads"))


def run(args):
    size = 200 if args.quick else 2000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with _smtp_server_process(port):
            ceilings = {}
            for senders in (1, 2):
                for reuse in (False, True):
                    rate = _smtp_ceiling(port=port, senders=senders, count=size // 2, reuse=reuse)
                    mode = "one connection per sender" if reuse else "a connection per email"
                    rows.append(_row(f"SMTP server ceiling, {senders} sender(s), {mode}", rate))
                    ceilings[senders, reuse] = rate
            for workers in (1, 2):
                rate, cpu_ms, busy = _dispatch(
                    size=size, workers=workers, smtp_port=port, tmp=Path(tmp)
                )
                rows.append(_row(f"outbox dispatch, {workers} worker(s), n={size}", rate))
                rows.append(_row("  worker CPU per email", cpu_ms, "ms"))
                rows.append(_row("  machine CPU busy meanwhile", 100 * busy, "%"))
                rows.append(
                    _row(
                        f"  {workers} worker(s) / ceiling with {workers} sender(s), same mode",
                        rate / ceilings[workers, True],
                        "ratio",
                    )
                )
        # A real relay answers in tens of milliseconds: then the relay, not the worker, is the
        # limit, and a worker sending one email at a time cannot beat 1 / delay.
        port = free_port()
        with _smtp_server_process(port, delay_ms=RELAY_DELAY_MS):
            for workers, concurrency, pool in RELAY_ARMS:
                rate, cpu_ms, _ = _dispatch(
                    size=size // 4,
                    workers=workers,
                    concurrency=concurrency,
                    pool=pool,
                    smtp_port=port,
                    tmp=Path(tmp),
                )
                sends = workers * concurrency
                bound = sends * 1000 / RELAY_DELAY_MS
                unit = "process(es)" if pool == "prefork" else "threads"
                rows.append(
                    _row(
                        f"outbox dispatch, {workers} worker(s) x {concurrency} {unit}, "
                        f"{RELAY_DELAY_MS} ms relay, n={size // 4}",
                        rate,
                    )
                )
                rows.append(
                    _row(f"  / relay bound, {sends} x 1/{RELAY_DELAY_MS} ms", rate / bound, "ratio")
                )
                rows.append(_row("  worker CPU per email", cpu_ms, "ms"))
    return rows


def _row(figure, value, unit="emails/s"):
    return {"benchmark": "email", "figure": figure, "value": value, "unit": unit}


def _dispatch(*, size, workers, smtp_port, tmp, concurrency=1, pool="prefork"):
    """Queue `size` emails, let `workers` worker processes send them.

    Returns emails/s, the workers' CPU milliseconds per email (main and pool processes) and the
    share of the machine's CPU time that was busy meanwhile (is the machine the limit?).
    """
    broker_url = settings.CELERY_BROKER_URL
    purge_broker(broker_url)
    OutboundEmail.objects.all().delete()
    # Workers run as in production: settings.production (persistent database connections),
    # with the deployment facts it requires.
    env = worker_environment(
        database_url=_database_url(),
        redis_url=settings.REDIS_URL,
        broker_url=broker_url,
        smtp_port=smtp_port,
        extra={
            "DJANGO_SETTINGS_MODULE": "settings.production",
            "SECRET_KEY": settings.SECRET_KEY,
            "EMAIL_USE_TLS": "false",
            "DEFAULT_FROM_EMAIL": settings.DEFAULT_FROM_EMAIL,
            "PORTAL_BASE_URL": settings.PORTAL_BASE_URL,
            "ALLOWED_HOSTS": "localhost",
            # The mail breaker would cap dispatch at its rate: raise it, as for every bench.
            "RATELIMIT_MAIL_GLOBAL": "1000000000/m",
        },
    )
    processes = [
        _Worker(
            env=env,
            log_path=tmp / f"worker-{workers}x{concurrency}-{pool}-{i}.log",
            concurrency=concurrency,
            pool=pool,
        )
        for i in range(workers)
    ]
    try:
        # Every worker is consuming before the first email exists, so none gets a head start.
        for process in processes:
            process.start()
        cpu_before = sum(_group_cpu_seconds(p.process.pid) for p in processes)
        machine_before = _machine_cpu()
        with transaction.atomic():
            for n in range(size):
                queue_email(
                    kind=KIND,
                    to_address=f"parent{n}@bench.example",
                    context={"changed_at": timezone.now(), "browser": "Firefox on Windows"},
                )
        _wait_all_sent(size=size, processes=processes)
        cpu = sum(_group_cpu_seconds(p.process.pid) for p in processes) - cpu_before
        busy, total = (b - a for a, b in zip(machine_before, _machine_cpu(), strict=True))
    finally:
        for process in processes:
            process.stop()
    failed = OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).count()
    if failed:
        raise RuntimeError(f"{failed} email(s) not sent")
    span = OutboundEmail.objects.aggregate(first=Min("claimed_at"), last=Max("sent_at"))
    rate = size / (span["last"] - span["first"]).total_seconds()
    return rate, cpu * 1000 / size, busy / total


class _Worker(WorkerProcess):
    """A worker process with the pool of choice (`--pool threads` for an I/O-bound relay)."""

    def __init__(self, *, pool="prefork", **kwargs):
        super().__init__(**kwargs)
        self.pool = pool

    @property
    def command(self):
        command = super().command
        command[command.index("--pool") + 1] = self.pool
        return command


def _group_cpu_seconds(pgid):
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_cpu():
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _wait_all_sent(*, size, processes, timeout=600):
    deadline = time.monotonic() + timeout
    sent = 0
    while sent < size:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sent} of {size} emails sent in {timeout} s")
        for process in processes:
            if not process.alive:
                raise RuntimeError(f"a worker died:\n{process.log}")
        time.sleep(0.25)
        sent = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count()


def _smtp_ceiling(*, port, senders, count, reuse):
    """Emails/s the server takes from `senders` processes sending `count` messages each.

    `reuse`: one SMTP session per sender, as a worker process keeps (recovery.mailer); else a
    new connection per message, as a web process sending its own mail would.
    """
    email = OutboundEmail(
        pk=1,
        kind=KIND,
        to_address="parent@bench.example",
        context={"changed_at": timezone.now().isoformat(), "browser": "Firefox on Windows"},
        language="en",
        created_at=timezone.now(),
    )
    message = build_message(email, render_outbound_email(email)).message()
    payload = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    from_address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    connections.close_all()  # the forked senders must not share the parent's connections
    context = multiprocessing.get_context("fork")
    with context.Pool(senders) as pool:
        started = time.perf_counter()
        pool.starmap(_send_directly, [(port, from_address, payload, count, reuse)] * senders)
        elapsed = time.perf_counter() - started
    return senders * count / elapsed


def _send_directly(port, from_address, payload, count, reuse):
    if reuse:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for _ in range(count):
                client.sendmail(from_address, ["parent@bench.example"], payload)
        return
    for _ in range(count):
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(from_address, ["parent@bench.example"], payload)


class _smtp_server_process:
    """aiosmtpd in its own process, so it does not share a GIL with anything measured."""

    def __init__(self, port, *, delay_ms=0):
        self.port = port
        self.delay_ms = delay_ms
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.support.smtp"),
                *("--port", str(self.port), "--delay-ms", str(self.delay_ms)),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the benchmark's SMTP server did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait(timeout=10)


def _database_url():
    from tests.support.worker import database_url

    return database_url(connections["default"].settings_dict)
