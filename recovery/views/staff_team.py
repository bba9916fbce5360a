"""/staff/team/ (supervisors): the staff list, re-issue an authenticator, send a reset link."""

import segno
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.debug import sensitive_variables
from django.views.generic import TemplateView

from recovery.staff import otp, team
from recovery.staff_access import SupervisorRequiredMixin


def _staff_member(user_id):
    return get_object_or_404(team.staff_members(), pk=user_id)


class TeamView(SupervisorRequiredMixin, TemplateView):
    template_name = "staff/team/list.html"

    def get_context_data(self, **kwargs):
        members = list(team.staff_members())
        for member in members:
            member.authenticator = otp.authenticator_device(member)
        return super().get_context_data(members=members, **kwargs)


@method_decorator(sensitive_variables(), name="post")
class ReissueAuthenticatorView(SupervisorRequiredMixin, View):
    """POST: a new authenticator, shown once on this uncached reply (never on a GET)."""

    http_method_names = ["post"]

    def post(self, request, user_id):
        member = _staff_member(user_id)
        try:
            issued = team.reissue_authenticator(
                staff_member=member, supervisor=request.user, request=request
            )
        except team.TeamActionRefused:
            messages.error(request, _("Ask another supervisor to re-issue your own authenticator."))
            return _back_to_team()
        qr = segno.make(issued.config_url, error="m")
        return render(
            request,
            "staff/team/authenticator.html",
            {
                "member": member,
                "config_url": issued.config_url,
                "qr_data_uri": qr.svg_data_uri(scale=5, border=4),
                "backup_codes": [otp.format_backup_code(code) for code in issued.backup_codes],
            },
        )


class SendPasswordResetView(SupervisorRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, user_id):
        member = _staff_member(user_id)
        try:
            team.send_staff_password_reset(
                staff_member=member, supervisor=request.user, request=request
            )
        except team.TeamActionRefused:
            messages.error(
                request,
                _("%(username)s has no email address on record: set one in the admin first.")
                % {"username": member.get_username()},
            )
        else:
            messages.success(
                request,
                _("A reset link was emailed to %(username)s's own address.")
                % {"username": member.get_username()},
            )
        return _back_to_team()


def _back_to_team():
    response = HttpResponseRedirect(reverse("staff:team"))
    response.status_code = 303
    return response
