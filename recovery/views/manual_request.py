"""The manual request form: /help/request/ → 303 → /help/request/sent/ (SPEC §2.6, §3).

One sent page whatever was typed, with no reference number on it (the acknowledgement email
carries it), so the page never says whether a student ID or an address is known (checklist
A5). A honeypot hit gets the same sent page and stores nothing. Every field is PII, so none of
them reaches an error report (sensitive_post_parameters).
"""

import logging

from django.http import HttpResponseRedirect
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from recovery.audit import record_event
from recovery.flows.manual_request import (
    ManualRequestThrottled,
    file_under_school,
    submit_manual_request,
)
from recovery.manual_request_forms import ManualRequestForm
from recovery.views.help import IgnoresQueryString
from recovery.views.rate_limited import rate_limited_response

logger = logging.getLogger(__name__)


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class ManualRequestView(IgnoresQueryString, FormView):
    form_class = ManualRequestForm
    template_name = "recovery/manual_request/form.html"
    success_url = reverse_lazy("recovery:manual_request_sent")

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        if form.is_honeypot_hit:
            logger.info("Manual request form: honeypot filled in; nothing stored.")
            return self.sent_response()
        if form.is_valid():
            return self.form_valid(form)
        return self.form_invalid(form)

    def form_valid(self, form):
        try:
            manual_request = submit_manual_request(data=form.cleaned_data, request=self.request)
        except ManualRequestThrottled as throttled:
            return rate_limited_response(self.request, retry_after=throttled.retry_after)
        response = self.sent_response()
        # After the response is decided: filing under a school cannot change it.
        file_under_school(manual_request=manual_request)
        return response

    def form_invalid(self, form):
        if form.refused_a_password:
            # Neither stored nor echoed back: the person retypes the comment without it.
            record_event(action="manual_request.password_refused", request=self.request)
            form.data = form.data.copy()
            form.data["comments"] = ""
        return super().form_invalid(form)

    def sent_response(self):
        return HttpResponseRedirect(self.get_success_url(), status=303)


@method_decorator(never_cache, name="dispatch")
class ManualRequestSentView(IgnoresQueryString, TemplateView):
    template_name = "recovery/manual_request/sent.html"
