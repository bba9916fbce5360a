"""Real Celery worker processes for integration tests and benchmarks.

    def test_something(start_worker, smtp_server):       # implies transactional_db
        worker = start_worker(env={"OUTBOX_STALE_SECONDS": "1"})
        ...                                               # the worker consumes what tests enqueue
        worker.kill()                                     # SIGKILL, children included
        worker.start()                                    # the same worker again

`start_worker(*, env=None, beat=False, concurrency=1)` starts `python -m celery -A portal worker`
(prefork, `-Q email,bulk_email,batch`, no gossip or mingle) with DJANGO_SETTINGS_MODULE=
settings.test, DATABASE_URL = the pytest-django test database, REDIS_URL and CELERY_BROKER_URL
= the test session's, EMAIL_HOST/EMAIL_PORT = the `smtp_server` fixture, plus `env`; it returns
once the worker answers a ping. `beat=True` embeds beat (`-B`), so the outbox sweeper runs every
OUTBOX_SWEEP_SECONDS. `worker_process` is one such worker with defaults.

The broker is the session's REDIS_URL database (each developer or CI job has its own). The
fixture empties the worker queues and Redis's unacknowledged-message store before and after
each test, so nothing a test enqueued (or a killed worker left unacked) leaks into the next;
the cache's keys are left alone. Workers are stopped before pytest-django flushes the tables.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("email", "bulk_email", "batch")
# kombu's Redis transport keeps priority variants of each queue and a store of messages taken
# but not yet acknowledged; both must go for a queue to be empty.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_UNACKED_KEYS = ("unacked", "unacked_index", "unacked_mutex")


def database_url(settings_dict):
    """A DATABASE_URL for a Django connection's settings (e.g. the pytest-django test db)."""
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgresql://{credentials}{host}:{port}/{settings_dict['NAME']}"


def worker_environment(*, database_url, redis_url, broker_url, smtp_port, extra=None):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="settings.test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=broker_url,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in (extra or {}).items()})
    return env


def purge_broker(broker_url, *, queues=QUEUES):
    """Empty the worker queues, and Redis's store of unacknowledged messages, on a broker."""
    import redis

    from recovery.help_requests import clear_resolver_pending

    client = redis.Redis.from_url(broker_url)
    try:
        keys = [f"{queue}{suffix}" for queue in queues for suffix in _PRIORITY_SUFFIXES]
        client.delete(*keys, *_UNACKED_KEYS)
    finally:
        client.close()
    # The flag says "a Help resolver task is queued": with the queue emptied, it would lie, and
    # no request would wake a resolver again until it expired.
    clear_resolver_pending()


class WorkerProcess:
    """One `celery -A portal worker` process (and its pool children), in a session of its own."""

    def __init__(self, *, env, log_path, queues=QUEUES, concurrency=1, beat=False):
        self.env = env
        self.log_path = Path(log_path)
        self.queues = queues
        self.concurrency = concurrency
        self.beat = beat
        self.nodename = f"test-{uuid.uuid4().hex[:10]}@localhost"
        self.process = None
        self._log = None

    @property
    def command(self):
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-n",
            self.nodename,
            "-Q",
            ",".join(self.queues),
            "--pool",
            "prefork",
            "-c",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        if self.beat:
            command += ["-B", "-s", str(self.log_path.with_suffix(".beat-schedule"))]
        return command

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout=60):
        """Start (or start again after kill/stop) and wait until the worker answers a ping."""
        assert not self.alive, "worker already running"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in _reap)
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group, so kill() takes the pool children down with it, as when a
            # machine or container dies.
            start_new_session=True,
        )
        self.wait_ready(timeout=timeout)
        return self

    def wait_ready(self, *, timeout=60):
        from portal.celery_app import app

        def answers():
            if not self.alive:
                raise AssertionError(f"The worker exited ({self.process.returncode}):\n{self.log}")
            return app.control.ping(destination=[self.nodename], timeout=0.5)

        wait_until(
            answers, timeout=timeout, interval=0.1, message=lambda: f"worker ready\n{self.log}"
        )

    def kill(self):
        """SIGKILL the worker and its pool children at once: no warm shutdown, no acks."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reap(timeout=10)

    def stop(self, *, timeout=30):
        """Warm shutdown (SIGTERM: finish the current task), then SIGKILL what is left."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        self.kill()

    @property
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def _reap(self, *, timeout):
        deadline = time.monotonic() + timeout
        if self.process is not None:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture
def start_worker(transactional_db, smtp_server, tmp_path):
    """A factory: start_worker(*, env=None, beat=False, concurrency=1) -> WorkerProcess."""
    from django.conf import settings
    from django.db import connection

    broker_url = settings.CELERY_BROKER_URL
    purge_broker(broker_url)
    workers = []

    def start(*, env=None, beat=False, concurrency=1):
        worker = WorkerProcess(
            env=worker_environment(
                database_url=database_url(connection.settings_dict),
                redis_url=settings.REDIS_URL,
                broker_url=broker_url,
                smtp_port=smtp_server.port,
                extra=env,
            ),
            log_path=tmp_path / f"worker-{len(workers)}.log",
            concurrency=concurrency,
            beat=beat,
        )
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
    purge_broker(broker_url)


@pytest.fixture
def worker_process(start_worker):
    """One running worker with the default settings."""
    return start_worker()
