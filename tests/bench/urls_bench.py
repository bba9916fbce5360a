"""The product's URLs plus the two views the Help benchmark compares against (SPEC §8).

- /bench/trivial/: the cheapest CSRF-protected form POST of the same stack (same middleware,
  same gunicorn): validate one field, redirect. The ceiling for any form POST here.
- /bench/stock-reset/: Django's own PasswordResetView, unchanged, which looks the address up and
  sends the email inside the request (its admin templates; no sites framework, so the domain is
  the request's host).
"""

from django import forms
from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.urls import include, path
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect


class TrivialForm(forms.Form):
    username = forms.CharField(max_length=150)


@never_cache
@csrf_protect
def trivial(request):
    form = TrivialForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return HttpResponseRedirect("/bench/trivial/done/", status=303)
    # The GET hands the load generator its CSRF cookie and token.
    return HttpResponse(
        format_html(
            '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            "{}</form>",
            get_token(request),
            form.as_div(),
        )
    )


urlpatterns = [
    path("bench/trivial/", trivial, name="bench_trivial"),
    path(
        "bench/stock-reset/",
        auth_views.PasswordResetView.as_view(success_url="/bench/stock-reset/done/"),
        name="bench_stock_reset",
    ),
    path(
        "bench/stock-reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    # Reversed by the stock reset email's template; never requested here.
    path(
        "bench/stock-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("", include("portal.urls")),
]
