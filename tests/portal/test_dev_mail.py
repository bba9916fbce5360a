"""/dev/mail/ reads what Django's file backend wrote, and never lets an email run script."""

import re
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from django.core.mail import EmailMultiAlternatives, mailers

EVIL_SUBJECT = "<script>alert('subject')</script> Reset your password"
TEXT = (
    "Hello,\n\nSet a new password here:\n"
    "https://portal.example.org/help/reset/Ab3-xyz/\n\n"
    "<script>alert('text')</script>\n"
)
HTML = (
    "<p>Hello</p><script>alert('html')</script>"
    '<p><a href="https://portal.example.org/help/reset/Ab3-xyz/">Reset</a></p>'
)


@pytest.fixture
def mail_dir(settings, tmp_path):
    settings.DEBUG = True
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path)},
        }
    }
    return tmp_path


def message(subject=EVIL_SUBJECT, to="rosa@example.org", when=None):
    msg = EmailMultiAlternatives(
        subject=subject,
        body=TEXT,
        from_email="Portal Help <help@portal.example.org>",
        to=[to],
        headers={"Date": format_datetime(when)} if when else None,
    )
    msg.attach_alternative(HTML, "text/html")
    return msg


def detail_links(html):
    return re.findall(r'href="(/dev/mail/[^"]+/\d+/)"', html)


def test_lists_and_shows_a_message_written_by_the_file_backend(client, mail_dir):
    assert message().send() == 1
    assert len(list(mail_dir.iterdir())) == 1

    listing = client.get("/dev/mail/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "rosa@example.org" in html
    assert "&lt;script&gt;alert(&#x27;subject&#x27;)&lt;/script&gt; Reset your password" in html
    assert "<script" not in html
    [link] = detail_links(html)

    page = client.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script" not in html
    assert "Portal Help &lt;help@portal.example.org&gt;" in html  # From
    assert "rosa@example.org" in html  # To
    # The text part's link is clickable; its script is shown as text.
    assert '<a href="https://portal.example.org/help/reset/Ab3-xyz/"' in html
    assert "&lt;script&gt;alert(&#x27;text&#x27;)&lt;/script&gt;" in html
    # The HTML source is shown escaped; the rendering is framed from its own URL.
    assert "&lt;p&gt;Hello&lt;/p&gt;&lt;script&gt;alert(&#x27;html&#x27;)" in html
    iframe = re.search(r"<iframe[^>]*>", html).group(0)
    assert 'sandbox=""' in iframe  # no permissions: no allow-scripts, no allow-same-origin
    src = re.search(r'src="([^"]+)"', iframe).group(1)
    assert src == link + "html/"
    assert "no-store" in page["Cache-Control"]

    # The framed HTML is the email's own, under a CSP that sandboxes it and loads nothing.
    framed = client.get(src)
    assert framed.status_code == 200
    assert framed.content.decode().rstrip("\n") == HTML
    csp = [part.strip() for part in framed["Content-Security-Policy"].split(";")]
    assert "sandbox" in csp
    assert "default-src 'none'" in csp
    assert not any(part.startswith("script-src") for part in csp)
    assert "frame-ancestors 'self'" in csp
    assert framed["X-Frame-Options"] == "SAMEORIGIN"
    assert framed["X-Content-Type-Options"] == "nosniff"


def test_lists_newest_first_and_every_message_of_a_file(client, mail_dir):
    older = message(subject="Older", when=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    newer = message(subject="Newer", when=datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    newest = message(subject="Newest", when=datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    # One connection writes several messages into one file.
    assert mailers.default.send_messages([older, newest]) == 2
    assert newer.send() == 1

    html = client.get("/dev/mail/").content.decode()
    positions = [html.index(f">{subject}<") for subject in ("Newest", "Newer", "Older")]
    assert positions == sorted(positions)
    links = detail_links(html)
    assert len(links) == 3
    subjects = [
        re.search(r"<h1>(.*?)</h1>", client.get(link).content.decode()).group(1) for link in links
    ]
    assert subjects == ["Newest", "Newer", "Older"]


def test_garbage_files_are_skipped(client, mail_dir):
    (mail_dir / "garbage.log").write_bytes(b"\x00\xff\xfe not an email at all \x80\n")
    (mail_dir / "empty.log").write_bytes(b"")
    (mail_dir / "half.log").write_bytes(b"Subject: =?utf-8?b?!!!?=\nDate: yesterday\n\n\xff")
    message(subject="Real one").send()

    listing = client.get("/dev/mail/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert ">Real one<" in html
    for link in detail_links(html):
        assert client.get(link).status_code == 200
    assert client.get("/dev/mail/garbage.log/0/").status_code == 404
    assert client.get("/dev/mail/empty.log/0/").status_code == 404


def test_unknown_or_escaping_paths_are_404(client, mail_dir, tmp_path):
    message().send()
    [name] = [path.name for path in mail_dir.iterdir()]
    assert client.get(f"/dev/mail/{name}/1/").status_code == 404
    assert client.get("/dev/mail/nothing.log/0/").status_code == 404
    assert client.get("/dev/mail/../0/").status_code == 404
    assert client.get("/dev/mail/..%2F..%2Fetc%2Fpasswd/0/").status_code == 404


def test_a_text_only_email_has_no_html_page(client, mail_dir):
    EmailMultiAlternatives(subject="Plain", body="Just text.", to=["a@example.org"]).send()
    [name] = [path.name for path in mail_dir.iterdir()]
    page = client.get(f"/dev/mail/{name}/0/").content.decode()
    assert "Just text." in page
    assert "This email has no HTML part." in page
    assert "<iframe" not in page
    assert client.get(f"/dev/mail/{name}/0/html/").status_code == 404


def test_empty_folder_lists_nothing(client, mail_dir):
    response = client.get("/dev/mail/")
    assert response.status_code == 200
    assert "No emails yet." in response.content.decode()


def test_not_found_without_debug(client, mail_dir, settings):
    message().send()
    [name] = [path.name for path in mail_dir.iterdir()]
    assert client.get(f"/dev/mail/{name}/0/").status_code == 200
    assert client.get(f"/dev/mail/{name}/0/html/").status_code == 200
    settings.DEBUG = False
    assert client.get("/dev/mail/").status_code == 404
    assert client.get(f"/dev/mail/{name}/0/").status_code == 404
    assert client.get(f"/dev/mail/{name}/0/html/").status_code == 404


def test_long_folders_list_only_the_newest(mail_dir):
    import os

    from portal.views import dev_mail

    for day in range(1, 8):
        message(subject=f"Day {day}", when=datetime(2026, 1, day, 9, 0, tzinfo=UTC)).send()
    # File times follow the Date headers, as when really sent. The backend names files by the
    # second and its object's id, so two sends may share a file: its time is the last append's.
    for path in mail_dir.iterdir():
        day = max(int(part.split("\n")[0]) for part in path.read_text().split("Subject: Day ")[1:])
        os.utime(path, (day * 86400, day * 86400))
    assert [item.subject for item in dev_mail.list_mail(limit=3)] == ["Day 7", "Day 6", "Day 5"]
