"""SPEC §7: keyboard-only use. Tab and Enter alone, from the sign-in page to a sent reset
request, with a visible focus indicator on every stop and the skip link first."""

import pytest

from recovery.models import HelpRequest
from tests.e2e.browser_helpers import open_page

pytestmark = pytest.mark.e2e

# Far more than any page here has: a Tab loop that never reaches its target fails, not hangs.
MAX_TABS = 40

FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return {
        tag: el.tagName.toLowerCase(),
        id: el.id,
        name: el.getAttribute('name'),
        href: el.getAttribute('href'),
        text: (el.innerText || el.value || '').trim(),
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
        shadow: style.boxShadow !== 'none',
        onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
            && box.left < window.innerWidth,
    };
}"""


def focused(page):
    return page.evaluate(FOCUSED)


def assert_focus_visible(stop):
    assert stop["onScreen"], f"focus is off screen: {stop}"
    assert stop["outline"] or stop["shadow"], f"no visible focus indicator: {stop}"


def tab_to(page, matches, *, what):
    """Press Tab until the focused element satisfies `matches`; check every stop is visible."""
    stops = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        stop = focused(page)
        if stop is None:
            continue
        assert_focus_visible(stop)
        stops.append(stop["text"] or stop["name"] or stop["tag"])
        if matches(stop):
            return stop
    raise AssertionError(f"Tab never reached {what}; stops: {stops}")


def test_skip_link_is_the_first_tab_stop_and_moves_focus_to_main(page):
    open_page(page, "/login/")
    page.keyboard.press("Tab")
    first = focused(page)
    assert first is not None and first["href"] == "#main", first
    assert first["text"] == "Skip to main content"
    assert_focus_visible(first)  # hidden until focused, then shown

    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    # Sequential navigation now starts inside main: the next Tab is the sign-in form's first
    # field, not the header's links.
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "username"


def test_forgot_password_by_keyboard_only(page):
    open_page(page, "/login/")
    tab_to(page, lambda stop: stop["href"] == "/help/", what="the Help link")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/help/")

    tab_to(page, lambda stop: stop["href"] == "/help/forgot-password/", what="Forgot Password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/help/forgot-password/")

    tab_to(page, lambda stop: stop["name"] == "username", what="the username field")
    page.keyboard.type("rosa.keyboard")
    tab_to(page, lambda stop: stop["tag"] == "button" and stop["text"] == "Next", what="Next")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/help/forgot-password/sent/"), page.url
    assert HelpRequest.objects.filter(
        kind=HelpRequest.Kind.FORGOT_PASSWORD, identifier="rosa.keyboard"
    ).exists()
