"""/staff/guardians/: guardians the nightly job left without an account, why, and the same
create-account action as a request's page (recovery.flows.staff_actions)."""

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import ListView, TemplateView

from portal.models import Guardian, Organisation, User
from recovery import staff_selectors
from recovery.flows import staff_actions
from recovery.staff_access import StaffRequiredMixin, staff_scope


class GuardianFilterForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why no account"),
        choices=[("", _("Any reason")), *Guardian.Unprovisioned.choices],
        required=False,
    )
    school = forms.ModelChoiceField(
        label=_("School"),
        queryset=Organisation.objects.none(),
        required=False,
        empty_label=_("Any school"),
    )
    q = forms.CharField(label=_("Name"), max_length=100, required=False)

    def __init__(self, *args, scope, **kwargs):
        super().__init__(*args, **kwargs)
        schools = Organisation.objects.filter(type="school", active=True)
        if scope is not None:
            schools = schools.filter(pk__in=scope.values("pk"))
        self.fields["school"].queryset = schools.order_by("name")


class GuardianAccountForm(forms.Form):
    email = forms.EmailField(
        label=_("The guardian's own email address"),
        max_length=254,
        help_text=_("An address you verified with the guardian yourself, not one from a form."),
    )
    verified_how = forms.CharField(
        label=_("How you verified it"),
        max_length=staff_actions.NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "For example: called the phone number in the SIS and the guardian read the "
            "address back."
        ),
    )


class GuardianListView(StaffRequiredMixin, ListView):
    template_name = "staff/guardians/list.html"
    context_object_name = "guardians"
    paginate_by = 50

    def get_queryset(self):
        scope = staff_scope(self.request.user)
        self.filter_form = GuardianFilterForm(self.request.GET or None, scope=scope)
        filters = self.filter_form.cleaned_data if self.filter_form.is_valid() else {}
        guardians = staff_selectors.guardians_without_accounts(
            scope=scope,
            reason=filters.get("reason", ""),
            school=filters.get("school"),
            search=filters.get("q", ""),
        )
        return guardians

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for guardian in context["guardians"]:
            guardian.school_names = staff_selectors.guardian_schools(guardian)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(filter_form=self.filter_form, filter_query=query.urlencode())
        return context


class GuardianDetailView(StaffRequiredMixin, TemplateView):
    """One guardian: what the SIS holds, why no account, and the create-account form (POST)."""

    template_name = "staff/guardians/detail.html"

    def get_guardian(self):
        scope = staff_scope(self.request.user)
        return get_object_or_404(
            staff_selectors.guardians_in_scope(scope=scope),
            pk=self.kwargs["sourced_id"],
        )

    def get(self, request, *args, **kwargs):
        return self.render_page(self.get_guardian(), GuardianAccountForm())

    def post(self, request, *args, **kwargs):
        guardian = self.get_guardian()
        form = GuardianAccountForm(request.POST)
        if form.is_valid():
            try:
                user = staff_actions.create_guardian_account(
                    guardian=guardian,
                    email=form.cleaned_data["email"],
                    verified_how=form.cleaned_data["verified_how"],
                    staff=request.user,
                    request=request,
                )
            except staff_actions.ActionRefused as refusal:
                form.add_error(None, refusal.reason)
            else:
                messages.success(
                    request,
                    gettext(
                        "Account %(username)s created. The welcome email (username and "
                        "activation link) is on its way to the address you verified."
                    )
                    % {"username": user.get_username()},
                )
                url = reverse("staff:guardian", kwargs={"sourced_id": guardian.pk})
                return HttpResponseRedirect(url, status=303)
        return self.render_page(guardian, form, status=400)

    def render_page(self, guardian, form, *, status=200):
        account = User.objects.filter(guardian=guardian).first()
        context = self.get_context_data(
            guardian=guardian,
            account=account,
            school_names=staff_selectors.guardian_schools(guardian),
            unavailable=staff_actions.guardian_unavailable_reason(guardian),
            form=form,
        )
        return self.render_to_response(context, status=status)
