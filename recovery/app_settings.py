"""Recovery's overridable policy in one place (django-allauth's app_settings style).

Every value is read from django.conf.settings when asked for, not at import, so
override_settings in tests and per-deployment environment variables both take effect. Defaults
here match settings/base.py; the ones base.py does not define yet are read with getattr.
"""

from django.conf import settings

DAY = 24 * 3600


class AppSettings:
    def _setting(self, name, default):
        return getattr(settings, name, default)

    # -- Token lifetimes (seconds), per purpose: SPEC §3, checklist C3 ---------------------------

    @property
    def RESET_TOKEN_MAX_AGE(self):
        return int(self._setting("RECOVERY_RESET_TOKEN_MAX_AGE", 3600))

    @property
    def ACTIVATION_TOKEN_MAX_AGE(self):
        return int(self._setting("ACTIVATION_TOKEN_MAX_AGE", 7 * DAY))

    @property
    def EMAIL_CONFIRM_TOKEN_MAX_AGE(self):
        return int(self._setting("EMAIL_CONFIRM_TOKEN_MAX_AGE", DAY))

    @property
    def STAFF_CODE_MAX_AGE(self):
        return int(self._setting("STAFF_CODE_MAX_AGE", 7 * DAY))

    def token_max_age(self, purpose):
        """Seconds a token of `purpose` (an IssuedToken.Purpose value) lives."""
        ages = {
            "reset": self.RESET_TOKEN_MAX_AGE,
            "activation": self.ACTIVATION_TOKEN_MAX_AGE,
            "email_confirm": self.EMAIL_CONFIRM_TOKEN_MAX_AGE,
            "staff_code": self.STAFF_CODE_MAX_AGE,
        }
        try:
            return ages[purpose]
        except KeyError:
            raise ValueError(f"unknown token purpose {purpose!r}") from None

    # -- Rate limits: readable "count/period" strings (recovery.ratelimit.Rate), SPEC §6.2 ---------

    @property
    def RATELIMIT_ENABLE(self):
        return bool(self._setting("RATELIMIT_ENABLE", True))

    @property
    def RATELIMIT_RESET_PER_IDENTIFIER(self):
        # Reset and username requests per normalised username / email address.
        return self._setting("RATELIMIT_RESET_PER_IDENTIFIER", "5/h")

    @property
    def RATELIMIT_RESET_PER_IP(self):
        # Generous: a whole school can sit behind one address.
        return self._setting("RATELIMIT_RESET_PER_IP", "20/m")

    @property
    def RATELIMIT_EMAIL_PER_ADDRESS(self):
        # Emails actually sent to one address (inbox flooding, checklist B1).
        return self._setting("RATELIMIT_EMAIL_PER_ADDRESS", "3/h")

    @property
    def RATELIMIT_LANDING_PER_IP(self):
        # Token landing pages (brute force of links, checklist B3).
        return self._setting("RATELIMIT_LANDING_PER_IP", "30/m")

    @property
    def RATELIMIT_MAIL_GLOBAL(self):
        # The global breaker: past it, mail waits in the outbox; nothing is dropped.
        return self._setting("RATELIMIT_MAIL_GLOBAL", "600/m")

    # -- Deployment facts and district text --------------------------------------------------------

    @property
    def TRUSTED_PROXY_COUNT(self):
        return int(self._setting("TRUSTED_PROXY_COUNT", 0))

    @property
    def SUPPORT_CONTACT(self):
        return self._setting("SUPPORT_CONTACT", "")

    @property
    def PORTAL_BASE_URL(self):
        return self._setting("PORTAL_BASE_URL", "").rstrip("/")

    @property
    def REDIS_URL(self):
        return self._setting("REDIS_URL", "")


app_settings = AppSettings()
