"""/help/problems/: a short triage in plain words, each problem leading to its fix and all
ending at the request form. Static: it looks nothing up, so it can reveal nothing."""

from django.conf import settings
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from recovery.views.help import IgnoresQueryString


@method_decorator(never_cache, name="dispatch")
class LoginHelpView(IgnoresQueryString, TemplateView):
    template_name = "recovery/login_help/problems.html"

    def get_context_data(self, **kwargs):
        # The longest wait the login throttle imposes, in whole minutes (portal.login_throttle).
        max_wait_minutes = max(1, -(-int(settings.LOGIN_DELAY_MAX) // 60))
        return {**super().get_context_data(**kwargs), "max_wait_minutes": max_wait_minutes}
