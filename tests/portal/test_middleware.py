"""TrustedProxyMiddleware through real requests: the client address and scheme the views see."""

import pytest
from django.http import JsonResponse
from django.urls import path


def whoami(request):
    return JsonResponse(
        {
            "remote_addr": request.META["REMOTE_ADDR"],
            "secure": request.is_secure(),
            "forwarded_for": request.META.get("HTTP_X_FORWARDED_FOR"),
        }
    )


urlpatterns = [path("whoami/", whoami)]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def proxied(settings):
    """Production's proxy set-up: the scheme header is believed once the middleware vetted it."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    def configure(count):
        settings.TRUSTED_PROXY_COUNT = count

    return configure


def get(client, **headers):
    return client.get("/whoami/", headers=headers, REMOTE_ADDR="10.0.0.1")


def test_without_trusted_proxies_forged_headers_are_ignored(client, proxied):
    proxied(0)
    seen = get(client, x_forwarded_for="6.6.6.6", x_forwarded_proto="https").json()
    assert seen == {"remote_addr": "10.0.0.1", "secure": False, "forwarded_for": None}


def test_one_trusted_proxy_gives_the_address_it_appended(client, proxied):
    proxied(1)
    # The client forged 6.6.6.6; our proxy appended the address it saw.
    seen = get(client, x_forwarded_for="6.6.6.6, 203.0.113.7").json()
    assert seen["remote_addr"] == "203.0.113.7"
    assert seen["forwarded_for"] is None  # nothing downstream can read the forgeable header


def test_two_trusted_proxies_give_the_second_hop_from_the_right(client, proxied):
    proxied(2)
    seen = get(client, x_forwarded_for="6.6.6.6, 203.0.113.7, 10.0.0.2").json()
    assert seen["remote_addr"] == "203.0.113.7"


def test_too_few_hops_keep_the_socket_address(client, proxied):
    proxied(2)
    assert get(client, x_forwarded_for="203.0.113.7").json()["remote_addr"] == "10.0.0.1"


def test_forwarded_proto_is_honoured_through_a_trusted_hop(client, proxied):
    proxied(1)
    assert get(client, x_forwarded_proto="https").json()["secure"] is True
    assert get(client, x_forwarded_proto="http").json()["secure"] is False


def test_forged_proto_before_the_trusted_hop_is_ignored(client, proxied):
    proxied(1)
    # The client sent "https"; our proxy, which saw plain HTTP, appended "http".
    assert get(client, x_forwarded_proto="https, http").json()["secure"] is False


def test_two_hops_take_the_scheme_the_edge_proxy_saw(client, proxied):
    proxied(2)
    assert get(client, x_forwarded_proto="http, https, http").json()["secure"] is True
    assert get(client, x_forwarded_proto="https, http, http").json()["secure"] is False


def test_https_redirect_cannot_be_skipped_by_a_forged_header(client, proxied, settings):
    settings.SECURE_SSL_REDIRECT = True
    proxied(0)
    response = get(client, x_forwarded_proto="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")

    proxied(1)
    assert get(client, x_forwarded_proto="https").status_code == 200
