"""Help requests (SPEC §8): throughput under gunicorn, and known-vs-unknown timing.

The stack is production's shape on one machine: `gunicorn portal.wsgi:application` with 2 sync
workers on tests.bench.settings_bench (persistent, health-checked database connections, DEBUG
off, the comparison views of tests.bench.urls_bench), one `celery -A portal worker` consuming
the `email` queue on the same machine, Redis counters in force with limits raised out of reach,
and aiosmtpd servers in processes of their own: one answering at once, one after 50 ms.

Throughput: a load generator in this process (one thread, non-blocking sockets, 8 concurrent
clients; each took its CSRF cookie and token once and reuses them, which Django accepts) POSTs
for a fixed time after a warm-up, in three slices per arm with the arms taking turns (so other
work on the machine falls on all of them alike), counting only the expected redirect.
Gunicorn's sync workers close the connection after each response, so every request is a new
TCP connection, for every arm alike (the client costs about 0.2-0.3 ms of CPU per request;
wrk, tried side by side, got no more out of the same server). Arms: a trivial CSRF-protected
form POST (the ceiling), the two Help forms with known and unknown identifiers, and Django's
stock PasswordResetView (sending its email inside the request) for a known and an unknown
address, with the instant and the 50 ms SMTP server. The Help arms leave the resolving to the
worker, which competes for the same two cores meanwhile; its backlog is dropped between slices
so no arm pays for another's.

Timing: one client, one request at a time, the classes interleaved in random order; medians
and p90 of each and the known - unknown difference.

    python -m tests.bench --only help [--quick]
"""

import contextlib
import os
import random
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, connections
from django.urls import Resolver404, resolve
from django.utils import timezone

from tests.support.smtp import free_port
from tests.support.worker import ROOT, WorkerProcess, purge_broker, worker_environment

SETTINGS = "tests.bench.settings_bench"
GUNICORN_WORKERS = 2
CLIENTS = 8
RELAY_DELAY_MS = 50
ACCOUNTS = 1000  # known identifiers are spread over this many accounts
TRIVIAL_PATH = "/bench/trivial/"
STOCK_PATH = "/bench/stock-reset/"
HELP_FORMS = {
    # name: (path, field, known identifier, unknown identifier) for account number n
    "forgot password": (
        "/help/forgot-password/",
        "username",
        "bench.parent{n}",
        "bench.nobody{n}",
    ),
    "forgot username": (
        "/help/forgot-username/",
        "email",
        "parent{n}@bench.example",
        "nobody{n}@bench.example",
    ),
}


def run(args):
    quick = bool(getattr(args, "quick", False))
    plan = _Plan(
        warmup=1.0 if quick else 2.0,
        seconds=3.0 if quick else 15.0,
        turns=1 if quick else 3,
        timing_samples=60 if quick else 400,
        stock_timing_samples=20 if quick else 100,
    )
    _create_accounts()
    forms = _help_forms()
    # Other work on the machine skews every figure: the load is reported with them.
    rows = [_row("load average (1 min) at the start", os.getloadavg()[0], "")]
    with tempfile.TemporaryDirectory(prefix="bench-help-") as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        instant = stack.enter_context(_SmtpServer(free_port()))
        slow = stack.enter_context(_SmtpServer(free_port(), delay_ms=RELAY_DELAY_MS))
        rates = {}
        for relay in (instant, slow):
            label = "instant SMTP" if relay is instant else f"{RELAY_DELAY_MS} ms SMTP"
            with _Stack(smtp_port=relay.port, tmp=tmp, label=label) as site:
                if relay is instant:
                    arms = [("trivial view", TRIVIAL_PATH, "username", "bench.parent{n}")]
                    for name, (path, field_name, known, unknown) in forms.items():
                        arms.append((f"help {name}, unknown", path, field_name, unknown))
                        arms.append((f"help {name}, known", path, field_name, known))
                    arms += [
                        ("stock reset, unknown", STOCK_PATH, "email", "nobody{n}@bench.example"),
                        ("stock reset, known", STOCK_PATH, "email", "parent{n}@bench.example"),
                    ]
                else:
                    arms = [("stock reset, known", STOCK_PATH, "email", "parent{n}@bench.example")]
                    if "forgot password" in forms:
                        path, field_name, known, _ = forms["forgot password"]
                        arms.append(("help forgot password, known", path, field_name, known))
                # The arms take turns, slice by slice, so that other work on the machine
                # (and the database's own: checkpoints, autovacuum) falls on all of them alike.
                results = {arm: _Throughput() for arm, *_ in arms}
                for turn in range(plan.turns):
                    for arm, path, field_name, pattern in arms:
                        results[arm] += site.throughput(
                            path=path,
                            field_name=field_name,
                            pattern=pattern,
                            seconds=plan.seconds / plan.turns,
                            warmup=plan.warmup if turn == 0 else plan.warmup / 4,
                        )
                for arm, result in results.items():
                    rates[arm, relay is instant] = result.rate
                    rows += _throughput_rows(f"{arm}, {label}", result)
                if relay is instant and forms:
                    rows += _timing_rows(
                        site.timing(
                            classes={
                                f"{name}, {kind}": (path, field_name, pattern)
                                for name, (path, field_name, known, unknown) in forms.items()
                                for kind, pattern in (("known", known), ("unknown", unknown))
                            },
                            samples=plan.timing_samples,
                        ),
                        pairs=[(f"{name}, known", f"{name}, unknown") for name in forms],
                    )
                stock_classes = {
                    f"stock reset, {kind}, {label}": (STOCK_PATH, "email", pattern)
                    for kind, pattern in (
                        ("known", "parent{n}@bench.example"),
                        ("unknown", "nobody{n}@bench.example"),
                    )
                }
                rows += _timing_rows(
                    site.timing(classes=stock_classes, samples=plan.stock_timing_samples),
                    pairs=[tuple(stock_classes)],
                )
        rows += _ratio_rows(rates, forms)
    rows.append(_row("load average (1 min) at the end", os.getloadavg()[0], ""))
    return rows


@dataclass
class _Plan:
    warmup: float
    seconds: float  # per arm, in `turns` slices
    turns: int
    timing_samples: int
    stock_timing_samples: int


def _row(figure, value, unit):
    return {"benchmark": "help", "figure": figure, "value": value, "unit": unit}


def _help_forms():
    """The Help forms whose URLs exist (each is skipped, not faked, until it is built)."""
    forms = {}
    for name, entry in HELP_FORMS.items():
        try:
            resolve(entry[0])
        except Resolver404:
            continue
        forms[name] = entry
    return forms


def _create_accounts():
    """ACCOUNTS active parents with Self Serve; their `email` too, for the stock form."""
    users = get_user_model().objects
    users.filter(username__startswith="bench.").delete()
    now = timezone.now()
    password = make_password("bench password that nobody types")
    users.bulk_create(
        [
            get_user_model()(
                username=f"bench.parent{n}",
                email=f"parent{n}@bench.example",
                password=password,
                role="parent",
                activated_at=now,
                password_changed_at=now,
                recovery_email=f"parent{n}@bench.example",
                recovery_email_normalised=f"parent{n}@bench.example",
                recovery_email_verified_at=now,
            )
            for n in range(ACCOUNTS)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- results


@dataclass
class _Throughput:
    """Sums over one arm's slices; the figures are derived from them."""

    count: int = 0  # expected answers
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of the load generator
    server_cpu: float = 0.0  # of gunicorn (master + workers)
    worker_cpu: float = 0.0  # of the Celery worker (main + pool processes)
    database_cpu: float = 0.0  # of PostgreSQL's backends serving the benchmark's database
    busy_ticks: int = 0  # the machine's busy and total CPU ticks
    total_ticks: int = 0
    resolved: int | None = None  # help requests the worker resolved meanwhile
    sent: int | None = None  # emails the worker delivered meanwhile

    def __add__(self, other):
        def both(a, b):
            return None if a is None and b is None else (a or 0) + (b or 0)

        return _Throughput(
            count=self.count + other.count,
            seconds=self.seconds + other.seconds,
            client_cpu=self.client_cpu + other.client_cpu,
            server_cpu=self.server_cpu + other.server_cpu,
            worker_cpu=self.worker_cpu + other.worker_cpu,
            database_cpu=self.database_cpu + other.database_cpu,
            busy_ticks=self.busy_ticks + other.busy_ticks,
            total_ticks=self.total_ticks + other.total_ticks,
            resolved=both(self.resolved, other.resolved),
            sent=both(self.sent, other.sent),
        )

    @property
    def rate(self):
        return self.count / self.seconds


def _throughput_rows(name, result):
    per_request = 1000 / result.count  # seconds -> ms per request
    rows = [
        _row(f"{name}: throughput", result.rate, f"requests/s (n={result.count})"),
        _row("  gunicorn CPU per request", result.server_cpu * per_request, "ms"),
        _row(
            "  PostgreSQL CPU per request (the worker's queries included)",
            result.database_cpu * per_request,
            "ms",
        ),
        _row("  load generator CPU per request", result.client_cpu * per_request, "ms"),
        _row("  machine CPU busy", 100 * result.busy_ticks / result.total_ticks, "%"),
    ]
    if result.resolved is not None:
        seconds = result.seconds
        rows += [
            _row("  worker CPU (share of one core)", 100 * result.worker_cpu / seconds, "%"),
            _row("  resolved by the worker meanwhile", result.resolved / seconds, "requests/s"),
            _row("  emails the worker sent meanwhile", result.sent / seconds, "emails/s"),
        ]
        if result.resolved:
            cpu = 1000 * result.worker_cpu / result.resolved
            rows.append(_row("  worker CPU per resolved request", cpu, "ms"))
    return rows


def _timing_rows(samples, *, pairs):
    rows = []
    for name, values in samples.items():
        rows.append(_row(f"timing {name}: median", statistics.median(values), "ms"))
        rows.append(_row(f"timing {name}: p90", _percentile(values, 0.9), "ms"))
    for known, unknown in pairs:
        rows.append(
            _row(
                f"timing {known} - unknown: median",
                statistics.median(samples[known]) - statistics.median(samples[unknown]),
                "ms (target < 1 for help)",
            )
        )
        rows.append(
            _row(
                f"timing {known} - unknown: p90",
                _percentile(samples[known], 0.9) - _percentile(samples[unknown], 0.9),
                "ms",
            )
        )
    return rows


def _ratio_rows(rates, forms):
    rows = []
    help_rates = {arm: rate for (arm, instant), rate in rates.items() if instant and "help" in arm}
    if not help_rates:
        return [_row("help forms", "not built yet: no ratios", "")]
    slowest = min(help_rates, key=help_rates.get)
    rows.append(
        _row(
            f"{slowest} / trivial view",
            help_rates[slowest] / rates["trivial view", True],
            "x (target >= 0.5; the slowest help arm)",
        )
    )
    if "forgot password" in forms:
        arm = "help forgot password, known"
        rows.append(
            _row(
                f"{arm} / stock reset, known, instant SMTP",
                rates[arm, True] / rates["stock reset, known", True],
                "x (target >= 3)",
            )
        )
        rows.append(
            _row(
                f"{arm} / stock reset, known, {RELAY_DELAY_MS} ms SMTP",
                rates[arm, False] / rates["stock reset, known", False],
                "x (target >= 25)",
            )
        )
    return rows


def _percentile(values, share):
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


# --- the processes


class _SmtpServer:
    """aiosmtpd (tests.support.smtp) in a process of its own, answering after `delay_ms`."""

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
        try:
            _wait_for_port(self.port, self.process, "the SMTP server")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        _stop(self.process)


class _Stack:
    """gunicorn (2 sync workers) and one Celery worker, both sending mail to `smtp_port`."""

    def __init__(self, *, smtp_port, tmp, label):
        self.smtp_port = smtp_port
        self.tmp = tmp
        self.label = label.replace(" ", "-")
        self.port = free_port()
        self.gunicorn = None
        self.worker = None
        self.broker_url = settings.CELERY_BROKER_URL
        self.env = worker_environment(
            database_url=_database_url(),
            redis_url=settings.REDIS_URL,
            broker_url=self.broker_url,
            smtp_port=smtp_port,
            extra={"DJANGO_SETTINGS_MODULE": SETTINGS},
        )
        self.gunicorn_log = tmp / f"gunicorn-{self.label}.log"

    def __enter__(self):
        purge_broker(self.broker_url)
        try:
            self.worker = WorkerProcess(
                env=self.env, log_path=self.tmp / f"worker-{self.label}.log", queues=("email",)
            )
            self.worker.start()
            with open(self.gunicorn_log, "ab") as log:
                self.gunicorn = subprocess.Popen(
                    [
                        *(sys.executable, "-m", "gunicorn", "portal.wsgi:application"),
                        *("--workers", str(GUNICORN_WORKERS), "--worker-class", "sync"),
                        *("--bind", f"127.0.0.1:{self.port}", "--timeout", "60"),
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: its CPU is counted, all of it stopped
                )
            _wait_for_port(self.port, self.gunicorn, "gunicorn", log=self.gunicorn_log)
            self.cookie, self.token = self._csrf_pair()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        try:
            _stop(self.gunicorn, group=True)
        finally:
            if self.worker is not None:
                self.worker.stop()
            purge_broker(self.broker_url)

    def _csrf_pair(self):
        """One CSRF cookie and token, reused by every client (Django accepts them repeatedly)."""
        status, head, body = _request(
            self.port,
            f"GET {TRIVIAL_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        if status != 200:
            raise RuntimeError(f"GET {TRIVIAL_PATH} answered {status}:\n{self.log()}")
        cookie = re.search(rb"Set-Cookie: (csrftoken=[^;]+)", head, re.IGNORECASE).group(1)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
        return cookie.decode(), token.decode()

    def post(self, path, field_name, value):
        """The bytes of one form POST, with the shared CSRF cookie and token."""
        body = urlencode({"csrfmiddlewaretoken": self.token, field_name: value}).encode()
        return (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Cookie: {self.cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body

    def throughput(self, *, path, field_name, pattern, seconds, warmup):
        """One slice of an arm: `warmup` seconds uncounted, then `seconds` measured."""
        requests = [self.post(path, field_name, pattern.format(n=n)) for n in range(ACCOUNTS)]
        _drive(self.port, requests, seconds=warmup)  # connections, caches, imports
        self._drop_backlog()
        help_arm = path not in (TRIVIAL_PATH, STOCK_PATH)
        server_before = _group_cpu_seconds(self.gunicorn.pid)
        worker_before = _group_cpu_seconds(self.worker.process.pid)
        database_before = _database_cpu_seconds()
        machine_before = _machine_cpu()
        client_before = time.process_time()
        started_at = timezone.now()
        count, elapsed, statuses = _drive(self.port, requests, seconds=seconds)
        client_cpu = time.process_time() - client_before
        busy, total = (b - a for a, b in zip(machine_before, _machine_cpu(), strict=True))
        server_cpu = _group_cpu_seconds(self.gunicorn.pid) - server_before
        worker_cpu = _group_cpu_seconds(self.worker.process.pid) - worker_before
        database_cpu = _database_cpu_seconds() - database_before
        resolved = sent = None
        if help_arm:
            from recovery.models import HelpRequest, OutboundEmail

            window = (started_at, timezone.now())
            resolved = (
                HelpRequest.objects.filter(resolved_at__range=window)
                .exclude(outcome="bench_dropped")
                .count()
            )
            sent = OutboundEmail.objects.filter(sent_at__range=window).count()
        self._drop_backlog()
        unexpected = {status: n for status, n in statuses.items() if status != _expected(path)}
        if unexpected or _has_errors(self.gunicorn_log):
            raise RuntimeError(f"{path}: answers {dict(statuses)}\n{self.log()}")
        if _has_errors(self.worker.log_path):
            raise RuntimeError(f"{path}: the worker failed\n{self.worker.log}")
        return _Throughput(
            count=count,
            seconds=elapsed,
            client_cpu=client_cpu,
            server_cpu=server_cpu,
            worker_cpu=worker_cpu,
            database_cpu=database_cpu,
            busy_ticks=busy,
            total_ticks=total,
            resolved=resolved,
            sent=sent,
        )

    def timing(self, *, classes, samples, warmup_rounds=10):
        """Milliseconds per request of each class: one client, random interleaving."""
        order = list(classes)
        values = {name: [] for name in classes}
        for round_number in range(samples + warmup_rounds):
            random.shuffle(order)
            for name in order:
                path, field_name, pattern = classes[name]
                payload = self.post(path, field_name, pattern.format(n=round_number % ACCOUNTS))
                started = time.perf_counter()
                status, _, _ = _request(self.port, payload)
                elapsed = time.perf_counter() - started
                if status != _expected(path):
                    raise RuntimeError(f"{name}: answered {status}\n{self.log()}")
                if round_number >= warmup_rounds:
                    values[name].append(elapsed * 1000)
        self._drop_backlog()
        return values

    def _drop_backlog(self):
        """Drop the work left over so the next arm starts with an idle worker (and wait until
        it is): the queued tasks, the unresolved Help requests, the unsent emails."""
        from recovery.models import HelpRequest, OutboundEmail

        # purge_broker also clears the Help resolver flag, whose task it drops. The worker
        # finishes the batch in hand, which may queue emails: repeat until nothing moves.
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            purge_broker(self.broker_url, queues=("email",))
            now = timezone.now()
            HelpRequest.objects.filter(resolved_at__isnull=True).update(
                resolved_at=now, outcome="bench_dropped", identifier=""
            )
            OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).update(
                status=OutboundEmail.Status.FAILED
            )
            current = (
                HelpRequest.objects.exclude(outcome="bench_dropped").count(),
                OutboundEmail.objects.exclude(status=OutboundEmail.Status.QUEUED).count(),
            )
            if current == last:
                return
            last = current
            time.sleep(0.5)

    def log(self):
        return self.gunicorn_log.read_text(errors="replace")[-6000:]


# --- the load generator


def _expected(path):
    # Django's stock view redirects with a 302; the Help forms (and the trivial view) with a 303.
    return 302 if path == STOCK_PATH else 303


def _drive(port, requests, *, seconds, clients=CLIENTS):
    """POST `requests` (cycled) from `clients` concurrent connections for `seconds`.

    Returns (responses completed, seconds from the first send to the last answer, statuses).
    A client starts no new request after the deadline; those in flight are counted.
    """
    selector = selectors.DefaultSelector()
    statuses = Counter()
    address = ("127.0.0.1", port)
    sequence = iter(range(10**12))
    started = time.perf_counter()
    deadline = started + seconds
    last_answer = started

    def open_connection(chunks):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)
        chunks.clear()
        selector.register(sock, selectors.EVENT_WRITE, chunks)

    for _ in range(clients):
        open_connection([])
    active = clients
    while active:
        events = selector.select(timeout=30)
        if not events:
            raise RuntimeError("the server stopped answering")
        for key, mask in events:
            sock, chunks = key.fileobj, key.data
            if mask & selectors.EVENT_WRITE:
                payload = requests[next(sequence) % len(requests)]
                if sock.send(payload) != len(payload):
                    raise RuntimeError("a request did not fit the socket buffer")
                selector.modify(sock, selectors.EVENT_READ, chunks)
                continue
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            if data:
                chunks.append(data)
                continue
            selector.unregister(sock)
            sock.close()
            head = chunks[0] if chunks else b""
            statuses[int(head[9:12]) if head[9:12].isdigit() else 0] += 1
            last_answer = time.perf_counter()
            if last_answer < deadline:
                open_connection(chunks)
            else:
                active -= 1
    selector.close()
    return sum(statuses.values()), last_answer - started, statuses


def _request(port, payload):
    """One blocking request on a new connection: (status, head, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    response = b"".join(chunks)
    head, _, rest = response.partition(b"\r\n\r\n")
    return int(head[9:12]), head, rest


# --- processes and CPU accounting


def _has_errors(log_path):
    text = Path(log_path).read_text(errors="replace")
    return any(sign in text for sign in ("Traceback", "ERROR", "Failed to send password reset"))


def _wait_for_port(port, process, what, *, log=None, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                text = log.read_text(errors="replace")[-4000:] if log else ""
                raise RuntimeError(f"{what} did not start\n{text}") from None
            time.sleep(0.1)


def _stop(process, *, group=False, timeout=20):
    """SIGTERM (the whole group when it has one), then SIGKILL whatever is left."""
    if process is None or process.poll() is not None:
        return
    target = process.pid
    send = (lambda sig: os.killpg(target, sig)) if group else process.send_signal
    with contextlib.suppress(ProcessLookupError):
        send(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            send(signal.SIGKILL)
        process.wait(timeout=10)
    if group:  # workers the master did not take down with it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(target, signal.SIGKILL)


def _group_cpu_seconds(pgid):
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid:  # after the command: state, ppid, pgrp, ...
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _database_cpu_seconds():
    """CPU seconds used so far by the live PostgreSQL backends serving the benchmark's database
    (a backend's title is "postgres: [cluster: ]<user> <database> <client> <activity>")."""
    name = f" {connections['default'].settings_dict['NAME']} ".encode()
    ticks = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
            if not title.startswith(b"postgres: ") or name not in title:
                continue
            fields = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_cpu():
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _database_url():
    from tests.support.worker import database_url

    return database_url(connections["default"].settings_dict)


if __name__ == "__main__":
    from tests.bench.__main__ import format_table, prepare_environment

    prepare_environment()

    class _Args:
        quick = "--quick" in sys.argv

    print(format_table(run(_Args())))
