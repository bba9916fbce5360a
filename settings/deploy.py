"""Helpers that turn deployment facts into Django settings, shared by test and production."""

from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def database_from_url(url, *, conn_max_age=600):
    config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Server-side cursors break under transaction-pooling proxies; we stream with COPY instead.
        config.setdefault("DISABLE_SERVER_SIDE_CURSORS", True)
        # A database host that drops packets must fail /healthz quickly, not hang it.
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    return {"default": config}


def redis_cache(url):
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "portal-help",
        }
    }


def base_url_parts(base_url, *, variable="PORTAL_BASE_URL"):
    """Validate the canonical URL put in every emailed link; return (scheme, host)."""
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(f"{variable} must be an absolute http:// or https:// URL.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ImproperlyConfigured(f"{variable} must be a plain origin with an optional path.")
    return parts.scheme, parts.hostname
