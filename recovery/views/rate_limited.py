"""The 429 page of the Help forms: "Too many requests. Please try again in N minutes."

Its text depends only on how long to wait, never on what was typed or whether an account
exists (SPEC §6.1, §6.2), and it carries Retry-After for scripts and browsers.
"""

from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from recovery.ratelimit import retry_after_message

TEMPLATE_NAME = "recovery/rate_limited.html"


def rate_limited_response(request, *, retry_after):
    """The 429 response for a throttled Help request (`retry_after` in seconds)."""
    retry_after = max(int(retry_after), 1)
    response = render(
        request,
        TEMPLATE_NAME,
        {"retry_after_message": retry_after_message(retry_after)},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response
