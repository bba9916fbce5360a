"""SPEC §7: no axe-core violations (WCAG 2.1 A/AA and best practice) on any page, and every
public and portal page usable on a 320-px-wide phone without horizontal scrolling.

Each test tours a group of pages in one browser context and reports every failing page at
once, so one run shows the whole state of the site.
"""

import pytest

from tests.e2e.browser_helpers import (
    PHONE_WIDTH,
    People,
    assert_accessible,
    axe_violations,
    describe_violations,
    emailed_link,
    horizontal_overflow,
    open_page,
    sign_in,
    sign_in_staff,
    stylesheets_loaded,
)
from tests.recovery.staff_helpers import STAFF_PASSWORD

pytestmark = pytest.mark.e2e

PUBLIC_PAGES = [
    "/login/",
    "/help/",
    "/help/forgot-password/",
    "/help/forgot-password/sent/",
    "/help/forgot-username/",
    "/help/forgot-username/sent/",
    "/help/problems/",
    "/help/request/",
    "/help/request/sent/",
    "/login/code/",
    # The one page for an unusable link (the landing redirects to it).
    "/help/reset/not-a-valid-link/",
    "/activate/not-a-valid-link/",
    "/help/reset/done/",
    "/activate/done/",
    "/staff/login/",
]
PORTAL_PAGES = ["/portal/", "/portal/account/", "/portal/contact-changes/"]


def staff_pages(people):
    return [
        "/staff/requests/",
        f"/staff/requests/{people.request.reference}/",
        "/staff/guardians/",
        f"/staff/guardians/{people.unprovisioned.sourced_id}/",
        "/staff/contact-changes/",
        f"/staff/contact-changes/{people.contact_change.pk}/",
        "/staff/audit/",
        "/staff/dashboard/",
        "/staff/team/",
    ]


class Tour:
    """Audit pages (in any of the test's browser pages) and collect what fails; `check()`
    reports them all at the end."""

    def __init__(self, axe_source):
        self.axe_source = axe_source
        self.failures = []
        self.visited = 0

    def audit(self, page, label=None):
        """Audit what `page` shows now."""
        self.visited += 1
        where = label or page.url
        if not stylesheets_loaded(page):
            self.failures.append(f"{where}: the stylesheet did not load")
        violations = axe_violations(page, self.axe_source)
        if violations:
            self.failures.append(f"{where}:\n{describe_violations(violations)}")

    def visit(self, page, path):
        open_page(page, path)
        self.audit(page, path)

    def check(self):
        assert not self.failures, f"{len(self.failures)} of {self.visited} pages fail:\n" + (
            "\n".join(self.failures)
        )


@pytest.mark.parametrize("language", ["en", "es", "vi"])
def test_public_pages_have_no_axe_violations(new_context, axe_source, language):
    page = new_context(locale=language).new_page()
    tour = Tour(axe_source)
    for path in PUBLIC_PAGES:
        tour.visit(page, path)
        assert page.locator("html").get_attribute("lang") == language, path
    tour.check()


def test_forms_showing_errors_have_no_axe_violations(page, axe_source):
    tour = Tour(axe_source)
    for path in [
        "/help/request/",
        "/help/forgot-password/",
        "/help/forgot-username/",
        "/login/",
        "/login/code/",
        "/staff/login/",
    ]:
        open_page(page, path)
        form = page.locator("main form[method=post]").first
        # Empty fields, with the browser's own checks off, so the server's messages show.
        form.evaluate("form => { form.noValidate = true; }")
        with page.expect_navigation():
            form.locator("button[type=submit]").first.click()
        assert page.locator(".errorlist, [role=alert]").count(), f"{path}: no error shown"
        tour.audit(page, f"{path} with errors")
    tour.check()


def test_link_and_account_pages_have_no_axe_violations(new_context, axe_source):
    people = People()
    tour = Tour(axe_source)
    # Each emailed link in a context of its own, as each arrives in a fresh browser tab.
    for purpose, user in [("reset", people.parent), ("activation", people.awaiting)]:
        page = new_context().new_page()
        open_page(page, emailed_link(purpose=purpose, user=user)[1])
        assert page.locator("input[name=new_password1]").count() == 1, page.url
        tour.audit(page, f"{purpose} set-password page")
        # Two passwords that differ: the form again, with its errors (the link stays valid).
        page.locator("input[name=new_password1]").fill("amber glacier folds beneath")
        page.locator("input[name=new_password2]").fill("something else entirely")
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        assert page.locator(".errorlist").count(), page.url
        tour.audit(page, f"{purpose} set-password page with errors")

    student = new_context().new_page()
    sign_in(student, people.student.username, people.student_default)
    assert student.url.endswith("/login/change-password/"), student.url
    tour.audit(student, "/login/change-password/ (student on the default)")

    parent = new_context().new_page()
    sign_in(parent, people.parent.username, people.parent_password)
    for path in PORTAL_PAGES:
        tour.visit(parent, path)
    tour.check()


def test_staff_console_has_no_axe_violations(page, axe_source):
    people = People()
    tour = Tour(axe_source)
    open_page(page, "/staff/login/")
    page.locator("input[name=username]").fill(people.supervisor.get_username())
    page.locator("input[name=password]").fill(STAFF_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    tour.audit(page, "/staff/login/code/")
    page.context.clear_cookies()
    sign_in_staff(page, people.supervisor)
    for path in staff_pages(people):
        tour.visit(page, path)
    tour.check()


def test_public_and_portal_pages_fit_a_320_px_screen(new_context):
    people = People()
    viewport = {"width": PHONE_WIDTH, "height": 640}
    wide = []

    def measure(page, label):
        overflow = horizontal_overflow(page)
        if overflow:
            wide.append(f"{label}: {overflow} px too wide")

    anonymous = new_context(viewport=viewport).new_page()
    for path in PUBLIC_PAGES:
        open_page(anonymous, path)
        assert anonymous.evaluate("window.innerWidth") == PHONE_WIDTH
        measure(anonymous, path)
    open_page(anonymous, "/help/request/")
    with anonymous.expect_navigation():
        anonymous.get_by_role("button", name="Send the request").click()
    measure(anonymous, "/help/request/ with errors")

    for purpose, user in [("reset", people.parent), ("activation", people.awaiting)]:
        link_page = new_context(viewport=viewport).new_page()
        open_page(link_page, emailed_link(purpose=purpose, user=user)[1])
        measure(link_page, f"{purpose} set-password page")

    student = new_context(viewport=viewport).new_page()
    sign_in(student, people.student.username, people.student_default)
    measure(student, "/login/change-password/")

    parent = new_context(viewport=viewport).new_page()
    sign_in(parent, people.parent.username, people.parent_password)
    for path in PORTAL_PAGES:
        open_page(parent, path)
        measure(parent, path)

    assert not wide, "Horizontal scrolling at 320 px:\n" + "\n".join(wide)


def test_staff_console_fits_a_320_px_screen(new_context, axe_source):
    """Wide tables scroll inside their own box (keyboard-reachable: axe checks that at this
    width, where the boxes really scroll), never the whole page."""
    people = People()
    page = new_context(viewport={"width": PHONE_WIDTH, "height": 640}).new_page()
    sign_in_staff(page, people.supervisor)
    wide = []
    tour = Tour(axe_source)
    for path in staff_pages(people):
        tour.visit(page, path)
        if overflow := horizontal_overflow(page):
            wide.append(f"{path}: {overflow} px too wide")
    assert not wide, "Horizontal scrolling at 320 px:\n" + "\n".join(wide)
    tour.check()


def test_axe_finds_a_violation_when_there_is_one(page, axe_source):
    """The audit itself works: a page with an unlabelled field and low contrast fails."""
    open_page(page, "/login/")
    page.evaluate(
        """() => {
            const input = document.createElement('input');
            document.querySelector('main').append(input);
            document.querySelector('h1').style.color = '#eeeeee';
        }"""
    )
    found = {violation["id"] for violation in axe_violations(page, axe_source)}
    assert {"label", "color-contrast"} <= found
    with pytest.raises(AssertionError, match="axe-core on"):
        assert_accessible(page, axe_source)
