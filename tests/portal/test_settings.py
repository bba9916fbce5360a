import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 64,
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/portal_help",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_HOST": "127.0.0.1",
    "DEFAULT_FROM_EMAIL": "help@portal.example.org",
    "PORTAL_BASE_URL": "https://portal.example.org",
    "ALLOWED_HOSTS": "portal.example.org",
}


def _check_production(env):
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    clean.update(env, DJANGO_SETTINGS_MODULE="settings.production")
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("missing", sorted(PRODUCTION_ENV))
def test_production_refuses_to_start_naming_the_missing_variable(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _check_production(env)
    assert result.returncode != 0
    assert f"The environment variable {missing} is required." in result.stderr


def test_production_starts_with_every_required_variable():
    result = _check_production(PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr


def test_production_rejects_a_base_url_that_is_not_an_origin():
    result = _check_production({**PRODUCTION_ENV, "PORTAL_BASE_URL": "portal.example.org"})
    assert result.returncode != 0
    assert "PORTAL_BASE_URL must be an absolute" in result.stderr


def test_production_hashes_passwords_with_argon2id_at_owasp_parameters():
    from argon2 import extract_parameters

    from portal.hashers import PortalArgon2PasswordHasher

    encoded = PortalArgon2PasswordHasher().encode("correct horse battery staple", "saltsaltsalt")
    params = extract_parameters("$" + encoded.split("$", 1)[1])
    assert encoded.startswith("argon2$argon2id$")
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19 * 1024, 2, 1)
