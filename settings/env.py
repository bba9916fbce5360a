"""Read deployment facts from the environment, failing loudly and by name."""

import os

from django.core.exceptions import ImproperlyConfigured

_REQUIRED = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name, default=_REQUIRED):
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default
    return value


def env_int(name, default=_REQUIRED):
    value = env_str(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_float(name, default=_REQUIRED):
    value = env_str(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None


def env_bool(name, default=_REQUIRED):
    value = env_str(name, default)
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_list(name, default=_REQUIRED):
    value = env_str(name, default)
    if isinstance(value, list | tuple):
        return list(value)
    return [item.strip() for item in value.split(",") if item.strip()]
