"""`make run`: embedded defaults, nothing to install (SPEC §3, §5).

SQLite, Celery on kombu's filesystem transport (a real worker, no Redis), a file cache shared by
the web and worker processes, and every email written to var/mail/ for the /dev/mail/ viewer.
"""

from settings.base import *  # noqa: F403
from settings.base import VAR_DIR
from settings.env import env_list, env_str

VAR_DIR.mkdir(exist_ok=True)
DEBUG = True
SECRET_KEY = env_str("SECRET_KEY", "dev-only-not-secret-5d7a0c3e9b1f4a2e8c6d0b7f3a9e1c5d")
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "dev.sqlite3",
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": VAR_DIR / "cache",
    }
}
REDIS_URL = ""

CELERY_BROKER_URL = "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "data_folder_in": str(VAR_DIR / "broker" / "queue"),
    "data_folder_out": str(VAR_DIR / "broker" / "queue"),
    "processed_folder": str(VAR_DIR / "broker" / "processed"),
    "store_processed": False,
    "control_folder": str(VAR_DIR / "broker" / "control"),
}

MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": str(VAR_DIR / "mail")},
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Portal Help <portal-help@district.example>")
