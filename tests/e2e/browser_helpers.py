"""What the browser tests share: the axe-core run, the 320-px check, signing in, the people.

How axe-core gets into a page: `page.evaluate(axe_source)`. Our CSP is `script-src 'self'`,
so `page.add_script_tag(path=...)` (an inline <script> with the file's text) would be blocked,
and `bypass_csp=True` would audit a page weaker than the one people get. Playwright's evaluate
runs through the DevTools protocol, which CSP does not govern; axe-core itself needs no eval,
so the page keeps its real policy while axe runs inside it.
"""

from datetime import timedelta

from django.utils import timezone

from portal.models import ContactChangeRequest
from portal.normalisation import normalise_email
from recovery import tokens
from recovery.links import absolute_link
from tests.portal import family_helpers, login_helpers
from tests.recovery import password_reset_accounts, staff_other_helpers, staff_requests_helpers
from tests.recovery.staff_helpers import STAFF_PASSWORD, current_code, make_staff

# WCAG 2.0 and 2.1, levels A and AA (SPEC §7: WCAG 2.1 AA), plus axe's best practices
# (landmarks, one h1, heading order): SPEC §7 asks for no axe-core violations at all.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
PHONE_WIDTH = 320


def axe_violations(page, axe_source):
    """Run axe-core on the page as it is now; return its violations (dicts, as axe gives)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        AXE_TAGS,
    )
    return result["violations"]


def describe_violations(violations):
    lines = []
    for violation in violations:
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node['failureSummary']!r}")
    return "\n".join(lines)


def assert_accessible(page, axe_source):
    violations = axe_violations(page, axe_source)
    assert not violations, f"axe-core on {page.url}:\n{describe_violations(violations)}"


def horizontal_overflow(page):
    """How many CSS pixels the page is wider than the viewport (0 when nothing scrolls)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )


def open_page(page, path, *, status=200):
    """Go to `path` on the live server and wait for the page, CSS included, to be loaded."""
    response = page.goto(path, wait_until="load")
    assert response is not None and response.status == status, (
        f"GET {path}: {response.status if response else 'no response'} (expected {status})"
    )
    return response


def emailed_link(*, purpose, user):
    """(token, path): a fresh link minted as the outbox worker mints it, and its path.

    The email's URL starts with PORTAL_BASE_URL, which is not where the live server listens:
    the tests open its path on the live server instead.
    """
    token = tokens.mint(user=user, purpose=purpose)
    url = absolute_link(purpose=purpose, token=token)
    return token, "/" + url.split("/", 3)[3]


def stylesheets_loaded(page):
    """True when every <link rel=stylesheet> of the page was fetched and parsed: contrast checks
    mean nothing on unstyled HTML."""
    return page.evaluate(
        """() => {
            const links = [...document.querySelectorAll('link[rel=stylesheet]')];
            return links.length > 0
                && links.every(link => link.sheet && link.sheet.cssRules.length > 0);
        }"""
    )


def sign_in(page, username, password):
    """Sign in on /login/ as a person would: type, press Sign in, wait for the next page."""
    open_page(page, "/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()


def sign_in_staff(page, user):
    """Password, then the authenticator's current code, on the staff sign-in pages."""
    open_page(page, "/staff/login/")
    page.locator("input[name=username]").fill(user.get_username())
    page.locator("input[name=password]").fill(STAFF_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    assert page.url.endswith("/staff/login/code/"), page.url
    page.locator("input[name=otp_token]").fill(current_code(user))
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
    assert "/staff/login" not in page.url, f"staff sign-in did not finish: {page.url}"


class People:
    """Everyone the page tour needs, made straight in the tables (the live server shares them).

    parent       an activated parent with two children at two schools and Self Serve set up
    awaiting     a provisioned parent who has not activated yet (welcome link pending)
    student      a student still on the district default password (AG030912)
    supervisor   staff who see every page of the console
    request      a manual request in the queue; a contact change; a guardian without account
    """

    def __init__(self):
        family = family_helpers.make_family("e2e", "Nguyen", email="rosa.sis@example.org")
        now = timezone.now()
        self.parent = family.user
        self.parent.activated_at = now - timedelta(days=30)
        self.parent.recovery_email = "Rosa.Own@example.org"
        self.parent.recovery_email_normalised = normalise_email(self.parent.recovery_email)
        self.parent.recovery_email_verified_at = now - timedelta(days=29)
        self.parent.save()
        self.parent_password = family_helpers.PASSWORD
        self.children = family.children
        self.awaiting = password_reset_accounts.make_awaiting_parent()
        self.student = login_helpers.make_student()
        self.student_default = login_helpers.DEFAULT
        self.supervisor = make_staff("sue.super", supervisor=True)
        self.request = staff_requests_helpers.make_request(school=self.children[0].school)
        self.contact_change = ContactChangeRequest.objects.create(
            user=self.parent, field="phone", new_value="408-555-0111"
        )
        self.unprovisioned = staff_other_helpers.make_guardian(
            given="Luis",
            family="Tran",
            students=self.children[:1],
            email="tran.household@example.org",
            reason="shared_email",
            shared=True,
        )
