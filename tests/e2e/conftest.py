"""Browser tests (SPEC §7; checklist E2, F2, O2): Debian's Chromium driven by Playwright.

One Chromium for the whole package, a fresh context (cookies, storage) per test, and
pytest-django's `live_server` (a real threaded HTTP server on localhost, static files served
by StaticFilesHandler, so the pages' real CSS loads) over a transactional database the test
writes its accounts into.

Nothing here is optional in CI: without /usr/bin/chromium or node_modules/axe-core the tests
FAIL with the install step to run, they never skip.

Why package scope (not session) for Playwright: its sync API keeps an asyncio loop marked as
running in the main thread while it is started, and Django's ORM refuses to run under a running
loop (SynchronousOnlyOperation). DJANGO_ALLOW_ASYNC_UNSAFE lifts that only while these tests
run; Playwright is stopped, and the variable restored, before any other package's tests.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings

from recovery import ratelimit
from tests.support.worker import purge_broker

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_PATH = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# As the machine's probe runs it: without the background-networking switches Chromium keeps
# dialling Google's services, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config):
    # Also registered in pyproject.toml; kept here so the package runs on its own too.
    config.addinivalue_line("markers", "e2e: browser tests (Chromium + Playwright + axe-core)")


@pytest.fixture(scope="package")
def axe_source():
    if not AXE_PATH.is_file():
        pytest.fail(
            f"{AXE_PATH.relative_to(ROOT)} is missing: run `npm ci --no-audit --no-fund` at the "
            "repository root (make install does) to install the pinned axe-core.",
            pytrace=False,
        )
    return AXE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (`apt-get install chromium`); "
            "these tests never download a browser of their own.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser, live_server):
    """Open browser contexts (English unless `locale` is given) on the live server; all closed
    at the end of the test."""
    contexts = []

    def open_context(**options):
        options.setdefault("locale", "en-US")
        context = browser.new_context(base_url=live_server.url, **options)
        # A hung page fails the test after 15 s instead of Playwright's 30.
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


@pytest.fixture(autouse=True)
def _e2e_isolation(transactional_db, live_server):
    """Every browser test: a live server over committed rows, fresh rate-limit counters (all
    requests come from 127.0.0.1), and no task left queued for the next package's workers."""
    client = ratelimit.redis_client()

    def wipe_counters():
        for pattern in (f"{ratelimit.KEY_PREFIX}*", "portal:login:*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)

    wipe_counters()
    yield
    wipe_counters()
    purge_broker(settings.CELERY_BROKER_URL)
