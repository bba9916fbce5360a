"""/staff/dashboard/: open manual requests by age and by school, and the last 14 days' resets
and requests (recovery.staff_selectors; scoped staff see their schools)."""

from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from recovery import staff_selectors
from recovery.staff_access import StaffRequiredMixin, is_supervisor, staff_scope

AGE_BUCKETS = (
    ("day", _("Less than 1 day")),
    ("days_3", _("1 to 3 days")),
    ("days_7", _("3 to 7 days")),
    ("older", _("More than 7 days")),
)


class DashboardView(StaffRequiredMixin, TemplateView):
    template_name = "staff/dashboard/dashboard.html"

    def get_context_data(self, **kwargs):
        scope = staff_scope(self.request.user)
        by_age = staff_selectors.open_requests_by_age(scope=scope)
        return super().get_context_data(
            all_schools=is_supervisor(self.request.user),
            by_age=[(label, by_age[key]) for key, label in AGE_BUCKETS],
            open_total=sum(by_age.values()),
            by_school=staff_selectors.open_requests_by_school(scope=scope),
            days=staff_selectors.activity_per_day(scope=scope),
            **kwargs,
        )
