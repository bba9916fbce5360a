"""Production: every deployment fact comes from the environment (SPEC §3).

Importing this module without a required variable raises ImproperlyConfigured naming it, so
gunicorn, the Celery worker and beat all refuse to start misconfigured.
"""

from settings.base import *  # noqa: F403
from settings.deploy import base_url_parts, database_from_url, redis_cache
from settings.env import env_bool, env_int, env_list, env_str

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
DATABASES = database_from_url(env_str("DATABASE_URL"))
REDIS_URL = env_str("REDIS_URL")
CACHES = redis_cache(REDIS_URL)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)

# The deployment contract names the classic EMAIL_* variables; Django 6.1 configures mail
# through MAILERS, so they are read into its options here.
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env_str("EMAIL_HOST"),
            "port": env_int("EMAIL_PORT", 587),
            "username": env_str("EMAIL_HOST_USER", ""),
            "password": env_str("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", True),
            "timeout": 30,
        },
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

PORTAL_BASE_URL = env_str("PORTAL_BASE_URL").rstrip("/")
_scheme, _host = base_url_parts(PORTAL_BASE_URL)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")

# The scheme of PORTAL_BASE_URL decides: https:// = cookies only over TLS, HSTS, redirect to HTTPS.
_https = _scheme == "https"
SECURE_SSL_REDIRECT = _https
# Load balancers poll /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
if _https:
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = [f"{_scheme}://{_host}"]
# portal.middleware.TrustedProxyMiddleware reduces X-Forwarded-Proto to the trusted hop's entry
# (or removes it when no proxy is trusted), so this header can only come from our own proxy.
if TRUSTED_PROXY_COUNT > 0:  # noqa: F405
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
