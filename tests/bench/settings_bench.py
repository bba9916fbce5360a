"""Settings for the Help benchmark's gunicorn and Celery worker (tests/bench/bench_help.py).

settings.test, plus what production has and the test settings leave out: persistent database
connections (CONN_MAX_AGE > 0, health-checked) and DEBUG off. Rate limits are raised rather than
switched off, so every request still pays for its Redis counters, and the comparison views live
beside the product's URLs (tests.bench.urls_bench).
"""

from settings.deploy import database_from_url
from settings.env import env_str
from settings.test import *  # noqa: F403

DEBUG = False
DATABASES = database_from_url(
    env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/portal_help_bench"),
    conn_max_age=600,
)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.bench.urls_bench"

# Counted, never reached: a benchmark that hit a limit would measure the 429 page.
_UNREACHABLE = "1000000000/m"
RATELIMIT_ENABLE = True
RATELIMIT_RESET_PER_IDENTIFIER = _UNREACHABLE
RATELIMIT_RESET_PER_IP = _UNREACHABLE
RATELIMIT_EMAIL_PER_ADDRESS = _UNREACHABLE
RATELIMIT_MAIL_GLOBAL = _UNREACHABLE
RATELIMIT_LANDING_PER_IP = _UNREACHABLE
