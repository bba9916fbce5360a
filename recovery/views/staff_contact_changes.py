"""/staff/contact-changes/: parents' contact-change requests, pending first; approve (then
staff update the SIS) or reject with a reason (recovery.flows.contact_change_review)."""

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import ListView, TemplateView

from portal.models import ContactChangeRequest
from recovery import staff_selectors
from recovery.flows import contact_change_review
from recovery.staff_access import StaffRequiredMixin, staff_scope


class ContactChangeFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *ContactChangeRequest.Status.choices],
        required=False,
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (the parent reads this)"),
        max_length=contact_change_review.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Plain words, no links. For example: we could not confirm this by phone."),
    )


class ContactChangeListView(StaffRequiredMixin, ListView):
    template_name = "staff/contact_changes/list.html"
    context_object_name = "changes"
    paginate_by = 50

    def get_queryset(self):
        self.filter_form = ContactChangeFilterForm(self.request.GET or None)
        status = self.filter_form.cleaned_data["status"] if self.filter_form.is_valid() else ""
        return staff_selectors.contact_changes_in_scope(
            scope=staff_scope(self.request.user), status=status
        )

    def get_context_data(self, **kwargs):
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            filter_form=self.filter_form, filter_query=query.urlencode(), **kwargs
        )


class ContactChangeDetailView(StaffRequiredMixin, TemplateView):
    """One request: what the parent asked, what the SIS holds, and the two decisions (POST)."""

    template_name = "staff/contact_changes/detail.html"
    decisions = ("approve", "reject")

    def get_change(self):
        scope = staff_scope(self.request.user)
        return get_object_or_404(
            staff_selectors.contact_changes_in_scope(scope=scope), pk=self.kwargs["pk"]
        )

    def get(self, request, *args, **kwargs):
        return self.render_page(self.get_change(), RejectForm())

    def post(self, request, *args, **kwargs):
        change = self.get_change()
        decision = request.POST.get("decision")
        form = RejectForm(request.POST if decision == "reject" else None)
        error = ""
        try:
            if decision == "approve":
                change = contact_change_review.approve_contact_change(
                    change=change, staff=request.user, request=request
                )
                messages.success(request, _approved_message(change))
                return _back_to_list()
            if decision == "reject" and form.is_valid():
                change = contact_change_review.reject_contact_change(
                    change=change,
                    staff=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
                messages.success(request, _told_message(change, gettext("Rejected.")))
                return _back_to_list()
            if decision != "reject":
                error = gettext("Choose approve or reject.")
        except contact_change_review.ReviewRefused as refusal:
            error = refusal.reason
        return self.render_page(self.get_change(), form, error=error, status=400)

    def render_page(self, change, form, *, error="", status=200):
        guardian = change.user.guardian
        on_record = ""
        if guardian is not None and change.field == ContactChangeRequest.Field.PHONE:
            on_record = guardian.phone
        elif guardian is not None and change.field == ContactChangeRequest.Field.EMAIL:
            on_record = guardian.email
        context = self.get_context_data(change=change, on_record=on_record, form=form, error=error)
        return self.render_to_response(context, status=status)


def _back_to_list():
    return HttpResponseRedirect(reverse("staff:contact_changes"), status=303)


def _approved_message(change):
    return _told_message(
        change,
        gettext(
            "Approved. Now update the SIS with the new value: the portal shows it after the "
            "next nightly import."
        ),
    )


def _told_message(change, first):
    if change.parent_told:
        return first + " " + gettext("The parent was emailed the decision.")
    return (
        first
        + " "
        + gettext(
            "The parent has no address on record for notices (or only a shared one): tell "
            "them another way."
        )
    )
