"""/dev/mail/: read the emails the demo "sent" (Django's file backend) in the browser.

DEBUG only. Each file the backend writes holds one or more messages, each followed by a line
of 79 dashes. Nothing in an email is trusted: the text part is escaped (links made clickable
by urlize); the HTML part is served on its own URL under a CSP sandbox that loads nothing and
runs no script, framed by the message page in an iframe that is sandboxed as well.
"""

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override

# What django.core.mail.backends.filebased writes after every message.
_SEPARATOR = re.compile(rb"\r?\n-{79}\r?\n")
_FILE_NAME = re.compile(r"^[\w.-]+$")
MAX_LISTED = 500
# The email's HTML as a mail client would style it (inline styles), but inert: sandboxed (no
# script, an opaque origin), nothing fetched from anywhere, framed only by /dev/mail/ itself.
EMAIL_HTML_CSP = {
    "default-src": [CSP.NONE],
    "style-src": [CSP.UNSAFE_INLINE],
    "img-src": ["data:"],
    "sandbox": True,
    "base-uri": [CSP.NONE],
    "form-action": [CSP.NONE],
    "frame-ancestors": [CSP.SELF],
}


@dataclass(frozen=True)
class MailItem:
    file_name: str
    index: int
    message: email.message.EmailMessage | None
    mtime: float

    @property
    def subject(self):
        return _header(self.message, "Subject")

    @property
    def to(self):
        return _header(self.message, "To")

    @property
    def sender(self):
        return _header(self.message, "From")

    @property
    def date(self):
        if self.message is not None:
            try:
                parsed = self.message["Date"].datetime
            except Exception:
                parsed = None
            if parsed is not None:
                return parsed if parsed.tzinfo else timezone.make_aware(parsed)
        return datetime.fromtimestamp(self.mtime, tz=timezone.get_current_timezone())

    def text_part(self):
        return _part(self.message, "plain")

    def html_part(self):
        return _part(self.message, "html")


def _header(message, name):
    if message is None:
        return ""
    try:
        return str(message.get(name, "") or "")
    except Exception:
        return ""


def _part(message, subtype):
    if message is None:
        return None
    try:
        part = message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None
    except Exception:
        return None


def mail_dir():
    return Path(settings.MAILERS["default"]["OPTIONS"]["file_path"])


def _parse(raw):
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        return None
    # A chunk without the headers every sent email has is garbage, not an email.
    try:
        is_email = any(name in message for name in ("From", "To", "Subject", "Date"))
    except Exception:
        is_email = False
    return message if is_email else None


def _items_in(path):
    try:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
    except OSError:
        return []
    chunks = [chunk for chunk in _SEPARATOR.split(raw) if chunk.strip()]
    return [
        MailItem(file_name=path.name, index=index, message=_parse(chunk), mtime=mtime)
        for index, chunk in enumerate(chunks)
    ]


def _mail_files(folder):
    files = []
    for path in folder.iterdir():
        try:
            if path.is_file() and _FILE_NAME.match(path.name):
                files.append((path.stat().st_mtime, path))
        except OSError:
            continue
    return [path for _mtime, path in sorted(files, reverse=True)]


def list_mail(*, limit=MAX_LISTED):
    """The newest `limit` readable messages in the mail folder, newest first.

    Files are read newest first (by modification time) and reading stops once `limit` messages
    are in hand, so a demo night of bulk welcome emails keeps the page quick.
    """
    folder = mail_dir()
    if not folder.is_dir():
        return []
    items = []
    for path in _mail_files(folder):
        items.extend(item for item in _items_in(path) if item.message is not None)
        if len(items) >= limit:
            break
    items.sort(key=lambda item: (item.date, item.file_name, item.index), reverse=True)
    return items[:limit]


def get_mail(*, file_name, index):
    if not _FILE_NAME.match(file_name):
        raise Http404
    path = mail_dir() / file_name
    if path.parent != mail_dir() or not path.is_file():
        raise Http404
    items = _items_in(path)
    if index >= len(items) or items[index].message is None:
        raise Http404
    return items[index]


def _require_debug():
    if not settings.DEBUG:
        raise Http404


@never_cache
def message_list(request):
    _require_debug()
    return render(request, "dev_mail/message_list.html", {"items": list_mail()})


@never_cache
def message_detail(request, file_name, index):
    _require_debug()
    item = get_mail(file_name=file_name, index=index)
    return render(
        request,
        "dev_mail/message_detail.html",
        {"item": item, "text": item.text_part(), "html": item.html_part()},
    )


@never_cache
@xframe_options_sameorigin
@csp_override(EMAIL_HTML_CSP)
def message_html(request, file_name, index):
    _require_debug()
    html = get_mail(file_name=file_name, index=index).html_part()
    if html is None:
        raise Http404
    return HttpResponse(html, content_type="text/html; charset=utf-8")
