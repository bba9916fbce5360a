"""Forgot username: /help/forgot-username/ (field `email`) → 303 → /help/forgot-username/sent/.

One sent page for every address, known or not; the usernames travel by email only
(recovery.flows.username_reminder does the work in a worker).
"""

import unicodedata

from django import forms
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic import FormView, TemplateView

from recovery.flows import username_reminder
from recovery.help_requests import HelpRequestThrottled
from recovery.views.help import IgnoresQueryString
from recovery.views.rate_limited import rate_limited_response


class UsernameReminderForm(forms.Form):
    """One email address. Deliberately loose (one value, an "@", no control characters, at
    most 320 characters): look-alike and unusual addresses reach the worker, which matches
    only normalised addresses on record and mails only stored ones, and the page is the same
    for all of them."""

    email = forms.CharField(
        label=_("Email address"),
        max_length=320,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self):
        if len(self.data.getlist("email")) > 1:
            # email=a&email=b: which one was meant? Neither is used (parameter pollution).
            raise forms.ValidationError(_("Type one email address."), code="many")
        value = self.cleaned_data["email"]
        if "@" not in value or any(unicodedata.category(ch) == "Cc" for ch in value):
            raise forms.ValidationError(
                _("Enter an email address, for example name@example.org."), code="invalid"
            )
        return value


@method_decorator([csrf_protect, never_cache], name="dispatch")
class UsernameReminderView(IgnoresQueryString, FormView):
    form_class = UsernameReminderForm
    template_name = "recovery/username_reminder/form.html"
    success_url = reverse_lazy("recovery:username_reminder_sent")

    def form_valid(self, form):
        try:
            username_reminder.request_username_reminder(
                email=form.cleaned_data["email"], request=self.request
            )
        except HelpRequestThrottled as throttled:
            return rate_limited_response(self.request, retry_after=throttled.retry_after)
        response = super().form_valid(form)
        response.status_code = 303  # See Other: the browser GETs the sent page
        return response


@method_decorator(never_cache, name="dispatch")
class UsernameReminderSentView(IgnoresQueryString, TemplateView):
    template_name = "recovery/username_reminder/sent.html"
