"""Turn an outbox row into a multipart message: subject, text and HTML from templates.

Each kind has three templates, `recovery/email/<kind>_subject.txt`, `<kind>_message.txt` and
`<kind>_message.html`, extending `base_message.txt` / `base_message.html`. They are rendered in
the row's language. Besides the row's context they see `link` (action emails only, minted by
the caller at send time), `link_expires_minutes|hours|days`, `support_contact`,
`district_name` and `subject`. Context values under keys ending in `_at` are ISO date-times
(JSON has no dates) and reach the templates as aware datetimes.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.charset import BASE64, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, parseaddr

from django.conf import settings
from django.core.mail import DNS_NAME, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.dateparse import parse_datetime

from recovery.links import link_max_age_seconds

TEMPLATE_DIR = "recovery/email"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def template_names(kind):
    return {
        part: f"{TEMPLATE_DIR}/{kind}_{part}"
        for part in ("subject.txt", "message.txt", "message.html")
    }


def render_outbound_email(email, *, link=None):
    """Render `email` (an OutboundEmail) in its language; `link` is the action link, if any."""
    names = template_names(email.kind)
    context = _template_context(email, link=link)
    with translation.override(email.language or settings.LANGUAGE_CODE):
        # One line, whatever the template's whitespace: a newline in a header is an injection.
        subject = " ".join(render_to_string(names["subject.txt"], context).split())
        context["subject"] = subject
        text = render_to_string(names["message.txt"], context).strip() + "\n"
        html = render_to_string(names["message.html"], context)
    return RenderedEmail(subject=subject, text=text, html=html)


def build_message(email, rendered):
    """The EmailMultiAlternatives for `email`, sent with Django's default mailer."""
    message = OutboxMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to_address],
        headers={
            "Message-ID": message_id_for(email),
            # Tell auto-responders and mail loops this is machine mail (RFC 3834).
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


class OutboxMessage(EmailMultiAlternatives):
    """An outbox email: Django's EmailMultiAlternatives with a cheaper MIME builder.

    Django builds a message with the email package's modern API (`email.policy`, header
    objects parsed and re-folded), about 5 ms per email: more than everything else a worker does
    for it. An outbox email is always the same shape, plain text and one HTML alternative from
    one sender to one ASCII recipient, so `message()` builds that with the stdlib's compat32
    classes in a tenth of the time, with the same headers and encodings (UTF-8 in base64 when
    not ASCII, RFC 2047 subject). Anything else (attachments, Cc, Reply-To, a non-ASCII
    address) goes through Django's own builder. Mailers send what `message()` returns, and
    Django's SMTP mailer still checks and encodes the envelope addresses itself.
    """

    def message(self, *, policy=None):
        if not self._plain_shape():
            return super().message() if policy is None else super().message(policy=policy)
        # A random boundary of our own: the generator's would cost a regex compiled per message
        # (to make sure it is not in the body, which 128 random bits never are).
        boundary = f"=_{secrets.token_hex(16)}"
        msg = MIMEMultipart("alternative", boundary=boundary, policy=_policy_like(policy))
        msg["Subject"] = self.subject if self.subject.isascii() else Header(self.subject, "utf-8")
        msg["From"] = self.from_email
        msg["To"] = self.to[0]
        tz = timezone.get_current_timezone() if settings.EMAIL_USE_LOCALTIME else timezone.UTC
        msg["Date"] = format_datetime(datetime.now(tz))
        for name, value in self.extra_headers.items():
            msg[name] = value
        msg.attach(_text_part(self.body, "plain", msg.policy))
        msg.attach(_text_part(self.alternatives[0].content, "html", msg.policy))
        return msg

    def _plain_shape(self):
        headers = {name.lower() for name in self.extra_headers}
        values = [self.subject, self.body, *self.extra_headers.values()]
        return (
            len(self.to) == 1
            and not (self.cc or self.bcc or self.reply_to or self.attachments)
            and len(self.alternatives) == 1
            and self.alternatives[0].mimetype == "text/html"
            and self.content_subtype == "plain"
            and str(self.from_email).isascii()
            and str(self.to[0]).isascii()
            and not headers & {"from", "to", "cc", "reply-to", "date", "subject"}
            and all(isinstance(value, str) for value in values)
            # A line break in a header is an injection; Django's builder refuses it loudly.
            and not any(
                "\n" in v or "\r" in v for v in [self.subject, *self.extra_headers.values()]
            )
        )


_UTF8_BASE64 = Charset("utf-8")
_UTF8_BASE64.body_encoding = BASE64  # as Django's builder encodes non-ASCII text
# SMTP's limit is 998 octets a line: a longer ASCII line goes in base64 too.
_MAX_7BIT_LINE = 998


class _Compat32(Compat32):
    """compat32, minus the Header round trip for a header that is already one short ASCII line
    (most of them: folding and encoding would leave it as it is, at ~40 us a header)."""

    def _fold(self, name, value, sanitize):
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + len(value) + 2 <= (self.max_line_length or 78)
            and "\n" not in value
            and "\r" not in value
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


_COMPAT32 = _Compat32()


def _policy_like(policy):
    # compat32 with the line ending the caller asked for (CRLF for SMTP).
    return _COMPAT32.clone(linesep=policy.linesep) if policy is not None else _COMPAT32


def _text_part(content, subtype, policy):
    if content.isascii() and max(map(len, content.splitlines() or [""])) <= _MAX_7BIT_LINE:
        part = MIMENonMultipart("text", subtype, policy=policy, charset="us-ascii")
        part["Content-Transfer-Encoding"] = "7bit"
        part.set_payload(content)
    else:
        part = MIMENonMultipart("text", subtype, policy=policy)
        part.set_payload(content, _UTF8_BASE64)
    del part["MIME-Version"]  # the message's own header covers its parts
    return part


def message_id_for(email):
    """A Message-ID fixed per outbox row: a rare duplicate send carries the same one.

    Keyed with SECRET_KEY so it neither reveals how many emails the district sends nor can be
    predicted; mail clients and some relays drop a second copy with an ID they have seen.
    """
    digest = salted_hmac(
        "recovery.rendering.message_id",
        f"{email.pk}:{email.created_at.isoformat()}",
        algorithm="sha256",
    ).hexdigest()[:32]
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or str(DNS_NAME)
    return f"<{digest}@{domain}>"


def _template_context(email, *, link):
    context = {
        key: (_as_datetime(value) if key.endswith("_at") else value)
        for key, value in (email.context or {}).items()
    }
    context.update(
        support_contact=settings.SUPPORT_CONTACT,
        district_name=settings.DISTRICT_NAME,
    )
    if link:
        max_age = link_max_age_seconds(purpose=email.token_purpose)
        context.update(
            link=link,
            link_expires_minutes=max(1, max_age // 60),
            link_expires_hours=max(1, max_age // 3600),
            link_expires_days=max(1, max_age // 86400),
        )
    return context


def _as_datetime(value):
    return (parse_datetime(value) if isinstance(value, str) else None) or value
