"""Recovery policy is read from settings when used, so deployments and tests can override it."""

import pytest
from django.test import override_settings

from recovery.app_settings import app_settings
from recovery.models import IssuedToken
from recovery.ratelimit import Rate


def test_defaults_match_the_spec(settings):
    for name in ("STAFF_CODE_MAX_AGE", "RATELIMIT_RESET_PER_IDENTIFIER", "RATELIMIT_MAIL_GLOBAL"):
        if hasattr(settings, name):
            delattr(settings, name)
    assert app_settings.RESET_TOKEN_MAX_AGE == 3600
    assert app_settings.ACTIVATION_TOKEN_MAX_AGE == 7 * 24 * 3600
    assert app_settings.EMAIL_CONFIRM_TOKEN_MAX_AGE == 24 * 3600
    assert app_settings.STAFF_CODE_MAX_AGE == 7 * 24 * 3600
    assert app_settings.RATELIMIT_ENABLE is True
    assert app_settings.RATELIMIT_RESET_PER_IDENTIFIER == "5/h"
    assert app_settings.RATELIMIT_MAIL_GLOBAL == "600/m"
    assert app_settings.TRUSTED_PROXY_COUNT == 0


def test_every_rate_setting_parses():
    for name in dir(app_settings):
        if name.startswith("RATELIMIT_") and name != "RATELIMIT_ENABLE":
            assert Rate.parse(getattr(app_settings, name)).count > 0, name


def test_overrides_take_effect_without_reimport():
    with override_settings(
        RECOVERY_RESET_TOKEN_MAX_AGE=900,
        STAFF_CODE_MAX_AGE=3600,
        RATELIMIT_ENABLE=False,
        RATELIMIT_RESET_PER_IP="100/m",
        PORTAL_BASE_URL="https://portal.example.org/",
    ):
        assert app_settings.RESET_TOKEN_MAX_AGE == 900
        assert app_settings.token_max_age("staff_code") == 3600
        assert app_settings.RATELIMIT_ENABLE is False
        assert app_settings.RATELIMIT_RESET_PER_IP == "100/m"
        assert app_settings.PORTAL_BASE_URL == "https://portal.example.org"
    assert app_settings.RESET_TOKEN_MAX_AGE == 3600


def test_every_token_purpose_has_a_max_age():
    for purpose in IssuedToken.Purpose.values:
        assert app_settings.token_max_age(purpose) > 0
    with pytest.raises(ValueError):
        app_settings.token_max_age("magic")
