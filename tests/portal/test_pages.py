"""The pages of issue 2: sign-in, sign-out, the placeholder home, and what every page carries."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.urls import reverse

PASSWORD = "correct horse battery staple"


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.html_lang = None
        self.urls = []  # (tag, attribute, value)
        self.ids = set()
        self.links = []  # (href, text)
        self.landmarks = set()
        self.inline_script = False
        self.inline_style = False
        self.handlers = []
        self._link = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_lang = attrs.get("lang")
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in {"header", "nav", "main", "footer"}:
            self.landmarks.add(tag)
        if tag == "style" or "style" in attrs:
            self.inline_style = True
        if tag == "script" and "src" not in attrs:
            self.inline_script = True
        self.handlers.extend(name for name in attrs if name.startswith("on"))
        for name in ("src", "href", "action", "srcset", "formaction", "poster", "data"):
            if attrs.get(name):
                self.urls.append((tag, name, attrs[name]))
        if tag == "a":
            self._link = [attrs.get("href"), ""]

    def handle_data(self, data):
        if self._link is not None:
            self._link[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1].strip()))
            self._link = None


def is_local(url):
    """A same-site path, a fragment or inline data: nothing fetched from another host."""
    return url.startswith(("/", "#", "data:")) and not url.startswith("//")


def parse(response):
    parser = _PageParser()
    parser.feed(response.content.decode())
    return parser


@pytest.fixture
def parent(db):
    return get_user_model().objects.create_user(
        username="parent.one", password=PASSWORD, first_name="Rosa", last_name="Nguyen"
    )


@pytest.fixture
def pages(client, parent, settings, tmp_path):
    """Every page of this issue, as (expected status, response), signed out then in."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path)},
        }
    }

    def responses():
        yield 200, client.get(reverse("login"))
        yield 404, client.get("/no-such-page/")
        client.force_login(parent)
        yield 200, client.get(reverse("portal:home"))
        settings.DEBUG = True
        yield 200, client.get(reverse("dev_mail_list"))

    return responses()


# --- sign-in and sign-out


def test_login_page_has_the_contract_fields_and_a_visible_help_link(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<input[^>]+name="username"', html)
    assert "autofocus" not in html  # keeps the skip link and heading first for screen readers
    assert re.search(r'<input[^>]+name="password"', html)
    assert ("/help/", "Help") in parse(response).links
    assert "no-store" in response["Cache-Control"]


def test_login_logout_round_trip(client, parent):
    client.get("/login/")
    anonymous_key = client.session.session_key or client.cookies.get("sessionid")
    response = client.post("/login/", {"username": "parent.one", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")
    assert client.session[SESSION_KEY] == str(parent.pk)
    signed_in_key = client.session.session_key
    assert signed_in_key != anonymous_key  # rotated at login: no session fixation

    home = client.get("/portal/")
    assert home.status_code == 200
    assert "Welcome, Rosa Nguyen" in home.content.decode()
    assert "no-store" in home["Cache-Control"]

    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "no-store" in response["Cache-Control"]
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=signed_in_key).exists()
    assert client.get("/portal/").status_code == 302


def test_logout_by_get_is_refused_and_keeps_the_session(client, parent):
    client.force_login(parent)
    assert client.get("/logout/").status_code == 405
    assert client.get("/portal/").status_code == 200


def test_wrong_password_shows_an_error_and_signs_nobody_in(client, parent):
    response = client.post("/login/", {"username": "parent.one", "password": "wrong password"})
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    html = response.content.decode()
    assert 'role="alert"' in html
    assert 'aria-describedby="login-errors"' in html


def test_missing_field_error_is_tied_to_its_input(client, db):
    response = client.post("/login/", {"username": "parent.one", "password": ""})
    html = response.content.decode()
    match = re.search(r'<input[^>]+name="password"[^>]*>', html)
    assert 'aria-invalid="true"' in match.group(0)
    assert 'aria-describedby="id_password_error"' in match.group(0)
    assert 'id="id_password_error"' in html


def test_safe_next_is_followed(client, parent):
    response = client.post(
        "/login/?next=/portal/?tab=1",
        {"username": "parent.one", "password": PASSWORD, "next": "/portal/?tab=1"},
    )
    assert response["Location"] == "/portal/?tab=1"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "http:evil.example"]
)
def test_next_to_another_host_is_refused(client, parent, target):
    response = client.post(
        "/login/", {"username": "parent.one", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_login_page_does_not_echo_an_unsafe_next(client, db):
    response = client.get("/login/", {"next": "https://evil.example/"})
    assert 'value="https://evil.example/"' not in response.content.decode()


def test_signed_in_visitor_is_sent_from_login_to_home(client, parent):
    client.force_login(parent)
    response = client.get("/login/")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_home_requires_login(client, db):
    response = client.get("/portal/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/portal/"


def test_home_greets_by_username_without_a_name(client, db):
    user = get_user_model().objects.create_user(username="s100234", password=PASSWORD)
    client.force_login(user)
    assert "Welcome, s100234" in client.get("/portal/").content.decode()


# --- what every page carries


def test_every_page_is_accessible_and_self_contained(pages):
    for status, response in pages:
        assert response.status_code == status
        page = parse(response)
        html = response.content.decode()
        assert page.html_lang == "en"
        assert ("#main", "Skip to main content") in page.links
        assert "main" in page.ids
        assert {"header", "nav", "main", "footer"} <= page.landmarks
        assert 'action="/i18n/setlang/"' in html
        assert re.search(r'<select[^>]+name="language"', html)
        for code, name in (("en", "English"), ("es", "Español"), ("vi", "Tiếng Việt")):
            assert re.search(rf'<option value="{code}"[^>]*>{name}</option>', html)
        assert 'for="language-select"' in html
        assert "Unified School District" in html  # district name (footer)
        assert "(408) 555-0100" in html  # SUPPORT_CONTACT
        for tag, attribute, url in page.urls:
            assert is_local(url), (tag, attribute, url)
        assert not page.inline_script and not page.inline_style and not page.handlers
        assert '<link rel="stylesheet" href="/static/css/portal.css">' in html


def test_every_page_sends_the_security_headers(pages):
    for _status, response in pages:
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("language", "sign_in", "help_text"),
    [("es", "Iniciar sesión", "Ayuda"), ("vi", "Đăng nhập", "Trợ giúp"), ("en", "Sign in", "Help")],
)
def test_language_switcher_changes_the_page_language(client, db, language, sign_in, help_text):
    response = client.post("/i18n/setlang/", {"language": language, "next": "/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    page_response = client.get("/login/")
    page = parse(page_response)
    assert page.html_lang == language
    html = page_response.content.decode()
    assert f"<h1>{sign_in}" in html or f">{sign_in}<" in html
    assert ("/help/", help_text) in page.links
    assert re.search(rf'<option value="{language}"[^>]* selected>', html)


def test_browser_language_is_followed_without_a_choice(client, db):
    response = client.get("/login/", headers={"accept-language": "vi,en;q=0.5"})
    assert parse(response).html_lang == "vi"


def test_language_switch_refuses_to_redirect_off_site(client, db):
    response = client.post("/i18n/setlang/", {"language": "es", "next": "https://evil.example/"})
    assert "evil.example" not in response.get("Location", "")


def test_stylesheet_has_no_third_party_resources():
    from pathlib import Path

    from django.contrib.staticfiles import finders

    css = Path(finders.find("css/portal.css")).read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css
    assert ":focus-visible" in css


def test_site_root_leads_to_the_portal(client, db):
    response = client.get("/", follow=True)
    assert response.redirect_chain[0] == ("/portal/", 302)
    assert response.request["PATH_INFO"] == "/login/"


# --- error pages are pages too: translated, accessible, self-contained


def test_not_found_page(client, db):
    response = client.get("/no-such-page/", headers={"accept-language": "es"})
    assert response.status_code == 404
    page = parse(response)
    assert page.html_lang == "es"
    assert ("#main", "Saltar al contenido principal") in page.links
    assert "Página no encontrada" in response.content.decode()
    assert "Content-Security-Policy" in response


def test_csrf_failure_page(db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    page = parse(response)
    assert page.html_lang == "en"
    assert "Please try again" in response.content.decode()
    assert "main" in page.ids


def test_server_error_page_renders_without_a_request_context(rf):
    from django.utils import translation
    from django.views.defaults import server_error

    with translation.override("en"):
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    page = parse(response)
    assert page.html_lang == "en"
    assert "main" in page.ids
    assert "Something went wrong" in response.content.decode()
    for _tag, _attribute, url in page.urls:
        assert is_local(url)


# --- translations: every extracted string has Spanish and Vietnamese, and the catalog is built


def _po_entries(path):
    """(msgid, [msgstr forms], flags) for each entry of a .po file (header left out)."""
    import ast

    entries, current, key = [], None, None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if current and current["msgid"]:
                entries.append(current)
            current, key = None, None
            continue
        current = current or {"msgid": "", "msgstr": {}, "flags": ""}
        if line.startswith("#,"):
            current["flags"] += line
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid_plural "):
            key = ("plural", None)
        elif line.startswith("msgid "):
            key = ("msgid", None)
            current["msgid"] = ast.literal_eval(line[6:])
        elif line.startswith("msgstr"):
            index = int(line[7]) if line.startswith("msgstr[") else 0
            key = ("msgstr", index)
            current["msgstr"][index] = ast.literal_eval(line.split(" ", 1)[1])
        elif line.startswith('"') and key:
            value = ast.literal_eval(line)
            if key[0] == "msgid":
                current["msgid"] += value
            elif key[0] == "msgstr":
                current["msgstr"][key[1]] += value
    return entries


@pytest.mark.parametrize("language", ["es", "vi"])
def test_every_string_is_translated_and_compiled(language):
    import gettext
    from pathlib import Path

    from django.conf import settings

    locale_dir = Path(settings.LOCALE_PATHS[0])
    entries = _po_entries(locale_dir / language / "LC_MESSAGES" / "django.po")
    assert len(entries) > 50
    untranslated = [
        e["msgid"] for e in entries if "fuzzy" in e["flags"] or not all(e["msgstr"].values())
    ]
    assert untranslated == []
    # The compiled catalog (.mo) must match the .po: `manage.py compilemessages` after editing.
    catalog = gettext.translation("django", localedir=locale_dir, languages=[language])
    stale = [
        e["msgid"]
        for e in entries
        if len(e["msgstr"]) == 1 and catalog.gettext(e["msgid"]) != e["msgstr"][0]
    ]
    assert stale == [], "run `manage.py compilemessages --ignore=.venv`"


# --- the language choice follows the person


def test_switching_language_while_signed_in_is_remembered(client, parent):
    client.force_login(parent)
    client.post("/i18n/setlang/", {"language": "vi", "next": "/portal/"})
    parent.refresh_from_db()
    assert parent.language == "vi"
    client.post("/i18n/setlang/", {"language": "fr", "next": "/portal/"})  # not offered
    parent.refresh_from_db()
    assert parent.language == "vi"


def test_switching_language_anonymously_stores_nothing(client, parent):
    client.post("/i18n/setlang/", {"language": "es", "next": "/login/"})
    parent.refresh_from_db()
    assert parent.language == ""


def test_sign_in_applies_the_accounts_language(client, parent):
    parent.language = "es"
    parent.save(update_fields=["language"])
    response = client.post("/login/", {"username": "parent.one", "password": PASSWORD}, follow=True)
    assert parse(response).html_lang == "es"
    assert "Le damos la bienvenida, Rosa Nguyen" in response.content.decode()


def test_sign_in_without_a_language_keeps_the_browsers(client, parent):
    response = client.post(
        "/login/",
        {"username": "parent.one", "password": PASSWORD},
        headers={"accept-language": "vi"},
    )
    assert "django_language" not in response.cookies
    home = client.get("/portal/", headers={"accept-language": "vi"})
    assert parse(home).html_lang == "vi"
