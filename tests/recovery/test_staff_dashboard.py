"""/staff/dashboard/: open requests by age bucket and school, resets and requests per day for
14 days, on generated data; scoped staff see only their schools' numbers."""

import itertools
from datetime import datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from recovery import staff_selectors
from recovery.audit import record_event
from recovery.models import HelpRequest, ManualRequest
from tests.recovery.staff_helpers import sign_in_staff
from tests.recovery.staff_other_helpers import make_guardian, make_parent, make_two_schools

URL = reverse("staff:dashboard")
# Mid-afternoon in the district's time zone, so "N days ago" never straddles midnight.
NOW = timezone.make_aware(datetime(2026, 11, 20, 15, 0))
_refs = itertools.count(1)


def manual_request(*, age, school, status="new"):
    with time_machine.travel(NOW - age, tick=False):
        return ManualRequest.objects.create(
            reference=f"D-{next(_refs):06d}",
            student_first_name="Ana",
            student_last_name="Garcia",
            student_id="20230417",
            request_type="reset",
            request_for="parent",
            answer_address="family@example.org",
            status=status,
            school=school,
        )


def reset(*, age, subject):
    with time_machine.travel(NOW - age, tick=False):
        record_event(action="password.reset", subject=subject)


def help_request(*, age):
    with time_machine.travel(NOW - age, tick=False):
        HelpRequest.objects.create(kind="forgot_password", identifier_hash="h" * 64)


@pytest.fixture
def district(db):
    d = make_two_schools()
    hours, days = (lambda n: timedelta(hours=n)), (lambda n: timedelta(days=n))
    # Lincoln: open at 2 h, 30 h, 2.5 d, 5 d, 10 d; one closed (never counted).
    for age in (hours(2), hours(30), days(2.5), days(5), days(10)):
        manual_request(age=age, school=d.lincoln)
    manual_request(age=hours(3), school=d.lincoln, status="resolved")
    # Roosevelt: waiting at 4 h, in progress at 8 d; one rejected.
    manual_request(age=hours(4), school=d.roosevelt, status="waiting")
    manual_request(age=days(8), school=d.roosevelt, status="in_progress")
    manual_request(age=days(1.2), school=d.roosevelt, status="rejected")
    # Not matched to a school yet: only supervisors see it.
    manual_request(age=hours(1), school=None)

    rosa = make_parent(make_guardian(given="Rosa", family="Garcia", students=[d.ana]))
    tuan = make_parent(make_guardian(given="Tuan", family="Tran", students=[d.ben]))
    reset(age=hours(1), subject=rosa)
    reset(age=days(1), subject=rosa)
    reset(age=days(1), subject=tuan)
    reset(age=days(20), subject=tuan)  # outside the 14 days
    for age in (hours(1), hours(2), days(13)):
        help_request(age=age)
    return d


def test_open_requests_by_age_and_school_for_a_supervisor(district):
    by_age = staff_selectors.open_requests_by_age(scope=None, now=NOW)
    assert by_age == {"day": 3, "days_3": 2, "days_7": 1, "older": 2}
    assert staff_selectors.open_requests_by_school(scope=None) == [
        ("Lincoln Elementary", 5),
        ("Roosevelt Middle", 2),
        (None, 1),
    ]


def test_scoped_staff_count_only_their_schools(district):
    scope = district.staff_b.staff_profile.schools.all()
    assert staff_selectors.open_requests_by_age(scope=scope, now=NOW) == {
        "day": 1,
        "days_3": 0,
        "days_7": 0,
        "older": 1,
    }
    assert staff_selectors.open_requests_by_school(scope=scope) == [("Roosevelt Middle", 2)]


def test_activity_per_day(district):
    with time_machine.travel(NOW, tick=False):
        days = staff_selectors.activity_per_day(scope=None)
        lincoln = staff_selectors.activity_per_day(
            scope=district.staff_a.staff_profile.schools.all()
        )
    today = NOW.date()
    assert [day.day for day in days] == [today - timedelta(days=n) for n in range(13, -1, -1)]
    by_day = {day.day: day for day in days}
    assert (by_day[today].resets, by_day[today].help_requests) == (1, 2)
    assert by_day[today - timedelta(days=1)].resets == 2
    assert by_day[today - timedelta(days=13)].help_requests == 1
    assert sum(day.resets for day in days) == 3
    assert sum(day.manual_requests for day in days) == 10
    assert by_day[today].manual_requests == 4  # 1, 2, 3 and 4 hours old

    lincoln_by_day = {day.day: day for day in lincoln}
    assert lincoln_by_day[today - timedelta(days=1)].resets == 1  # Rosa's, not Tuan's
    assert sum(day.resets for day in lincoln) == 2
    assert sum(day.manual_requests for day in lincoln) == 6
    # Help forms carry no school: the district's count, the same for everyone.
    assert [day.help_requests for day in lincoln] == [day.help_requests for day in days]


def test_the_page_shows_the_numbers_of_the_staff_members_schools(client, district):
    sign_in_staff(client, district.staff_b)
    with time_machine.travel(NOW, tick=True):
        response = client.get(URL)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response.context["open_total"] == 2
    assert response.context["by_school"] == [("Roosevelt Middle", 2)]
    body = response.content.decode()
    assert "Lincoln Elementary" not in body
    assert "Your schools only." in body
    assert len(response.context["days"]) == 14


def test_a_supervisor_sees_the_whole_district(client, district):
    sign_in_staff(client, district.supervisor)
    with time_machine.travel(NOW, tick=True):
        response = client.get(URL)
    assert response.context["open_total"] == 8
    body = response.content.decode()
    assert "No school matched yet" in body and "Lincoln Elementary" in body


@pytest.mark.parametrize(
    ("language", "heading"),
    [("es", "Solicitudes abiertas por escuela"), ("vi", "Yêu cầu đang mở theo trường")],
)
def test_the_console_pages_speak_spanish_and_vietnamese(client, district, language, heading):
    sign_in_staff(client, district.supervisor)
    response = client.get(URL, HTTP_ACCEPT_LANGUAGE=language)
    assert heading in response.content.decode()
    for name in ("staff:guardians", "staff:contact_changes", "staff:audit"):
        response = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200
        assert f'lang="{language}"' in response.content.decode()
