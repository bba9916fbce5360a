"""Staff sign-in: /staff/login/ (username, password) → /staff/login/code/ (otp_token) → next.

- The password step goes through authenticate() (portal.backends: the login throttle applies)
  and accepts staff accounts only; it signs the user in with Django's login(), which gives the
  session a new key (checklist I1). Such a session is not yet verified: every staff page sends
  it to the code page (recovery.staff_access).
- The code step checks a TOTP code or a backup code (recovery.staff.otp: replay refused,
  throttled), marks the session verified (django_otp.login) and rotates the session key again.
- Nothing about the second factor is ever shown here: an authenticator is shown only when it is
  issued (createstaff, or a supervisor's re-issue).
"""

from urllib.parse import urlencode

import django_otp
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.utils.formats import time_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from recovery.audit import record_event
from recovery.staff import otp
from recovery.staff.forms import StaffCodeForm, StaffLoginForm
from recovery.staff.middleware import mark_active
from recovery.staff_access import code_page_url, is_staff_user


def _safe_next(request):
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _login_url(next_url):
    query = urlencode({REDIRECT_FIELD_NAME: next_url}) if next_url else ""
    return reverse("staff:login") + (f"?{query}" if query else "")


def _landing_url():
    # Q's queue is the console's home; until it exists, the team page.
    for name in ("staff:queue", "staff:home", "staff:team"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return resolve_url("portal:home")


class StaffLoginView(auth_views.LoginView):
    # Django's LoginView: never_cache, csrf_protect, sensitive_post_parameters, safe `next`.
    form_class = StaffLoginForm
    template_name = "staff/auth/login.html"
    redirect_authenticated_user = False

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if request.method in ("GET", "HEAD") and is_staff_user(user):
            if user.is_verified():
                return HttpResponseRedirect(_safe_next(request) or _landing_url())
            return HttpResponseRedirect(code_page_url(_safe_next(request)))
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        login(self.request, user)  # a new session key (I1); not verified yet
        mark_active(self.request)
        record_event(
            action="staff.login.password",
            request=self.request,
            subject=user,
            identifier=user.get_username(),
        )
        return HttpResponseRedirect(code_page_url(self.get_redirect_url()))


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class StaffCodeView(FormView):
    form_class = StaffCodeForm
    template_name = "staff/auth/code.html"

    def dispatch(self, request, *args, **kwargs):
        if not is_staff_user(request.user):
            # Anonymous, or a family account: the password step first (it refuses the latter).
            return HttpResponseRedirect(_login_url(_safe_next(request)))
        if request.user.is_verified() and request.method in ("GET", "HEAD"):
            return HttpResponseRedirect(_safe_next(request) or _landing_url())
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["next"] = _safe_next(self.request)
        context["has_authenticator"] = otp.authenticator_device(self.request.user) is not None
        return context

    def form_valid(self, form):
        user = self.request.user
        result = otp.verify_second_factor(user=user, code=form.cleaned_data["otp_token"])
        if not result.verified:
            record_event(
                action="staff.login.code_refused",
                request=self.request,
                subject=user,
                detail={"throttled": result.throttled},
            )
            if result.throttled:
                message = _("Too many wrong codes. Try again after %(time)s.") % {
                    "time": time_format(localtime(result.locked_until), "H:i:s")
                    if result.locked_until
                    else _("a moment")
                }
            else:
                message = _("That code is not right. Codes change every 30 seconds.")
            form.add_error("otp_token", message)
            return self.form_invalid(form)
        django_otp.login(self.request, result.device)
        self.request.session.cycle_key()  # a new key again, now that the session is verified
        mark_active(self.request)
        record_event(
            action="staff.login.verified",
            request=self.request,
            subject=user,
            detail={"backup": result.device.persistent_id.startswith("otp_static.")},
        )
        return HttpResponseRedirect(_safe_next(self.request) or _landing_url())


class StaffLogoutView(auth_views.LogoutView):
    # POST only (Django's default).
    next_page = "staff:login"
