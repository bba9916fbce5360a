"""Turn an outbox row into a multipart message: subject, text and HTML from templates.

Each kind has three templates, `recovery/email/<kind>_subject.txt`, `<kind>_message.txt` and
`<kind>_message.html`, extending `base_message.txt` / `base_message.html`. They are rendered in
the row's language. Besides the row's context they see `link` (action emails only, minted by
the caller at send time), `link_expires_minutes|hours|days`, `support_contact`,
`district_name` and `subject`. Context values under keys ending in `_at` are ISO date-times
(JSON has no dates) and reach the templates as aware datetimes.
"""

from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import DNS_NAME, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
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
    message = EmailMultiAlternatives(
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
