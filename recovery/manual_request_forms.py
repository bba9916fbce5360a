"""The manual request form (SPEC §2.6, §3): exactly the paper form's fields, checked strictly.

Positive allow-lists and length limits (checklist O1): names are letters, marks, spaces,
hyphens, apostrophes and dots, at most 100 characters; the student ID is 1-32 of
[A-Za-z0-9-]; email addresses are one plain ASCII address each (the answer address is mailed);
comments are at most 2000 characters with no control characters but line breaks. A field sent
twice (`student_id=1&student_id=2`) is an error, never "the last one wins".

A comment that looks as if it carries a password is refused by its shape alone, never by
comparing it with anyone's real password: the keyword of several languages followed by a value
("password: x", "pw=x", "contraseña: x", "mật khẩu: x", "my password is Abc123"), or a word
shaped like the district's default student password (two letters and six digits). The
`website` field is a honeypot: people never see it, bots fill it in.
"""

import re
import unicodedata

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from recovery.flows.username_reminder import plain_single_address
from recovery.models import ManualRequest

NAME_MAX = 100
STUDENT_ID_MAX = 32
EMAIL_MAX = 254
COMMENTS_MAX = 2000
HONEYPOT_FIELD = "website"
PASSWORD_IN_COMMENTS = "looks_like_password"  # noqa: S105 (an error code)

_NAME_PUNCTUATION = set(" -'.\u2019\u2010\u2011")
# Bidirectional overrides would let a name display differently from what it holds.
_BIDI_CONTROLS = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_COMMENT_CONTROLS_ALLOWED = set("\n\r\t")

# --- What a password looks like in free text (by shape, in English, Spanish and Vietnamese) --
_KEYWORD = (
    r"(?:pass\s?words?|passwd|pass\s?codes?|pass\s?phrase|pswd|pwd|pw|"
    r"contrasenas?|claves?|mat\s?khau|mk|senha|mot\s+de\s+passe|kennwort|"
    r"default\s+password|temp(?:orary)?\s+password)"
)
# Another word may sit between the keyword and the value: "password for Ana: ...".
_ASSIGNMENT = re.compile(
    rf"(?<![a-z0-9]){_KEYWORD}(?:\s+\w+){{0,2}}?\s*(?:[:=]|->|=>|\bis\b|\bes\b|\bera\b|\bla\b)"
    rf"\s*(?P<value>\S+)"
)
# After ":" or "=" anything is a value; after a word ("is", "es", "là") only what looks like
# a password does: a digit or a symbol, or something in quotes ("my password is not working"
# stays allowed).
_PASSWORD_LIKE = re.compile(r"""^(?:["'\u201c\u2018«].+|\S*[0-9!@#$%^&*_+=~|\\/<>?]\S*)$""")
_ABBREVIATION_VALUE = re.compile(
    r"(?<![a-z0-9])(?:pw|pwd|pswd|passwd|mk)\s+(?P<value>\S*[0-9!@#$%^&*_+=~|\\/<>?]\S*)"
)
# The district default (SPEC §2.5): two initials and a birthday, e.g. AG030912.
_DEFAULT_PASSWORD_SHAPE = re.compile(r"(?<![a-z0-9])[a-z]{2}[0-9]{6}(?![a-z0-9])")


def _fold(text):
    """Lower case without accents, for the shape checks ("Contraseña" → "contrasena")."""
    text = unicodedata.normalize("NFKC", text).replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


def looks_like_password(text):
    """Does `text` look as if it carries a password? (By its shape only.)"""
    folded = _fold(text)
    for match in _ASSIGNMENT.finditer(folded):
        value = match.group("value").strip(".,;!)")
        separator = match.group(0)[: match.start("value") - match.start()].rstrip()
        if value and (separator.endswith((":", "=", ">")) or _PASSWORD_LIKE.match(value)):
            return True
    return bool(_ABBREVIATION_VALUE.search(folded) or _DEFAULT_PASSWORD_SHAPE.search(folded))


def _has_controls(value, *, allowed=frozenset()):
    return any(
        (unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed) or ch in _BIDI_CONTROLS
        for ch in value
    )


def validate_name(value):
    if _has_controls(value):
        raise forms.ValidationError(_("Remove the special characters from this name."), "control")
    if not all(
        unicodedata.category(ch)[0] in "LM" or ch in _NAME_PUNCTUATION for ch in value
    ) or not any(unicodedata.category(ch)[0] == "L" for ch in value):
        raise forms.ValidationError(
            _("Use only letters, spaces, hyphens and apostrophes in a name."), "invalid"
        )


class NameField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", NAME_MAX)
        kwargs.setdefault("validators", [validate_name])
        super().__init__(**kwargs)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.update(autocomplete="off", spellcheck="false")
        return attrs


class AddressField(forms.CharField):
    """One plain email address (the same gate as every address this project may mail)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", EMAIL_MAX)
        kwargs.setdefault("widget", forms.EmailInput(attrs={"autocomplete": "email"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value and not plain_single_address(value):
            raise forms.ValidationError(
                _("Enter one email address, for example name@example.org."), "invalid"
            )
        return value


class ManualRequestForm(forms.Form):
    student_first_name = NameField(label=_("Student's first name"))
    student_last_name = NameField(label=_("Student's last name"))
    student_id = forms.CharField(
        label=_("Student ID number"),
        max_length=STUDENT_ID_MAX,
        help_text=_("As printed on school papers: letters, digits and hyphens only."),
        validators=[
            RegexValidator(
                r"\A[A-Za-z0-9-]{1,32}\Z",
                message=_("Use only letters, digits and hyphens, as on school papers."),
                code="invalid",
            )
        ],
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    student_email = AddressField(
        label=_("Student's email address (optional)"),
        required=False,
        help_text=_(
            "Used for the confirmation only when the request is for a student and no parent "
            "email is given."
        ),
    )
    request_type = forms.ChoiceField(
        label=_("What do you need?"),
        choices=[
            (ManualRequest.RequestType.RESET, _("Portal reset (password or username)")),
            (ManualRequest.RequestType.NEW_ACCOUNT, _("New account")),
        ],
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("Choose one of the options.")},
    )
    request_for = forms.ChoiceField(
        label=_("Who is the account for?"),
        choices=[
            (ManualRequest.RequestFor.PARENT, _("A parent or guardian")),
            (ManualRequest.RequestFor.STUDENT, _("A student")),
        ],
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("Choose one of the options.")},
    )
    parent_first_name = NameField(label=_("Parent's first name (optional)"), required=False)
    parent_last_name = NameField(label=_("Parent's last name (optional)"), required=False)
    parent_email = AddressField(
        label=_("Parent's email address"),
        required=False,
        help_text=_(
            "We send a confirmation with a reference number here. Required, unless the request "
            "is for a student and you give the student's email address."
        ),
    )
    comments = forms.CharField(
        label=_("Comments (optional)"),
        required=False,
        max_length=COMMENTS_MAX,
        strip=True,
        help_text=_("What happened? Never write a password here."),
        widget=forms.Textarea(attrs={"rows": 5, "maxlength": COMMENTS_MAX}),
    )
    # The honeypot: hidden from people and screen readers by the template (see form.html).
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    error_messages = {
        "answer_parent": _("Type the parent's email address: the confirmation goes there."),
        "answer_any": _(
            "Type an email address for the confirmation: the parent's, or the student's."
        ),
        "many": _("Fill in this field once."),
    }
    person_fields = ("student_first_name", "student_last_name", "student_id")
    required_messages = {
        "student_first_name": _("Type the student's first name."),
        "student_last_name": _("Type the student's last name."),
        "student_id": _("Type the student ID number."),
        "request_type": _("Choose what you need."),
        "request_for": _("Choose who the account is for."),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, message in self.required_messages.items():
            self.fields[name].error_messages["required"] = message

    @property
    def is_honeypot_hit(self):
        """A bot filled in the field people cannot see."""
        if not self.is_bound:
            return False
        values = self.data.getlist(HONEYPOT_FIELD) if hasattr(self.data, "getlist") else []
        return any(str(value).strip() for value in values)

    def full_clean(self):
        super().full_clean()
        if not self.is_bound or not hasattr(self.data, "getlist"):
            return
        for name in self.fields:
            if len(self.data.getlist(name)) > 1:
                # student_id=1&student_id=2: which was meant? Neither (parameter pollution).
                self._errors.pop(name, None)
                self.add_error(name, forms.ValidationError(self.error_messages["many"], "many"))

    def clean_comments(self):
        comments = self.cleaned_data["comments"]
        if _has_controls(comments, allowed=_COMMENT_CONTROLS_ALLOWED):
            raise forms.ValidationError(
                _("Remove the special characters from the comments."), "control"
            )
        if looks_like_password(comments):
            raise forms.ValidationError(
                _(
                    "This looks as if it contains a password. Never send a password in this "
                    "form: delete it and describe the problem instead."
                ),
                PASSWORD_IN_COMMENTS,
            )
        return comments.replace("\r\n", "\n")

    def clean(self):
        data = super().clean()
        if self.has_error("parent_email") or self.has_error("student_email"):
            return data
        parent_email = data.get("parent_email", "")
        student_email = data.get("student_email", "")
        request_for = data.get("request_for")
        if parent_email:
            data["answer_address"] = parent_email
        elif request_for == ManualRequest.RequestFor.STUDENT and student_email:
            data["answer_address"] = student_email
        elif request_for == ManualRequest.RequestFor.STUDENT:
            self.add_error(
                "parent_email", forms.ValidationError(self.error_messages["answer_any"], "answer")
            )
        else:
            self.add_error(
                "parent_email",
                forms.ValidationError(self.error_messages["answer_parent"], "answer"),
            )
        return data

    @property
    def refused_a_password(self):
        return self.has_error("comments", PASSWORD_IN_COMMENTS)
