"""Suite-wide set-up: fail fast and clearly when PostgreSQL or Redis is not running."""

import socket

import pytest
from django.conf import settings

pytest_plugins = ["tests.support.smtp", "tests.support.worker"]  # real SMTP server, real workers


def _reachable(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config):
    db = settings.DATABASES["default"]
    missing = []
    if not _reachable(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)):
        missing.append(f"PostgreSQL at {db.get('HOST')}:{db.get('PORT')}")
    redis_host, redis_port = _redis_address(settings.REDIS_URL)
    if not _reachable(redis_host, redis_port):
        missing.append(f"Redis at {redis_host}:{redis_port}")
    if missing:
        pytest.exit(
            "make test needs " + " and ".join(missing) + " (see README.md, 'Running the tests').",
            returncode=3,
        )


def _redis_address(url):
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


@pytest.fixture(autouse=True)
def _no_help_resolver_pending():
    """Each test starts without a Help resolver task believed queued (recovery.help_requests):
    one left by an earlier test, whose task was never run, would keep this test's requests
    from waking a worker."""
    from recovery.help_requests import clear_resolver_pending

    clear_resolver_pending()
