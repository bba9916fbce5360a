"""Absolute links for emails, always under PORTAL_BASE_URL and never built from a request.

A request's Host header is attacker-controlled (the classic poisoned reset link), so the only
origin an emailed link may carry is the configured one.
"""

from django.conf import settings

_PATHS = {
    "reset": "/help/reset/{token}/",
    "activation": "/activate/{token}/",
    "email_confirm": "/portal/account/confirm-email/{token}/",
}

# How long each purpose's link lives, so an email can say when it stops working.
_MAX_AGE_SETTINGS = {
    "reset": "RECOVERY_RESET_TOKEN_MAX_AGE",
    "activation": "ACTIVATION_TOKEN_MAX_AGE",
    "email_confirm": "EMAIL_CONFIRM_TOKEN_MAX_AGE",
}


def absolute_link(*, purpose, token):
    """The emailed URL for a token of `purpose` ("reset", "activation" or "email_confirm")."""
    try:
        path = _PATHS[purpose]
    except KeyError:
        raise ValueError(f"No emailed link for token purpose {purpose!r}.") from None
    return settings.PORTAL_BASE_URL.rstrip("/") + path.format(token=token)


def link_max_age_seconds(*, purpose):
    """Seconds a link of `purpose` stays valid (the district's setting for that purpose)."""
    return int(getattr(settings, _MAX_AGE_SETTINGS[purpose]))
