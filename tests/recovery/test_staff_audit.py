"""/staff/audit/ (supervisors): filters (action, actor, dates, a typed identifier by its hash),
pagination, details escaped, and the CSV export: formula cells neutralised (checklist O12),
streamed in batches, itself audited."""

import csv
import io
from datetime import datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from recovery import staff_selectors
from recovery.audit import record_event
from recovery.models import AuditEvent
from recovery.views.staff_audit import CSV_COLUMNS, escape_cell
from tests.recovery.staff_helpers import sign_in_staff
from tests.recovery.staff_other_helpers import XSS, XSS_ESCAPED, make_two_schools

LIST = reverse("staff:audit")
EXPORT = reverse("staff:audit_export")
EVIL = '=HYPERLINK("http://evil","x")'


@pytest.fixture
def district(db):
    return make_two_schools()


def at(day, hour=12):
    return timezone.make_aware(datetime(2026, 11, day, hour))


def event(when, **fields):
    with time_machine.travel(when, tick=False):
        return record_event(**fields)


def listed(response):
    return [item.pk for item in response.context["events"]]


def export(client, **params):
    response = client.get(EXPORT, params)
    assert response.status_code == 200
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows[0] == list(CSV_COLUMNS)
    return response, rows[1:]


def test_only_supervisors_read_the_audit_log(client, district):
    sign_in_staff(client, district.staff_a)
    assert client.get(LIST).status_code == 403
    assert client.get(EXPORT).status_code == 403
    assert not AuditEvent.objects.filter(action="staff.audit_exported").exists()


def test_filters(client, district):
    staff = district.staff_a
    reset = event(at(2), action="password_reset.requested", identifier="Rosa.Garcia")
    other = event(at(3), action="password_reset.requested", identifier="someone.else")
    mine = event(at(4), action="desk.reset_link_sent", actor=staff)
    late = event(at(9), action="desk.request_resolved", actor=staff)
    sign_in_staff(client, district.supervisor)

    assert listed(client.get(LIST, {"action": "desk."})) == [late.pk, mine.pk]
    assert listed(client.get(LIST, {"actor": "STAFF.lincoln"})) == [late.pk, mine.pk]
    assert listed(client.get(LIST, {"since": "2026-11-03", "until": "2026-11-04"})) == [
        mine.pk,
        other.pk,
    ]
    # The identifier as someone typed it, in another case and with spaces: found by its hash.
    assert listed(client.get(LIST, {"identifier": "  rosa.garcia "})) == [reset.pk]
    assert listed(client.get(LIST, {"identifier": "nobody"})) == []


def test_bad_filters_are_form_errors_never_500(client, district):
    event(at(2), action="a.b")
    sign_in_staff(client, district.supervisor)
    for params in (
        {"since": "2026-13-45"},
        {"since": "2026-11-05", "until": "2026-11-01"},
        {"action": "<script>"},
        {"actor": "x" * 500},
    ):
        response = client.get(LIST, params)
        assert response.status_code == 200
        assert response.context["filter_form"].errors
        assert listed(response) == []
        assert client.get(EXPORT, params).status_code == 400


def test_paginated(client, district):
    for number in range(55):
        event(at(2) + timedelta(minutes=number), action="test.event")
    sign_in_staff(client, district.supervisor)
    first = client.get(LIST, {"action": "test."})
    second = client.get(LIST, {"action": "test.", "page": 2})
    assert len(listed(first)) == 50 and len(listed(second)) == 5
    assert set(listed(first)).isdisjoint(listed(second))
    assert "action=test." in first.content.decode()  # the next-page link keeps the filter
    assert client.get(LIST, {"page": 99}).status_code == 404


def test_details_are_shown_escaped(client, district):
    event(at(2), action="staff.note", actor=district.staff_a, detail={"note": XSS})
    sign_in_staff(client, district.supervisor)
    body = client.get(LIST).content.decode()
    assert XSS not in body
    # JSON quoting (\") then HTML escaping: every tag character arrives as an entity.
    assert XSS_ESCAPED.replace("&quot;", "\\&quot;") in body


@pytest.mark.parametrize(
    "value",
    [EVIL, "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(value):
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "", "'already"])
def test_other_cells_are_unchanged(value):
    assert escape_cell(value) == value


def test_export_escapes_formulas_and_is_itself_audited(client, district):
    evil_staff = district.staff_a
    evil_staff.username = "=cmd|' /C calc'!A0"
    evil_staff.save()
    event(
        at(2),
        action="staff.request_rejected",
        actor=evil_staff,
        subject=district.staff_b,
        detail={"note": EVIL},
    )
    event(at(3), action="help.ip", detail={"count": 1})
    sign_in_staff(client, district.supervisor)

    response, rows = export(client, action="staff.request", identifier="Rosa.Garcia")
    assert rows == []  # filtered by the identifier too: nothing matches it
    response, rows = export(client, action="staff.request")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert "no-store" in response["Cache-Control"]
    [row] = rows
    record = dict(zip(CSV_COLUMNS, row, strict=True))
    assert record["actor"] == "'=cmd|' /C calc'!A0"
    assert record["subject"] == "staff.roosevelt"
    assert record["at_utc"] == "2026-11-02T20:00:00+00:00"  # noon in Los Angeles
    # The detail is JSON text starting with "{"; the formula inside it is not a cell start.
    assert '"note": "=HYPERLINK(\\"http://evil\\",\\"x\\")"' in record["detail"]

    exports = AuditEvent.objects.filter(action="staff.audit_exported").order_by("pk")
    assert [item.actor for item in exports] == [district.supervisor, district.supervisor]
    first, second = exports
    assert first.detail["by_identifier"] is True
    assert "Rosa" not in str(first.detail) and first.identifier_hash  # hashed, never in clear
    assert second.detail == {
        "action": "staff.request",
        "actor": "",
        "since": "",
        "until": "",
        "by_identifier": False,
    }


def test_export_of_a_formula_as_a_whole_cell(client, district):
    # A user agent is typed by whoever sent the request: the whole cell is attacker-chosen.
    AuditEvent.objects.create(action="login.failed", user_agent=EVIL)
    sign_in_staff(client, district.supervisor)
    _, rows = export(client, action="login.")
    [row] = rows
    assert dict(zip(CSV_COLUMNS, row, strict=True))["user_agent"] == "'" + EVIL


def test_export_walks_every_batch_in_order(client, district, monkeypatch):
    made = [event(at(2) + timedelta(minutes=n), action="test.event").pk for n in range(7)]
    batches = []
    real = staff_selectors.iterate_in_batches

    def small_batches(queryset, *, batch_size=2000):
        for row in real(queryset, batch_size=3):
            batches.append(row.pk)
            yield row

    monkeypatch.setattr(staff_selectors, "iterate_in_batches", small_batches)
    sign_in_staff(client, district.supervisor)
    _, rows = export(client, action="test.")
    assert len(rows) == 7
    assert batches == sorted(made, reverse=True)


def test_iterate_in_batches_covers_every_row_once(district):
    made = [AuditEvent.objects.create(action="test.event").pk for _ in range(10)]
    seen = [
        row.pk for row in staff_selectors.iterate_in_batches(AuditEvent.objects.all(), batch_size=3)
    ]
    assert seen == sorted(made, reverse=True)
