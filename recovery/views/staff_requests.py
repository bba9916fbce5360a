"""The staff queue of manual requests, the request page and its actions (SPEC §6.7).

    /staff/                                   → /staff/requests/
    /staff/requests/                          the queue: filters, search, assign to me
    /staff/requests/<reference>/              what the family typed, the roster match, history
    /staff/requests/<reference>/act/<action>/ POST: one action (recovery.flows.staff_actions)
    /staff/requests/<reference>/code/         the printable one-time code, shown once

Scope: a supervisor sees every request; a support worker sees the requests of their schools
and the requests filed under no school (the form could not tell the student's school: someone
has to triage them, and the page shows only what the family typed plus the roster match). An
unfiled request whose roster match names a student (by ID or by name) in a school outside the
worker's scope is out of scope too: only a supervisor sees it. Out of scope is 404, for the page
and every action.

An action touches only an account (or a guardian without one) that the request's roster match
lists: the POSTed id is looked up among `match.accounts`, never in the whole table.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView, TemplateView, View

from portal.models import Organisation
from recovery.flows import staff_actions
from recovery.matching import NO_ACCOUNT, match_request
from recovery.models import ManualRequest
from recovery.staff_access import StaffRequiredMixin, staff_scope

Status = ManualRequest.Status
OPEN = (Status.NEW, Status.IN_PROGRESS, Status.WAITING)
PAGE_SIZE = 50
SEARCH_MAX = 100
_CODE_SESSION_KEY = "staff_requests_printable_code"
# ManualRequestEvent.action → what the history says (unknown actions show as recorded).
EVENT_LABELS = {
    "request_assigned": _("Assigned"),
    "request_waiting": _("Waiting on the family"),
    "request_resolved": _("Resolved; outcome emailed"),
    "request_rejected": _("Rejected; outcome emailed"),
    "reset_link_sent": _("Reset link sent"),
    "username_reminder_sent": _("Username reminder sent"),
    "student_code_issued": _("One-time code issued"),
    "login_lock_cleared": _("Sign-in lock cleared"),
    "guardian_account_created": _("Guardian account created"),
}


# --- Reads ------------------------------------------------------------------------------------


def visible_requests(user):
    """The manual requests `user` may see (see the module doc for the scope rule)."""
    requests = ManualRequest.objects.select_related("school", "assigned_to")
    scope = staff_scope(user)
    if scope is None:
        return requests
    return requests.filter(Q(school__in=scope) | Q(school__isnull=True))


def _in_scope(user, school_id):
    scope = staff_scope(user)
    return scope is None or school_id is None or scope.filter(pk=school_id).exists()


def request_for_staff(user, reference):
    """The request and its roster match, or 404 when it is not `user`'s to see."""
    if "\x00" in reference:
        raise Http404  # PostgreSQL text cannot hold NUL: not a reference, not a 500
    manual_request = get_object_or_404(visible_requests(user), reference=reference)
    match = match_request(manual_request=manual_request)
    if manual_request.school_id is None:
        # Filed under no school: every student the match names (by ID or, failing that, by
        # name) must be in scope, or the page would show another school's pupils.
        named = [match.student, *match.candidates]
        if not all(_in_scope(user, found.student.school_id) for found in named if found):
            raise Http404
    return manual_request, match


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Open")), *Status.choices, ("all", _("All"))],
    )
    school = forms.ModelChoiceField(
        label=_("School"), required=False, queryset=Organisation.objects.none()
    )
    type = forms.ChoiceField(
        label=_("Type"),
        required=False,
        choices=[("", _("Any")), *ManualRequest.RequestType.choices],
    )
    mine = forms.BooleanField(label=_("Assigned to me"), required=False)
    q = forms.CharField(
        label=_("Search (reference, names, student ID)"), required=False, max_length=SEARCH_MAX
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        scope = staff_scope(user)
        schools = Organisation.objects.filter(type="school")
        self.fields["school"].queryset = schools if scope is None else scope

    def filter(self, requests, *, user):
        if not self.is_valid():
            return requests.filter(status__in=OPEN)
        data = self.cleaned_data
        if data["status"] == "all":
            pass
        elif data["status"]:
            requests = requests.filter(status=data["status"])
        else:
            requests = requests.filter(status__in=OPEN)
        if data["school"] is not None:
            requests = requests.filter(school=data["school"])
        if data["type"]:
            requests = requests.filter(request_type=data["type"])
        if data["mine"]:
            requests = requests.filter(assigned_to=user)
        words = data["q"].split()
        for word in words:
            requests = requests.filter(
                Q(reference__iexact=word)
                | Q(student_id__iexact=word)
                | Q(student_first_name__icontains=word)
                | Q(student_last_name__icontains=word)
                | Q(parent_first_name__icontains=word)
                | Q(parent_last_name__icontains=word)
            )
        return requests


# --- Pages ------------------------------------------------------------------------------------


class StaffHomeView(StaffRequiredMixin, RedirectView):
    pattern_name = "staff:requests"


class QueueView(StaffRequiredMixin, TemplateView):
    template_name = "staff/requests/queue.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        form = QueueFilterForm(self.request.GET or None, user=user)
        requests = form.filter(visible_requests(user), user=user).order_by("created_at", "pk")
        page = Paginator(requests, PAGE_SIZE).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        return super().get_context_data(
            form=form, page=page, requests=page.object_list, query=query.urlencode(), **kwargs
        )


class RequestDetailView(StaffRequiredMixin, TemplateView):
    template_name = "staff/requests/detail.html"

    def get_context_data(self, **kwargs):
        manual_request, match = request_for_staff(self.request.user, kwargs["reference"])
        return super().get_context_data(
            manual_request=manual_request,
            match=match,
            accounts=[_with_actions(account) for account in match.accounts],
            events=[
                (event, EVENT_LABELS.get(event.action, event.action))
                for event in manual_request.events.select_related("actor")
            ],
            is_closed=manual_request.status in staff_actions.CLOSED,
            **kwargs,
        )


def _with_actions(account):
    """An account of the match and, for each action, "" (available) or why not."""
    user = account.user
    if account.state == NO_ACCOUNT:
        unavailable = {
            "create_account": (
                staff_actions.guardian_unavailable_reason(account.guardian)
                if account.person == "guardian"
                else _("Student accounts come from the SIS: ask the school to add the number.")
            )
        }
    else:
        unavailable = {
            "reset_link": staff_actions.reset_unavailable_reason(user),
            "username_reminder": staff_actions.reminder_unavailable_reason(user),
            "issue_code": (
                staff_actions.code_unavailable_reason(user) if account.person == "student" else None
            ),
            "unlock": staff_actions.unlock_unavailable_reason(user),
        }
    return {"info": account, "unavailable": unavailable}


class RequestActionView(StaffRequiredMixin, View):
    """One POSTed action; errors come back to the request page as a message."""

    http_method_names = ["post"]
    ACTIONS = {
        "assign": "_assign",
        "waiting": "_waiting",
        "resolve": "_resolve",
        "reject": "_reject",
        "reset-link": "_reset_link",
        "username-reminder": "_username_reminder",
        "issue-code": "_issue_code",
        "unlock": "_unlock",
        "create-account": "_create_account",
    }

    def post(self, request, reference, action):
        handler = self.ACTIONS.get(action)
        if handler is None:
            raise Http404
        manual_request, match = request_for_staff(request.user, reference)
        self.manual_request, self.match = manual_request, match
        self.note = request.POST.get("note", "")
        detail_url = reverse("staff:request_detail", args=[manual_request.reference])
        try:
            redirect_to = getattr(self, handler)()
        except staff_actions.ActionRefused as refused:
            messages.error(request, refused.reason)
            return HttpResponseRedirect(detail_url, status=303)
        return HttpResponseRedirect(redirect_to or detail_url, status=303)

    # The accounts this request's match lists, by what the page posts.
    def _account(self):
        wanted = self.request.POST.get("account", "")
        for account in self.match.accounts:
            if account.user is not None and str(account.user.pk) == wanted:
                return account.user
        raise staff_actions.ActionRefused(_("That account is not part of this request."))

    def _guardian(self):
        wanted = self.request.POST.get("guardian", "")
        for account in self.match.accounts:
            guardian = account.guardian
            if guardian is not None and account.user is None and guardian.sourced_id == wanted:
                return guardian
        raise staff_actions.ActionRefused(_("That guardian is not part of this request."))

    def _common(self):
        return {
            "manual_request": self.manual_request,
            "staff": self.request.user,
            "request": self.request,
        }

    def _done(self, text):
        messages.success(self.request, text)

    def _assign(self):
        staff_actions.assign_request(**self._common())
        self._done(_("The request is assigned to you."))

    def _waiting(self):
        staff_actions.set_waiting(**self._common(), note=self.note)
        self._done(_("The request is waiting on the family."))

    def _resolve(self):
        staff_actions.close_request(**self._common(), outcome=Status.RESOLVED, note=self.note)
        self._done(_("The request is resolved; the requester was emailed the outcome."))

    def _reject(self):
        staff_actions.close_request(**self._common(), outcome=Status.REJECTED, note=self.note)
        self._done(_("The request is rejected; the requester was emailed the outcome."))

    def _reset_link(self):
        staff_actions.send_reset_link(**self._common(), account=self._account(), note=self.note)
        self._done(_("A reset link is on its way to the account's verified recovery email."))

    def _username_reminder(self):
        staff_actions.send_username_reminder(
            **self._common(), account=self._account(), note=self.note
        )
        self._done(_("The username is on its way to the account's verified recovery email."))

    def _unlock(self):
        staff_actions.clear_login_lock(**self._common(), account=self._account(), note=self.note)
        self._done(_("The sign-in lock is cleared."))

    def _create_account(self):
        staff_actions.create_guardian_account(
            guardian=self._guardian(),
            email=self.request.POST.get("email", ""),
            verified_how=self.note,
            staff=self.request.user,
            request=self.request,
            manual_request=self.manual_request,
        )
        self._done(_("The account is created; the welcome email is on its way."))

    def _issue_code(self):
        account = self._account()
        code = staff_actions.issue_code(**self._common(), account=account, note=self.note)
        # Shown once: the printable page takes it out of the session when it shows it.
        self.request.session[_CODE_SESSION_KEY] = {
            "reference": self.manual_request.reference,
            "username": account.get_username(),
            "code": code,
        }
        return reverse("staff:request_code", args=[self.manual_request.reference])


class PrintableCodeView(StaffRequiredMixin, TemplateView):
    """The one-time code on a page to print, once: a reload finds nothing to show."""

    template_name = "staff/requests/code.html"

    def get_context_data(self, **kwargs):
        manual_request, _match = request_for_staff(self.request.user, kwargs["reference"])
        printable = self.request.session.get(_CODE_SESSION_KEY)
        if printable and printable.get("reference") == manual_request.reference:
            del self.request.session[_CODE_SESSION_KEY]
        else:
            printable = None
        code_path = settings.PORTAL_BASE_URL.rstrip("/") + reverse("student_code")
        return super().get_context_data(
            manual_request=manual_request, printable=printable, code_path=code_path, **kwargs
        )
