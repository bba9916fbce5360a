"""/healthz against the real services: PostgreSQL, Redis, and real failed connections."""

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone

from recovery.heartbeat import HEARTBEAT_KEY, record_heartbeat
from recovery.models import OutboundEmail
from settings.deploy import redis_cache

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_KEYS = {"database", "redis", "workers", "outbox_oldest_unsent_seconds"}


def closed_port():
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def no_heartbeat():
    cache.delete(HEARTBEAT_KEY)
    yield
    cache.delete(HEARTBEAT_KEY)


def test_everything_up_is_200(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert set(body) == EXPECTED_KEYS
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
    assert body["workers"] == {"status": "none", "last_heartbeat_seconds": None}
    assert body["outbox_oldest_unsent_seconds"] == 0


def test_trailing_slash_is_accepted(client, db):
    assert client.get("/healthz/").json()["database"] == "ok"


def test_workers_ok_after_a_heartbeat_and_stale_after_silence(client, db):
    record_heartbeat()
    workers = client.get("/healthz").json()["workers"]
    assert workers["status"] == "ok"
    assert 0 <= workers["last_heartbeat_seconds"] <= 5

    record_heartbeat(now=time.time() - 600)
    response = client.get("/healthz")
    assert response.status_code == 200  # a silent worker is reported, not a failed check
    workers = response.json()["workers"]
    assert workers["status"] == "stale"
    assert workers["last_heartbeat_seconds"] >= 600


def test_reports_the_oldest_unsent_email(client, db):
    email = OutboundEmail.objects.create(kind="welcome", to_address="a@example.org")
    OutboundEmail.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - timedelta(seconds=300)
    )
    sent = OutboundEmail.objects.create(
        kind="welcome", to_address="b@example.org", status=OutboundEmail.Status.SENT
    )
    OutboundEmail.objects.filter(pk=sent.pk).update(created_at=timezone.now() - timedelta(days=2))
    age = client.get("/healthz").json()["outbox_oldest_unsent_seconds"]
    assert 300 <= age < 400


def test_redis_unreachable_is_503_without_details(client, db, settings):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = redis_cache(url)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert set(body) == EXPECTED_KEYS
    assert body["redis"] == "error"
    assert body["database"] == "ok"
    assert body["workers"]["status"] == "none"
    text = response.content.decode()
    assert "Error" not in text and "refused" not in text and "127.0.0.1" not in text


def test_redis_not_configured_is_not_a_failure(client, db, settings):
    settings.REDIS_URL = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    record_heartbeat()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["redis"] == "not configured"
    assert response.json()["workers"]["status"] == "ok"


_PROBE = """
import json
import django
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_database_unreachable_is_503_without_details():
    # A real refused connection needs a process whose settings point at a closed port.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.test",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/portal_help",
    }
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["status"] == 503
    assert reply["body"]["database"] == "error"
    assert reply["body"]["redis"] == "ok"
    assert reply["body"]["outbox_oldest_unsent_seconds"] is None
    assert "refused" not in result.stdout and "connection" not in result.stdout
