"""The emailed reset and activation links in a real browser (security checklist E2, F2, F3).

E2: the set-password forms behind the links post back with CSRF under our Referrer-Policy
(`same-origin`; `no-referrer` would make Chromium send `Origin: null` and Django answer 403).
F2: a mail scanner that opens the link and runs every script, but clicks nothing, spends
nothing: the person can still use the link afterwards.

Links are minted as the outbox worker mints them and opened by their path on the live server
(browser_helpers.emailed_link).
"""

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from recovery import tokens
from tests.e2e.browser_helpers import People, emailed_link, open_page, sign_in

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "amber glacier folds beneath nine lanterns"
# The checklist's scanner waits 10 s after the page loaded for anything scripted to happen.
SCANNER_WAIT_MS = 10_000

FLOWS = {
    # purpose: (set-password page, its button, the page after it)
    "reset": ("/help/reset/set-password/", "Set new password", "/help/reset/done/"),
    "activation": ("/activate/set-password/", "Activate account", "/activate/done/"),
}


def account_for(people, purpose):
    return people.parent if purpose == "reset" else people.awaiting


def watch_responses(page):
    """Every response the page gets, in order."""
    seen = []
    page.on("response", lambda response: seen.append(response))
    return seen


def complete_flow(page, *, purpose, path):
    """Open the emailed link, type the new password twice, press the button."""
    form_path, button, done_path = FLOWS[purpose]
    open_page(page, path)
    assert page.url.endswith(form_path), page.url
    page.locator("input[name=new_password1]").fill(NEW_PASSWORD)
    page.locator("input[name=new_password2]").fill(NEW_PASSWORD)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    assert navigation.value.status == 200, navigation.value.status
    assert page.url.endswith(done_path), page.url


def assert_password_works(new_context, user):
    page = new_context().new_page()
    sign_in(page, user.get_username(), NEW_PASSWORD)
    assert page.url.endswith("/portal/"), f"sign-in with the new password failed: {page.url}"


@pytest.mark.parametrize("purpose", ["reset", "activation"])
def test_emailed_link_form_posts_without_a_csrf_403(new_context, live_server, purpose):
    people = People()
    user = account_for(people, purpose)
    token, path = emailed_link(purpose=purpose, user=user)
    page = new_context().new_page()
    responses = watch_responses(page)

    complete_flow(page, purpose=purpose, path=path)

    pages = [r for r in responses if "/static/" not in r.url]
    seen = [(r.request.method, r.url.removeprefix(live_server.url), r.status) for r in pages]
    form_path, _button, done_path = FLOWS[purpose]
    # Landing 302 (the token moves to the session, checklist E1), the form, its POST, done.
    assert seen == [
        ("GET", path, 302),
        ("GET", form_path, 200),
        ("POST", form_path, 302),
        ("GET", done_path, 200),
    ], seen
    form_page, post = pages[1], pages[2]
    assert form_page.headers["referrer-policy"] == "same-origin"
    # Chromium sent our own origin, which Django's CSRF check accepts (not "null"), and the
    # same-origin Referer.
    assert post.request.headers["origin"] == live_server.url
    assert post.request.headers["referer"] == live_server.url + form_path
    with pytest.raises(tokens.TokenUsed):
        tokens.check(token, purpose=purpose)
    assert_password_works(new_context, user)


def test_a_scanner_that_runs_scripts_but_clicks_nothing_spends_no_link(new_context):
    people = People()
    links = {
        purpose: emailed_link(purpose=purpose, user=account_for(people, purpose))
        for purpose in FLOWS
    }

    # One scanner browser opens both links, as a mail filter opens every link of its mail.
    scanner = new_context(user_agent="Mozilla/5.0 HeadlessChrome/156.0 SafeLinks-scanner")
    scanner_requests = []
    scanner.on("request", lambda r: scanner_requests.append((r.method, r.url)))
    pages = []
    for purpose, (_token, path) in links.items():
        page = scanner.new_page()
        open_page(page, path)
        page.wait_for_load_state("networkidle")
        assert page.url.endswith(FLOWS[purpose][0]), page.url
        # Nothing on the page could submit it by itself.
        assert page.locator("script, meta[http-equiv=refresh i]").count() == 0
        pages.append(page)

    # Wait, bounded, for what an auto-submitting page would do: send a POST.
    with pytest.raises(PlaywrightTimeout):
        scanner.wait_for_event(
            "request", predicate=lambda r: r.method == "POST", timeout=SCANNER_WAIT_MS
        )
    assert all(method == "GET" for method, _ in scanner_requests), scanner_requests

    # Still unused, and the scanner got no signed-in session out of it (checklist F3).
    for purpose, (token, _path) in links.items():
        assert tokens.check(token, purpose=purpose).used_at is None
    open_page(pages[0], "/portal/")
    assert "/login/" in pages[0].url, pages[0].url

    # The person clicks later, in their own browser: both links still work.
    for purpose, (token, path) in links.items():
        complete_flow(new_context().new_page(), purpose=purpose, path=path)
        with pytest.raises(tokens.TokenUsed):
            tokens.check(token, purpose=purpose)
        assert_password_works(new_context, account_for(people, purpose))
