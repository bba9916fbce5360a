"""Derive the client address and scheme only from proxies we were told to trust."""

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse


def _hops(value):
    return [part.strip() for part in value.split(",") if part.strip()]


class TrustedProxyMiddleware:
    """With TRUSTED_PROXY_COUNT = N, the client is the N-th X-Forwarded-For entry from the right.

    Entries further left were written by the client and can be forged; with N = 0 the headers are
    dropped entirely, so neither rate limits nor the HTTPS check can be steered by a client.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        count = settings.TRUSTED_PROXY_COUNT
        forwarded_for = _hops(meta.pop("HTTP_X_FORWARDED_FOR", ""))
        forwarded_proto = _hops(meta.pop("HTTP_X_FORWARDED_PROTO", ""))
        if count > 0:
            if len(forwarded_for) >= count:
                meta["REMOTE_ADDR"] = forwarded_for[-count]
            if forwarded_proto:
                # The nearest trusted proxy appends last; it saw the scheme the client used.
                meta["HTTP_X_FORWARDED_PROTO"] = forwarded_proto[
                    max(len(forwarded_proto) - count, 0)
                ]
        return self.get_response(request)


class ForcePasswordChangeMiddleware:
    """Send a signed-in user who must change their password to the change page, from any URL.

    A student signed in with the district default (SPEC §6.4, checklist K1) may only reach the
    first-login change page, sign out, switch language and load static files until the new
    password is set. Placed after AuthenticationMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and getattr(user, "must_change_password", False)
            and not self._allowed(request.path_info)
        ):
            return redirect("first_login_change")
        return self.get_response(request)

    @staticmethod
    def _allowed(path):
        allowed = {reverse("first_login_change"), reverse("logout"), reverse("set_language")}
        static = "/" + settings.STATIC_URL.lstrip("/")
        return path in allowed or path.startswith(static)
