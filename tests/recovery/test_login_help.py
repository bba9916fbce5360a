"""/help/ and /help/problems/: reached from the sign-in page, every problem of issue 4 item 5
answered in plain words and ending at the request form, nothing about any account, never the
default-password formula or a birth-date format, the same page for any query string."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model

HELP = "/help/"
PROBLEMS = "/help/problems/"
REQUEST_FORM = "/help/request/"
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


class _Page(HTMLParser):
    """The links, headings and text of the <main> element."""

    def __init__(self):
        super().__init__()
        self.links = []  # (href, text)
        self.headings = []  # (tag, text)
        self.text = []
        self._in_main = False
        self._link = None
        self._heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "main":
            self._in_main = True
        if not self._in_main:
            return
        if tag == "a":
            self._link = [attrs.get("href"), ""]
        if tag in ("h1", "h2"):
            self._heading = [tag, ""]

    def handle_endtag(self, tag):
        if tag == "main":
            self._in_main = False
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], " ".join(self._link[1].split())))
            self._link = None
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append((self._heading[0], " ".join(self._heading[1].split())))
            self._heading = None

    def handle_data(self, data):
        if not self._in_main:
            return
        self.text.append(data)
        if self._link is not None:
            self._link[1] += data
        if self._heading is not None:
            self._heading[1] += data


def parse(response):
    page = _Page()
    page.feed(response.content.decode())
    page.full_text = " ".join(" ".join(page.text).split())
    return page


def blank_csrf(response):
    return _CSRF.sub("", response.content.decode())


@pytest.fixture
def accounts(db):
    users = get_user_model().objects
    users.create_user(username="rosa.garcia", password="x" * 20, email="rosa@example.org")
    users.create_user(username="20230417", password="x" * 20, role="student")


def test_the_sign_in_page_help_link_leads_to_the_three_choices(client, db):
    login = parse(client.get("/login/"))
    assert (HELP, "Help") in login.links
    response = client.get(HELP)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = parse(response)
    assert [text for tag, text in page.headings if tag == "h1"] == ["Help signing in"]
    hrefs = [href for href, _ in page.links]
    for href, text in [
        ("/help/forgot-password/", "Forgot Password"),
        ("/help/forgot-username/", "Forgot Username"),
        (PROBLEMS, "Problems signing in"),
    ]:
        assert (href, text) in page.links
        assert client.get(href).status_code == 200
    assert hrefs.index("/help/forgot-password/") < hrefs.index(PROBLEMS)


def test_problems_answers_every_case_and_ends_at_the_request_form(client, db, settings):
    settings.LOGIN_DELAY_MAX = 15 * 60
    response = client.get(PROBLEMS)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = parse(response)
    assert [text for tag, text in page.headings if tag == "h1"] == ["Problems signing in"]
    assert [text for tag, text in page.headings if tag == "h2"] == [
        "I forgot my password",
        "I forgot my username",
        "I am locked out after wrong passwords",
        "I never had an account",
        "A student signing in for the first time",
        "I cannot get into that email any more",
        "Still stuck? Ask the school",
    ]
    hrefs = [href for href, _ in page.links]
    for fix in ("/help/forgot-password/", "/help/forgot-username/", "/login/code/"):
        assert fix in hrefs
    assert hrefs[-1] == REQUEST_FORM  # everything ends at the request form
    text = page.full_text
    # Locked out: when it ends, and what opens a locked account.
    assert "never longer than 15 minutes, and it always ends" in text
    assert "Setting a new password with Forgot Password unlocks it" in text
    # Each fix in plain words.
    assert "Ask your teacher or the school office" in text
    assert "welcome email" in text and "request form" in text
    assert "Never write a password in the form" in text


def test_the_longest_wait_follows_the_setting(client, db, settings):
    settings.LOGIN_DELAY_MAX = 30 * 60
    assert "never longer than 30 minutes" in parse(client.get(PROBLEMS)).full_text
    settings.LOGIN_DELAY_MAX = 45
    assert "never longer than 1 minute," in parse(client.get(PROBLEMS)).full_text


# Every way the district default (initials + birthday) could be spelled out, in each language.
FORBIDDEN = re.compile(
    r"mm\W?dd|dd\W?mm|yy\W?yy|mmddyy|ddmmyy|\bmm\b|\bdd\b|\byy\b|birth|initial|first letter"
    r"|nacimiento|cumpleaños|inicial|primera letra|ngày sinh|sinh nhật|chữ cái đầu"
    r"|\d{1,2}/\d{1,2}/\d{2,4}|\d{6}",
    re.IGNORECASE,
)


@pytest.mark.parametrize("language", ["en", "es", "vi"])
@pytest.mark.parametrize("path", [HELP, PROBLEMS])
def test_no_default_password_formula_and_no_birth_date_format(client, db, language, path):
    response = client.get(path, headers={"accept-language": language})
    assert response["Content-Language"] == language
    text = parse(response).full_text
    assert not FORBIDDEN.search(text), FORBIDDEN.search(text)


@pytest.mark.parametrize("path", [HELP, PROBLEMS, "/help/forgot-username/"])
def test_the_page_is_the_same_for_any_query_string(client, accounts, path):
    """Checklist A5: no lookup, no echo; a real username or address changes nothing."""
    plain = blank_csrf(client.get(path))
    for query in (
        "?username=rosa.garcia",
        "?username=nobody.at.all",
        "?username=20230417",
        "?email=rosa@example.org",
        "?next=https://evil.example/&lang=es",
        "?x=" + "%F0%9F%98%80" * 50 + "%00",
        "?a=" + "b" * 20_000,
    ):
        response = client.get(path + query)
        assert response.status_code == 200
        assert blank_csrf(response) == plain, query


@pytest.mark.parametrize("language", ["es", "vi"])
def test_the_pages_follow_the_language(client, db, language):
    english = parse(client.get(PROBLEMS, headers={"accept-language": "en"}))
    translated = parse(client.get(PROBLEMS, headers={"accept-language": language}))
    assert len(translated.headings) == len(english.headings)
    for (_, theirs), (_, ours) in zip(translated.headings, english.headings, strict=True):
        assert theirs != ours
    assert [href for href, _ in translated.links] == [href for href, _ in english.links]


def test_every_help_page_is_accessible_self_contained_and_uncached(client, db):
    from tests.portal.test_pages import is_local
    from tests.portal.test_pages import parse as parse_page
    from tests.portal.test_portal_pages import labelled_inputs_problems

    responses = {
        "help": client.get(HELP),
        "problems": client.get(PROBLEMS),
        "form": client.get("/help/forgot-username/"),
        "form with an error": client.post("/help/forgot-username/", {"email": "no at sign"}),
        "sent": client.get("/help/forgot-username/sent/"),
    }
    for name, response in responses.items():
        assert response.status_code == 200, name
        page = parse_page(response)
        html = response.content.decode()
        assert page.html_lang == "en", name
        assert {"header", "nav", "main", "footer"} <= page.landmarks, name
        assert len(re.findall(r"<h1[ >]", html)) == 1, name
        assert labelled_inputs_problems(html) == [], name
        for tag, attribute, url in page.urls:
            assert is_local(url), (name, tag, attribute, url)
        assert not page.inline_script and not page.inline_style and not page.handlers, name
        assert "no-store" in response["Cache-Control"], name
        assert response["Referrer-Policy"] == "same-origin", name
        for form in re.findall(r"<form\b[^>]*>", html):
            assert 'method="post"' in form, (name, form)
    error_page = responses["form with an error"].content.decode()
    assert 'aria-invalid="true"' in error_page
    assert "Enter an email address, for example name@example.org." in error_page
