"""Settings shared by every environment: the apps, the security baseline and district policy.

District policies have defaults here and are each overridable by an environment variable of
the same name (listed in README.md). Deployment facts (keys, databases, hosts) live in the
environment-specific modules.
"""

from pathlib import Path

from celery.schedules import crontab
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from settings.env import env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "recovery",
]

MIDDLEWARE = [
    # First: everything after it (HTTPS redirect, rate limits) must see the real client.
    "portal.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Staff sessions idle longer than STAFF_IDLE_TIMEOUT_SECONDS are ended (password + code again).
    "recovery.staff.middleware.StaffIdleTimeoutMiddleware",
    # A signed-in user who must change their password (a student on the default) sees nothing
    # else until they have.
    "portal.middleware.ForcePasswordChangeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "portal.User"
# ModelBackend plus the student default password checked against the SIS record (SPEC §6.4).
AUTHENTICATION_BACKENDS = ["portal.backends.PortalBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.district",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Passwords: Argon2id first (SPEC §6.3); the others only verify hashes made elsewhere.
PASSWORD_HASHERS = [
    "portal.hashers.PortalArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# SPEC §6.3 (portal/password_validation.py): 12+ characters (8 for students below grade 6), at
# most 128, no composition rules, not common, breached or built from the person's details.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "portal.password_validation.MinimumLengthValidator"},
    {"NAME": "portal.password_validation.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "portal.password_validation.BreachedPasswordValidator"},
    {"NAME": "portal.password_validation.PersonalInformationValidator"},
]

# Languages (SPEC §7): the person's choice, then the browser.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish")), ("vi", _("Vietnamese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("TIME_ZONE", "America/Los_Angeles")

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Security baseline for every environment; production adds HTTPS-only switches.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# A parent session ends after 12 hours at most (ASVS L2); the staff console is stricter.
SESSION_COOKIE_AGE = 12 * 60 * 60
# same-origin, not no-referrer: that sends "Origin: null" on our own POSTs and CSRF rejects them.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
# Links are built from PORTAL_BASE_URL, never from the request; X-Forwarded-Host is never trusted.
USE_X_FORWARDED_HOST = False

DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Celery (SPEC §5): three queues so a nightly batch never delays a parent's reset email.
CELERY_TASK_DEFAULT_QUEUE = "email"
CELERY_TASK_ROUTES = {
    "recovery.tasks.send_outbound_email": {"queue": "email"},
    "recovery.tasks.send_bulk_email": {"queue": "bulk_email"},
    "recovery.tasks.sweep_outbox": {"queue": "email"},
    "recovery.tasks.resolve_help_requests": {"queue": "email"},
    "recovery.tasks.resolve_help_request": {"queue": "email"},
    "recovery.tasks.sweep_help_requests": {"queue": "email"},
    "recovery.tasks.purge_old_records": {"queue": "batch"},
    "portal.tasks.send_bulk_emails": {"queue": "bulk_email"},
    "portal.tasks.*": {"queue": "batch"},
}
# A worker killed mid-task must not lose the task: acknowledge only after it finished.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Redis has no real acknowledgements: a message a worker took but never acked (the worker was
# SIGKILLed) goes back to its queue once visibility_timeout has passed. It must exceed the longest
# countdown we schedule (a retry waiting for its ETA sits unacked in a worker) and the longest task
# (an SMTP send, 30 s at most), or Redis would hand out a second copy of a healthy task. Fifteen
# minutes is above OUTBOX_RETRY_MAX_SECONDS' default; the outbox sweeper finds lost emails well
# before that anyway (OUTBOX_STALE_SECONDS), so this is only the backstop. Short socket timeouts
# keep a request's on-commit enqueue from hanging on a broker that is down or gone silent (they
# stay above the 1 s BRPOP that workers poll with).
# Publishing a task retries once, briefly: every publish happens on a request's commit (or a
# worker's), which must wait at most a second or two for a broker that is down; the sweepers
# publish whatever did not get out.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 900,
    "socket_connect_timeout": 3,
    "socket_timeout": 5,
}
# Celery's Django fixup closes the database connection before and after every task unless this
# is set, which costs a new PostgreSQL connection per email. portal.celery_app instead applies
# Django's own per-request rule around each task (CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 1_000_000

# --- District policy (SPEC §3), each overridable by an environment variable of the same name.
RECOVERY_RESET_TOKEN_MAX_AGE = env_int("RECOVERY_RESET_TOKEN_MAX_AGE", 3600)
ACTIVATION_TOKEN_MAX_AGE = env_int("ACTIVATION_TOKEN_MAX_AGE", 7 * 24 * 3600)
EMAIL_CONFIRM_TOKEN_MAX_AGE = env_int("EMAIL_CONFIRM_TOKEN_MAX_AGE", 24 * 3600)
STAFF_CODE_MAX_AGE = env_int("STAFF_CODE_MAX_AGE", 7 * 24 * 3600)
STUDENT_INITIAL_PASSWORD = env_str("STUDENT_INITIAL_PASSWORD", "default")
STUDENT_DEFAULT_PASSWORD_DAYS = env_int("STUDENT_DEFAULT_PASSWORD_DAYS", 60)
STUDENT_NUMBER_FIELD = env_str("STUDENT_NUMBER_FIELD", "identifier")
PROVISION_RELATIVES = env_bool("PROVISION_RELATIVES", False)
PROVISIONING_SCHEDULE = env_str("PROVISIONING_SCHEDULE", "02:30")
ROSTER_DROP_PATH = env_str("ROSTER_DROP_PATH", "")
ROSTER_MAX_DEACTIVATE_SHARE = env_float("ROSTER_MAX_DEACTIVATE_SHARE", 0.10)
RECOVERY_EMAIL_UNKNOWN_ACCOUNTS = env_bool("RECOVERY_EMAIL_UNKNOWN_ACCOUNTS", True)
SUPPORT_CONTACT = env_str(
    "SUPPORT_CONTACT",
    "the District Help Desk, (408) 555-0100, Monday to Friday 8 am to 4 pm, "
    "or your school's front office",
)
DISTRICT_NAME = env_str("DISTRICT_NAME", "Unified School District")
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
# Rate limits as "count/period" (s, m, h, d; "5/15m" works too). Per-IP limits are generous
# enough for a whole school behind one address.
RATELIMIT_RESET_PER_IDENTIFIER = env_str("RATELIMIT_RESET_PER_IDENTIFIER", "5/h")
RATELIMIT_RESET_PER_IP = env_str("RATELIMIT_RESET_PER_IP", "20/m")
RATELIMIT_EMAIL_PER_ADDRESS = env_str("RATELIMIT_EMAIL_PER_ADDRESS", "3/h")
RATELIMIT_LANDING_PER_IP = env_str("RATELIMIT_LANDING_PER_IP", "30/m")
RATELIMIT_MAIL_GLOBAL = env_str("RATELIMIT_MAIL_GLOBAL", "600/m")
OUTBOX_SWEEP_SECONDS = env_int("OUTBOX_SWEEP_SECONDS", 60)
OUTBOX_STALE_SECONDS = env_int("OUTBOX_STALE_SECONDS", 120)
# Transient SMTP failures are retried after base * 2**(attempt-1) seconds, capped at max; the
# email fails for good after OUTBOX_RETRY_MAX_ATTEMPTS (about 75 minutes of retrying by default).
OUTBOX_RETRY_BASE_SECONDS = env_float("OUTBOX_RETRY_BASE_SECONDS", 30.0)
OUTBOX_RETRY_MAX_SECONDS = env_float("OUTBOX_RETRY_MAX_SECONDS", 600.0)
OUTBOX_RETRY_MAX_ATTEMPTS = env_int("OUTBOX_RETRY_MAX_ATTEMPTS", 12)
OUTBOX_SWEEP_BATCH = env_int("OUTBOX_SWEEP_BATCH", 500)
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Staff console (SPEC §6.7) and retention (checklist O10).
STAFF_IDLE_TIMEOUT_SECONDS = env_int("STAFF_IDLE_TIMEOUT_SECONDS", 30 * 60)
# The name staff see for their account in the authenticator app (django-otp's otpauth:// URI).
OTP_TOTP_ISSUER = f"{DISTRICT_NAME} Portal"
MANUAL_REQUEST_RETENTION_DAYS = env_int("MANUAL_REQUEST_RETENTION_DAYS", 365)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 730)
RATELIMIT_MANUAL_REQUEST_PER_IP = env_str("RATELIMIT_MANUAL_REQUEST_PER_IP", "10/h")
RATELIMIT_MANUAL_REQUEST_PER_ADDRESS = env_str("RATELIMIT_MANUAL_REQUEST_PER_ADDRESS", "3/d")
# Login throttle (SPEC §6.2, portal.login_throttle): per account, no delay for the first
# LOGIN_FREE_FAILURES consecutive failures, then LOGIN_DELAY_BASE seconds doubling up to
# LOGIN_DELAY_MAX; locked at LOGIN_LOCK_AFTER until a reset or a staff unlock. Failures per
# client IP, and a stricter limit for every username shaped like a student number.
LOGIN_FREE_FAILURES = env_int("LOGIN_FREE_FAILURES", 5)
LOGIN_DELAY_BASE = env_int("LOGIN_DELAY_BASE", 60)
LOGIN_DELAY_MAX = env_int("LOGIN_DELAY_MAX", 15 * 60)
LOGIN_LOCK_AFTER = env_int("LOGIN_LOCK_AFTER", 100)
RATELIMIT_LOGIN_PER_IP = env_str("RATELIMIT_LOGIN_PER_IP", "200/15m")
RATELIMIT_LOGIN_STUDENT_NUMBER = env_str("RATELIMIT_LOGIN_STUDENT_NUMBER", "10/h")
STUDENT_NUMBER_PATTERN = env_str("STUDENT_NUMBER_PATTERN", r"^\d{5,10}$")
# The student code page (/login/code/): attempts per client IP and per typed username.
RATELIMIT_STUDENT_CODE_PER_IP = env_str("RATELIMIT_STUDENT_CODE_PER_IP", "30/h")
RATELIMIT_STUDENT_CODE_PER_USERNAME = env_str("RATELIMIT_STUDENT_CODE_PER_USERNAME", "5/h")


def _nightly(schedule):
    hour, _, minute = schedule.partition(":")
    return crontab(hour=int(hour), minute=int(minute or 0))


CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {
        "task": "recovery.tasks.sweep_outbox",
        "schedule": float(OUTBOX_SWEEP_SECONDS),
    },
    "sweep-help-requests": {
        "task": "recovery.tasks.sweep_help_requests",
        "schedule": float(OUTBOX_SWEEP_SECONDS),
    },
    "nightly-roster": {
        "task": "portal.tasks.nightly_roster",
        "schedule": _nightly(PROVISIONING_SCHEDULE),
    },
    # Daily, after the default nightly roster job, on the batch queue (checklist O10).
    "purge-old-records": {
        "task": "recovery.tasks.purge_old_records",
        "schedule": crontab(hour=3, minute=45),
        "options": {"queue": "batch"},
    },
}
CELERY_TIMEZONE = TIME_ZONE
