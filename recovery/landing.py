"""The page an emailed link lands on: token into the session, then a token-free URL (SPEC §5).

    path("activate/<str:token>/", TokenLandingView.as_view(
        purpose="activation", redirect_url_name="recovery:activation_set_password"))

GET and HEAD change nothing about the link: mail scanners open links before people do
(checklist F1), so the landing only checks the token read-only (tokens.check), keeps it in the
session under a key per purpose, and redirects (302) to a URL without it (checklist E1: no token
in the address bar, the history or a Referer). An invalid, expired, used or revoked token is not
stored (and any earlier one of that purpose is forgotten): the same redirect then shows the one
"link not valid" page, so the landing itself reveals nothing. Only the POST of the page behind
the redirect spends the token (tokens.consume). Landings are rate-limited per client IP
(RATELIMIT_LANDING_PER_IP, checklist B3) and never cached.
"""

import logging

from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from recovery import ratelimit, tokens
from recovery.app_settings import app_settings

logger = logging.getLogger(__name__)

SESSION_KEY_PREFIX = "recovery.token."


def _session_key(purpose):
    if purpose not in tokens.Purpose.values:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return SESSION_KEY_PREFIX + purpose


def session_token(request, purpose):
    """The token of `purpose` the landing stored in this session, or None."""
    return request.session.get(_session_key(purpose))


def forget_session_token(request, purpose):
    """Drop the stored token of `purpose` (after it is used, or found unusable)."""
    request.session.pop(_session_key(purpose), None)


def store_session_token(request, purpose, token):
    request.session[_session_key(purpose)] = token


@method_decorator(never_cache, name="dispatch")
class TokenLandingView(View):
    """GET/HEAD only: check the token read-only, keep it in the session, redirect."""

    purpose = None
    redirect_url_name = None
    rate_limited_template_name = "recovery/landing/rate_limited.html"
    http_method_names = ["get", "head", "options"]

    def get(self, request, token):
        decision = ratelimit.hit(
            action=f"landing.{self.purpose}.ip",
            key=ratelimit.client_ip(request),
            rate=app_settings.RATELIMIT_LANDING_PER_IP,
            # Open when Redis is down: links are signed, so guessing gains nothing, and a
            # closed landing would lock every family out of activation and resets meanwhile.
            fail_open=True,
        )
        if not decision.allowed:
            response = render(
                request,
                self.rate_limited_template_name,
                {"retry_after_message": ratelimit.retry_after_message(decision.retry_after)},
                status=429,
            )
            response["Retry-After"] = str(decision.retry_after)
            return response
        try:
            tokens.check(token, purpose=self.purpose)
        except tokens.TokenError as error:
            # The reason is for the logs only; every unusable link gets the same page.
            logger.info("Unusable %s link opened (%s)", self.purpose, type(error).__name__)
            forget_session_token(request, self.purpose)
        else:
            store_session_token(request, self.purpose, token)
        return redirect(self.redirect_url_name)
