"""Who may open a staff page (SPEC §6.6, checklist O): the mixins every staff view uses.

    class QueueView(StaffRequiredMixin, ListView): ...
    class TeamView(SupervisorRequiredMixin, TemplateView): ...

- anonymous → the staff sign-in (/staff/login/?next=...);
- signed in but not staff (a parent, a student) → 403;
- staff with a password but no second factor verified in this session → the code page;
- SupervisorRequiredMixin: plain staff → 403.
Every response (redirects and refusals included) is marked never-cache.

staff_scope(user) is the set of schools whose records a staff member may see: None means all
(a supervisor or a superuser); a support worker sees only their StaffProfile's schools, and a
staff account without a profile sees none.
"""

from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from portal.models import Organisation
from recovery.models import StaffProfile


def is_staff_user(user):
    """May `user` sign in to the staff console (with a second factor)?"""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser or user.is_staff or user.role == user.Role.STAFF)


def is_supervisor(user):
    if not is_staff_user(user):
        return False
    if user.is_superuser:
        return True
    profile = _profile(user)
    return profile is not None and profile.is_supervisor


def staff_scope(user):
    """The Organisations `user` may see: a queryset, or None for all of them."""
    if is_supervisor(user):
        return None
    profile = _profile(user) if is_staff_user(user) else None
    if profile is None:
        return Organisation.objects.none()
    return profile.schools.all()


def _profile(user):
    try:
        return user.staff_profile
    except StaffProfile.DoesNotExist:
        return None


def code_page_url(next_url):
    query = urlencode({REDIRECT_FIELD_NAME: next_url}) if next_url else ""
    return reverse("staff:login_code") + (f"?{query}" if query else "")


class StaffRequiredMixin:
    """Staff only, signed in with password and second factor in this session."""

    def dispatch(self, request, *args, **kwargs):
        try:
            response = self.check_staff_access(request) or super().dispatch(
                request, *args, **kwargs
            )
        except (PermissionDenied, Http404) as refusal:
            # Rendered here (as the handler would) so that 403s and 404s are uncached too.
            response = response_for_exception(request, refusal)
        add_never_cache_headers(response)
        return response

    def check_staff_access(self, request):
        """A response refusing `request` (a redirect to sign in), or None to let it through."""
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("staff:login"))
        if not is_staff_user(user):
            raise PermissionDenied
        if not user.is_verified():
            return HttpResponseRedirect(code_page_url(request.get_full_path()))
        return None


class SupervisorRequiredMixin(StaffRequiredMixin):
    """Supervisors (and superusers) only; other staff get 403."""

    def check_staff_access(self, request):
        refusal = super().check_staff_access(request)
        if refusal is not None:
            return refusal
        if not is_supervisor(request.user):
            raise PermissionDenied
        return None
