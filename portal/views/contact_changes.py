"""Contact-change requests (`/portal/contact-changes/`): a parent asks; staff review later.

The SIS stays the source of truth: the page says so, and nothing on record changes here.
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.generic import FormView

from portal import selectors
from portal.account_forms import ContactChangeForm
from portal.contact_changes import TooManyContactChanges, request_contact_changes
from recovery.ratelimit import retry_after_message


@method_decorator(never_cache, name="dispatch")
class ContactChangesView(LoginRequiredMixin, FormView):
    template_name = "portal/contact_changes/contact_changes.html"
    form_class = ContactChangeForm
    success_url = reverse_lazy("portal:contact_changes")

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and selectors.own_guardian_record(user=user) is None:
            # Only a parent's contact details live in the SIS guardian record they can change.
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            guardian=selectors.own_guardian_record(user=self.request.user),
            change_requests=selectors.contact_change_requests(user=self.request.user),
            **kwargs,
        )

    def form_valid(self, form):
        try:
            request_contact_changes(
                user=self.request.user, changes=form.changes(), request=self.request
            )
        except TooManyContactChanges as limited:
            form.add_error(
                None,
                _("You have sent many requests today. %(retry)s")
                % {"retry": retry_after_message(limited.retry_after)},
            )
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        messages.success(
            self.request,
            _("Thank you. The school will review your request and update its records."),
        )
        return super().form_valid(form)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response
