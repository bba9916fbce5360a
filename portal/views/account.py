"""The account page (`/portal/account/`): password, Self Serve set-up and language.

One page, three forms, each posting to the same URL with its own fields (Django's names:
old_password/new_password1/new_password2; recovery_email/current_password; language). A form
names itself with the submit button's `form` value; without it, its fields tell which it is.
Every change that matters asks for the current password first (checklist G7, M1).
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.cache import never_cache

from portal.account_forms import AccountPasswordChangeForm, LanguageForm, RecoveryEmailForm
from portal.services import user_set_password
from portal.views.language import remember_language, set_language_cookie
from recovery.flows.self_serve import (
    PURPOSE,
    TooManyConfirmationEmails,
    can_set_up_self_serve,
    request_recovery_email_change,
)
from recovery.links import link_max_age_seconds
from recovery.ratelimit import retry_after_message

FORMS = ("password", "recovery_email", "language")


def _which_form(data):
    named = data.get("form")
    if named in FORMS:
        return named
    if "old_password" in data:
        return "password"
    if "recovery_email" in data or "current_password" in data:
        return "recovery_email"
    if "language" in data:
        return "language"
    return None


@method_decorator([never_cache, login_required], name="dispatch")
class AccountView(View):
    template_name = "portal/account/account.html"

    def get(self, request):
        return self.render_page()

    def post(self, request):
        which = _which_form(request.POST)
        if which is None:
            return self.render_page(status=400)
        return getattr(self, f"post_{which}")(request)

    def post_password(self, request):
        form = AccountPasswordChangeForm(request.user, request.POST)
        if not form.is_valid():
            return self.render_page(password_form=form, status=400)
        # The concrete row, not request.user's lazy wrapper: services may use type(user).
        user = get_user_model().objects.get(pk=request.user.pk)
        user_set_password(user=user, password=form.cleaned_data["new_password1"], request=request)
        messages.success(
            request, _("Your password was changed. You were signed out everywhere else.")
        )
        return redirect("portal:account")

    def post_recovery_email(self, request):
        if not can_set_up_self_serve(request.user):
            raise PermissionDenied
        form = RecoveryEmailForm(request.user, request.POST)
        if not form.is_valid():
            return self.render_page(recovery_email_form=form, status=400)
        address = form.cleaned_data["recovery_email"]
        try:
            request_recovery_email_change(user=request.user, new_email=address, request=request)
        except TooManyConfirmationEmails as limited:
            form.add_error(
                None,
                _("Too many confirmation emails were asked for. %(retry)s")
                % {"retry": retry_after_message(limited.retry_after)},
            )
            return self.render_page(recovery_email_form=form, status=429)
        hours = max(1, link_max_age_seconds(purpose=PURPOSE) // 3600)
        messages.success(
            request,
            ngettext(
                "We sent a link to %(address)s. Open it within %(hours)d hour to confirm the "
                "address. Until then, password help still goes to the address in use now.",
                "We sent a link to %(address)s. Open it within %(hours)d hours to confirm the "
                "address. Until then, password help still goes to the address in use now.",
                hours,
            )
            % {"address": address, "hours": hours},
        )
        return redirect("portal:account")

    def post_language(self, request):
        form = LanguageForm(request.POST)
        if not form.is_valid():
            return self.render_page(language_form=form, status=400)
        language = form.cleaned_data["language"]
        remember_language(user=request.user, language=language)
        response = redirect("portal:account")
        set_language_cookie(response, language)
        return response

    def render_page(self, status=200, **forms):
        user = self.request.user
        context = {
            "password_form": AccountPasswordChangeForm(user),
            "recovery_email_form": RecoveryEmailForm(user),
            "language_form": LanguageForm(initial={"language": user.language or None}),
            "self_serve_available": can_set_up_self_serve(user),
            **forms,
        }
        return render(self.request, self.template_name, context, status=status)
