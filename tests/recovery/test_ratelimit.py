"""Rate limits on real Redis: exact counts under concurrency, hashed keys, the trusted client IP."""

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from portal.middleware import TrustedProxyMiddleware
from recovery import ratelimit
from recovery.ratelimit import Rate

START = datetime(2026, 3, 9, 8, 10, tzinfo=UTC)  # ten minutes into an hour window
EMAIL = "Maria.Garcia@Example.org"


@pytest.fixture
def redis_db():
    client = ratelimit.redis_client()
    assert client is not None, "the tests need REDIS_URL"
    return client


@pytest.fixture
def action(redis_db):
    """A fresh action name per test; its counters are removed afterwards."""
    name = f"test.{uuid.uuid4().hex}"
    yield name
    for key in redis_db.scan_iter(match=f"{ratelimit.KEY_PREFIX}{name}:*"):
        redis_db.delete(key)


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as clock:
        yield clock


def stored(redis_db, action):
    """{key: count} of every counter Redis holds for `action`."""
    return {
        key.decode(): int(redis_db.get(key))
        for key in redis_db.scan_iter(match=f"{ratelimit.KEY_PREFIX}{action}:*")
    }


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("5/h", 5, 3600),
        ("20/m", 20, 60),
        ("5/15m", 5, 900),
        ("100/30s", 100, 30),
        ("3/d", 3, 86400),
        (" 600 / m ", 600, 60),
    ],
)
def test_rate_parse(text, count, period):
    rate = Rate.parse(text)
    assert (rate.count, rate.period) == (count, period)
    assert Rate.parse(str(rate)) == rate
    assert Rate.parse(rate) is rate


def test_rate_reads_back_as_written():
    assert [str(Rate.parse(t)) for t in ("5/h", "5/15m", "3/d", "100/30s", "2/90s")] == [
        "5/h",
        "5/15m",
        "3/d",
        "100/30s",
        "2/90s",
    ]


@pytest.mark.parametrize("text", ["", "5", "h/5", "5/x", "-1/h", "5/0m", "five/h", "5/h/2"])
def test_rate_parse_refuses_nonsense(text):
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_limit_reached_at_exactly_n_plus_one(action, frozen):
    decisions = [ratelimit.hit(action=action, key=EMAIL, rate="5/h") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    assert [d.retry_after for d in decisions[:5]] == [0] * 5


def test_retry_after_is_the_rest_of_the_window(action, frozen):
    for _ in range(6):
        decision = ratelimit.hit(action=action, key=EMAIL, rate="5/h")
    assert decision.retry_after == 50 * 60  # 08:10 -> 09:00
    frozen.shift(timedelta(seconds=decision.retry_after - 1))
    assert not ratelimit.hit(action=action, key=EMAIL, rate="5/h").allowed
    frozen.shift(timedelta(seconds=1))
    assert ratelimit.hit(action=action, key=EMAIL, rate="5/h").allowed

    for _ in range(3):
        short = ratelimit.hit(action=action, key="other", rate="2/15m")
    assert not short.allowed and short.retry_after == 15 * 60


def test_identifiers_are_counted_in_normal_form(action, frozen):
    # A4: "Maria.Garcia@Example.org " and its casefolded, full-width twin share one counter.
    for variant in (EMAIL, " maria.garcia@example.org", "\uff4daria.garcia@example.org"):
        ratelimit.hit(action=action, key=variant, rate="3/h")
    assert not ratelimit.hit(action=action, key=EMAIL.lower(), rate="3/h").allowed
    assert ratelimit.hit(action=action, key="someone.else@example.org", rate="3/h").allowed


def test_actions_have_separate_counters(action, frozen):
    for _ in range(2):
        ratelimit.hit(action=action, key=EMAIL, rate="2/h")
    assert not ratelimit.hit(action=action, key=EMAIL, rate="2/h").allowed
    other = f"{action}.other"
    try:
        assert ratelimit.hit(action=other, key=EMAIL, rate="2/h").allowed
    finally:
        ratelimit.reset(action=other, key=EMAIL, rate="2/h")


def test_concurrent_hits_are_counted_exactly(action, redis_db, frozen):
    threads, per_thread, limit = 8, 50, 100
    barrier = threading.Barrier(threads)
    allowed = []
    lock = threading.Lock()

    def hammer():
        barrier.wait()
        mine = 0
        for _ in range(per_thread):
            if ratelimit.hit(action=action, key="one.key", rate=f"{limit}/h").allowed:
                mine += 1
        with lock:
            allowed.append(mine)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sum(allowed) == limit
    assert list(stored(redis_db, action).values()) == [threads * per_thread]


def test_peek_counts_nothing(action, redis_db, frozen):
    for _ in range(20):
        assert ratelimit.peek(action=action, key=EMAIL, rate="3/h").allowed
    assert stored(redis_db, action) == {}
    for _ in range(3):
        ratelimit.hit(action=action, key=EMAIL, rate="3/h")
    throttled = ratelimit.peek(action=action, key=EMAIL, rate="3/h")
    assert not throttled.allowed and throttled.retry_after == 50 * 60
    assert list(stored(redis_db, action).values()) == [3]


def test_reset_clears_the_counter(action, frozen):
    for _ in range(4):
        ratelimit.hit(action=action, key=EMAIL, rate="3/h")
    ratelimit.reset(action=action, key=EMAIL.upper(), rate="3/h")
    assert ratelimit.peek(action=action, key=EMAIL, rate="3/h").allowed
    assert ratelimit.hit(action=action, key=EMAIL, rate="3/h").remaining == 2


@override_settings(RATELIMIT_ENABLE=False)
def test_disabled_switch_allows_everything_and_stores_nothing(action, redis_db, frozen):
    assert all(ratelimit.hit(action=action, key=EMAIL, rate="1/h").allowed for _ in range(50))
    assert ratelimit.peek(action=action, key=EMAIL, rate="1/h").allowed
    assert stored(redis_db, action) == {}


def test_redis_holds_no_identifier_in_clear(action, redis_db, frozen):
    typed = [EMAIL, "garcia.maria", "S123456", "203.0.113.77", "2001:db8:1:2::/64"]
    for value in typed:
        ratelimit.hit(action=action, key=value, rate="5/h")
    keys = stored(redis_db, action)
    assert len(keys) == len(typed)
    for key in keys:
        for value in typed:
            for form in (value, value.casefold(), ratelimit.normalise_identifier(value)):
                assert form not in key
        assert "maria" not in key.casefold() and "garcia" not in key.casefold()


def test_redis_down_fails_as_the_call_site_chose(action, caplog):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"), caplog.at_level(logging.WARNING):
        opened = ratelimit.hit(action=action, key=EMAIL, rate="1/h", fail_open=True)
        closed = ratelimit.hit(action=action, key=EMAIL, rate="1/h")
        peeked = ratelimit.peek(action=action, key=EMAIL, rate="1/h")
        ratelimit.reset(action=action, key=EMAIL, rate="1/h")  # logs, does not raise
    assert opened.allowed
    assert not closed.allowed and closed.retry_after == ratelimit.UNAVAILABLE_RETRY_AFTER
    assert not peeked.allowed
    assert action in caplog.text
    assert "maria" not in caplog.text.casefold()


def test_without_redis_the_demo_counts_in_the_django_cache(action, redis_db, frozen):
    demo_cache = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(REDIS_URL="", CACHES=demo_cache):
        caches["default"].clear()
        decisions = [ratelimit.hit(action=action, key=EMAIL, rate="2/h") for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert not ratelimit.peek(action=action, key=EMAIL, rate="2/h").allowed
        ratelimit.reset(action=action, key=EMAIL, rate="2/h")
        assert ratelimit.hit(action=action, key=EMAIL, rate="2/h").allowed
    assert stored(redis_db, action) == {}


def test_mail_budget_is_a_global_breaker(frozen):
    rate = "3/m"
    ratelimit.reset(action="mail.global", key="all", rate=rate)
    try:
        with override_settings(RATELIMIT_MAIL_GLOBAL=rate):
            assert [ratelimit.mail_budget_available() for _ in range(4)] == [
                True,
                True,
                True,
                False,
            ]
            frozen.shift(timedelta(minutes=1))
            assert ratelimit.mail_budget_available()
    finally:
        ratelimit.reset(action="mail.global", key="all", rate=rate)


# -- Client IP ----------------------------------------------------------------------------------


def through_middleware(**meta):
    """The client IP as a view behind portal.middleware.TrustedProxyMiddleware sees it."""
    seen = {}

    def view(request):
        seen["ip"] = ratelimit.client_ip(request)
        return HttpResponse()

    TrustedProxyMiddleware(view)(RequestFactory().post("/help/forgot-password/", **meta))
    return seen["ip"]


@pytest.mark.parametrize(
    ("remote_addr", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:eeee:dddd:cccc", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("", "unknown"),
        ("not-an-ip", "unknown"),
        ("203.0.113.9, 10.0.0.1", "unknown"),
    ],
)
def test_client_ip(remote_addr, expected):
    assert through_middleware(REMOTE_ADDR=remote_addr) == expected


def test_ipv6_hosts_in_one_slash_64_share_a_counter(action, frozen):
    first = through_middleware(REMOTE_ADDR="2001:db8:aa:bb::1")
    second = through_middleware(REMOTE_ADDR="2001:db8:aa:bb:1234:5678:9abc:def0")
    neighbour = through_middleware(REMOTE_ADDR="2001:db8:aa:bc::1")
    assert ratelimit.hit(action=action, key=first, rate="1/m").allowed
    assert not ratelimit.hit(action=action, key=second, rate="1/m").allowed
    assert ratelimit.hit(action=action, key=neighbour, rate="1/m").allowed


@override_settings(TRUSTED_PROXY_COUNT=0)
def test_forged_forwarded_for_is_ignored_without_trusted_proxies(action, frozen):
    # B2: a client rotating X-Forwarded-For / X-Real-IP is still one client.
    decisions = []
    for n in range(25):
        ip = through_middleware(
            REMOTE_ADDR="198.51.100.20",
            HTTP_X_FORWARDED_FOR=f"10.9.{n}.1",
            HTTP_X_REAL_IP=f"10.8.{n}.1",
        )
        assert ip == "198.51.100.20"
        decisions.append(ratelimit.hit(action=action, key=ip, rate="20/m").allowed)
    assert decisions == [True] * 20 + [False] * 5


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_one_trusted_proxy_gives_the_hop_it_saw():
    # The client may prepend anything; the proxy appends the address it actually saw.
    ip = through_middleware(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.50")
    assert ip == "203.0.113.50"
    assert through_middleware(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="2001:db8::7") == (
        "2001:db8::/64"
    )


# -- Messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (0, "Please try again in 1 minute."),
        (1, "Please try again in 1 minute."),
        (60, "Please try again in 1 minute."),
        (61, "Please try again in 2 minutes."),
        (50 * 60, "Please try again in 50 minutes."),
        (3600, "Please try again in 60 minutes."),
        (3601, "Please try again in 2 hours."),
        (86400, "Please try again in 24 hours."),
    ],
)
def test_retry_after_message(seconds, message):
    assert ratelimit.retry_after_message(seconds) == message
