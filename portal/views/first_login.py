"""The first-login change page: a student signed in with the default sets their own password.

ForcePasswordChangeMiddleware sends every request of a user with must_change_password here.
The new password goes through the same validators as everywhere else (SPEC §6.3), which refuse
the default itself and anything holding the birth date; user_set_password then clears the
default for good, so it never signs anyone in again.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from portal.services import user_set_password
from recovery.forms import SetPasswordForm


@never_cache
@sensitive_post_parameters("new_password1", "new_password2")
@login_required
def first_login_change(request):
    user = request.user
    if not user.must_change_password:
        return redirect("portal:home")
    form = SetPasswordForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user_set_password(
            user=user, password=form.new_password, request=request, reason="first_login"
        )
        messages.success(request, _("Your new password is set. Use it from now on."))
        return redirect("portal:home")
    return TemplateResponse(request, "portal/first_login/change_password.html", {"form": form})
