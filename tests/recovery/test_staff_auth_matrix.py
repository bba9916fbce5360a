"""Who may open what: every /staff/ URL (crawled from recovery.staff_urls when the tests run, so
pages added later are covered) and /admin/, for every kind of visitor.

- anonymous → the staff sign-in; a parent or a student (signed in on the portal) → 403;
- staff after the password, before the code → the code page;
- verified staff (of one school, or of another) → the page (list pages load; pages naming an
  object answer below 500: the scope tests of each page check their 404s);
- supervisor-only pages (SupervisorRequiredMixin) → 403 for plain staff, loaded for supervisors;
- every answer is uncached.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, reverse

from portal.models import Organisation
from recovery import staff_urls
from recovery.staff_access import StaffRequiredMixin, SupervisorRequiredMixin
from tests.portal.login_helpers import clean_login_counters, make_parent, make_student  # noqa: F401
from tests.recovery.staff_helpers import make_staff, post_password, sign_in_staff

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_login_counters")]

SIGN_IN_NAMES = {"login", "login_code", "logout"}
# A value per path converter: nothing here exists, which is fine (access is decided first).
_SAMPLES = {"int": "987654", "str": "NO-SUCH-REF", "slug": "no-such-thing", "path": "x/y"}
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _crawl(patterns, prefix="/staff/"):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _crawl(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = str(entry.pattern)
            sample = _CONVERTER.sub(lambda m: _SAMPLES.get(m.group(1) or "str", "x"), route)
            yield entry.name, prefix + sample, entry.callback, "<" in route


STAFF_URLS = [item for item in _crawl(staff_urls.urlpatterns) if item[0] not in SIGN_IN_NAMES]


def _view_class(callback):
    return getattr(callback, "view_class", None)


def _methods(callback):
    view_class = _view_class(callback)
    allowed = getattr(view_class, "http_method_names", ["get"])
    return ["get"] if "get" in allowed else ["post"]


def _supervisor_only(callback):
    view_class = _view_class(callback)
    return view_class is not None and issubclass(view_class, SupervisorRequiredMixin)


def _fetch(client, method, url):
    return getattr(client, method)(url)


def _uncached(response):
    return "no-store" in response.get("Cache-Control", "")


@pytest.fixture
def schools():
    return [
        Organisation.objects.create(sourced_id=f"sch-{key}", name=f"School {key}", type="school")
        for key in ("a", "b")
    ]


def test_the_crawl_found_the_console():
    names = {name for name, *_ in STAFF_URLS}
    assert {"team", "team_reissue_authenticator", "team_password_reset"} <= names
    assert len(STAFF_URLS) >= 3


@pytest.mark.parametrize(
    "callback", [item[2] for item in STAFF_URLS], ids=[i[0] for i in STAFF_URLS]
)
def test_every_staff_view_uses_the_staff_access_mixins(callback):
    view_class = _view_class(callback)
    assert view_class is not None and issubclass(view_class, StaffRequiredMixin), (
        f"{callback} must use recovery.staff_access.StaffRequiredMixin"
    )


@pytest.mark.parametrize(
    ("name", "url", "callback", "has_args"), STAFF_URLS, ids=[item[0] for item in STAFF_URLS]
)
def test_permission_matrix(client, django_user_model, schools, name, url, callback, has_args):
    method = _methods(callback)[0]
    school_a, school_b = schools

    # Anonymous: the staff sign-in, with the way back.
    response = _fetch(client, method, url)
    assert response.status_code == 302, (name, "anonymous", response.status_code)
    assert response["Location"].startswith(reverse("staff:login")), (name, response["Location"])
    assert _uncached(response), (name, "anonymous")

    # A parent, then a student, signed in on the portal: refused outright.
    for family_member in (make_parent("parent.one"), _student()):
        client.force_login(family_member)
        response = _fetch(client, method, url)
        assert response.status_code == 403, (name, family_member.role, response.status_code)
        client.logout()

    # Staff with the password only: the code page first.
    plain = make_staff("sam.staff", schools=[school_a])
    post_password(client, plain.username)
    response = _fetch(client, method, url)
    assert response.status_code == 302, (name, "unverified", response.status_code)
    assert response["Location"].startswith(reverse("staff:login_code")), (name, "unverified")
    client.post(reverse("staff:logout"))

    # Verified staff: this school's, another school's, a supervisor.
    other = make_staff("kim.staff", schools=[school_b])
    supervisor = make_staff("sue.super", supervisor=True)
    for member, is_supervisor in ((plain, False), (other, False), (supervisor, True)):
        sign_in_staff(client, member)
        response = _fetch(client, method, url)
        who = (name, member.username, response.status_code)
        assert _uncached(response), who
        if _supervisor_only(callback) and not is_supervisor:
            assert response.status_code == 403, who
        elif has_args:
            assert response.status_code < 500, who
            assert response.status_code != 403 or not is_supervisor, who
        elif method == "get":
            assert response.status_code in (200, 302), who
            if response.status_code == 302:
                assert response["Location"].startswith("/staff/"), who
        else:
            assert response.status_code < 500 and response.status_code != 403, who
        client.post(reverse("staff:logout"))


def _student():
    student = make_student(on_default=False)
    student.must_change_password = False
    student.save(update_fields=["must_change_password"])
    return student


def test_post_only_pages_refuse_a_get_from_verified_staff(client):
    supervisor = make_staff("sue.super", supervisor=True)
    sign_in_staff(client, supervisor)
    for name, url, callback, _ in STAFF_URLS:
        if _methods(callback) == ["post"]:
            assert client.get(url).status_code == 405, name


def test_admin_matrix(client):
    def admin_status(method="get"):
        response = getattr(client, method)("/admin/")
        return response.status_code, response.get("Location", "")

    status, location = admin_status()
    assert (status, location) == (302, "/admin/login/?next=/admin/")
    login = client.get(location)
    assert login["Location"] == reverse("staff:login") + "?next=%2Fadmin%2F"

    client.force_login(make_parent("parent.one"))
    assert admin_status()[0] == 302
    client.logout()

    plain = make_staff("sam.staff")
    post_password(client, plain.username)
    assert admin_status()[0] == 302  # no code yet: not admitted
    client.post(reverse("staff:logout"))
    sign_in_staff(client, plain)
    assert admin_status()[0] == 200
    client.post(reverse("staff:logout"))
    assert admin_status()[0] == 302
