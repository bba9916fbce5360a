"""/staff/audit/ (supervisors): the audit log with filters, and its CSV export (checklist O8,
O12). An identifier is searched by its keyed hash, never stored or logged as typed; the export
streams any range in constant memory and is itself audited."""

import csv
import json
from datetime import UTC

from django import forms
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import ListView

from recovery import staff_selectors
from recovery.audit import record_event
from recovery.staff_access import SupervisorRequiredMixin

CSV_COLUMNS = (
    "at_utc",
    "action",
    "actor",
    "subject",
    "identifier_hash",
    "ip",
    "user_agent",
    "detail",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class AuditFilterForm(forms.Form):
    action = forms.RegexField(
        label=_("Action (or its start, e.g. staff.)"),
        regex=r"^[a-z0-9_.]*$",
        max_length=64,
        required=False,
    )
    actor = forms.CharField(label=_("Staff or user (username)"), max_length=150, required=False)
    since = forms.DateField(
        label=_("From (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    identifier = forms.CharField(
        label=_("Identifier typed into a form (username or email)"),
        max_length=320,
        required=False,
        help_text=_("Matched by its keyed hash: the log never holds it as typed."),
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("The start date is after the end date."))
        return cleaned

    def filters(self):
        data = self.cleaned_data
        return {
            "action": data.get("action") or "",
            "actor": (data.get("actor") or "").strip(),
            "since": data.get("since"),
            "until": data.get("until"),
            "identifier": (data.get("identifier") or "").strip(),
        }


class AuditLogView(SupervisorRequiredMixin, ListView):
    template_name = "staff/audit/list.html"
    context_object_name = "events"
    paginate_by = 50

    def get_queryset(self):
        self.filter_form = AuditFilterForm(self.request.GET or None)
        if self.request.GET and not self.filter_form.is_valid():
            return staff_selectors.audit_events().none()
        filters = self.filter_form.filters() if self.request.GET else {}
        return staff_selectors.audit_events(**filters)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for event in context["events"]:
            event.detail_text = _detail_text(event.detail)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(filter_form=self.filter_form, filter_query=query.urlencode())
        return context


class AuditExportView(SupervisorRequiredMixin, View):
    """GET /staff/audit/export.csv?<the list's filters>: every matching event, streamed."""

    http_method_names = ["get"]

    def get(self, request):
        form = AuditFilterForm(request.GET)
        if not form.is_valid():
            return HttpResponseBadRequest("Invalid filters.", content_type="text/plain")
        filters = form.filters()
        record_event(
            action="staff.audit_exported",
            request=request,
            identifier=filters["identifier"],  # hashed, like every typed identifier
            detail={
                "action": filters["action"],
                "actor": filters["actor"],
                "since": filters["since"].isoformat() if filters["since"] else "",
                "until": filters["until"].isoformat() if filters["until"] else "",
                "by_identifier": bool(filters["identifier"]),
            },
        )
        events = staff_selectors.iterate_in_batches(staff_selectors.audit_events(**filters))
        response = StreamingHttpResponse(csv_lines(events), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


def escape_cell(value):
    """The cell as text, with a leading ' when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_row(event):
    return [
        escape_cell(cell)
        for cell in (
            event.at.astimezone(UTC).isoformat(),
            event.action,
            event.actor.get_username() if event.actor else "",
            event.subject.get_username() if event.subject else "",
            event.identifier_hash,
            event.ip or "",
            event.user_agent,
            _detail_text(event.detail),
        )
    ]


class _Echo:
    def write(self, value):
        return value


def csv_lines(events):
    """The CSV, a line at a time (a byte-order mark first, so spreadsheets read UTF-8)."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(CSV_COLUMNS)
    for event in events:
        yield writer.writerow(csv_row(event))


def _detail_text(detail):
    return json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)
