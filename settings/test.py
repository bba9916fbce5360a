"""`make test`: real PostgreSQL and Redis on localhost (SPEC §3).

DATABASE_URL and REDIS_URL may point elsewhere; the defaults are the services CI runs.
"""

from settings.base import *  # noqa: F403
from settings.deploy import database_from_url, redis_cache
from settings.env import env_list, env_str

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY", "test-only-not-secret-0b9f6c1e7a4d4c3f9e2a8b5d6c7e1f0a")
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = ["portal.example.org", "testserver", "127.0.0.1", "localhost"]
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "https://portal.example.org")

DATABASES = database_from_url(
    env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/portal_help"), conn_max_age=0
)
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/15")
CACHES = redis_cache(REDIS_URL)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)

# In-process tests get Django's locmem mailer; worker processes the tests start send by SMTP
# to the aiosmtpd server the test runs, on the port it passes in EMAIL_PORT.
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env_str("EMAIL_HOST", "127.0.0.1"),
            "port": int(env_str("EMAIL_PORT", "2525")),
            "timeout": 10,
        },
    }
}
DEFAULT_FROM_EMAIL = "Portal Help <portal-help@portal.example.org>"

# Argon2 with a tiny memory cost keeps the suite fast; production uses portal.hashers' own.
PASSWORD_HASHERS = ["portal.hashers.FastTestArgon2PasswordHasher"]
