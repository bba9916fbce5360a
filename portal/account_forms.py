"""Forms of the signed-in portal pages: contact-change requests, Self Serve set-up, language.

The change-password form is Django's own PasswordChangeForm (old_password, new_password1,
new_password2), with the re-authentication throttle of ReauthThrottle added.
"""

import re
import unicodedata

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordChangeForm
from django.core.validators import EmailValidator
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from portal.normalisation import normalise_email
from portal.passwords import check_user_password, normalise_password
from recovery import ratelimit
from recovery.forms import PasswordRulesMixin

# A stolen session must not become a password oracle: wrong current passwords on the account
# page are counted per account, and past the limit no password is checked for a while.
REAUTH_FAILURE_ACTION = "portal.account.reauth_failure"
REAUTH_FAILURE_RATE = "10/h"

PHONE_MAX_LENGTH = 32
EMAIL_MAX_LENGTH = 254
DETAILS_MAX_LENGTH = 1000
# Digits with the usual separators and an optional extension: "+1 (408) 555-0100 ext. 12".
_PHONE_SHAPE = re.compile(r"^\+?[0-9 ().\-/]+((ext\.?|x|#)\s*[0-9]{1,6})?$", re.IGNORECASE)
# Bidirectional overrides and isolates reorder what staff would read (a spoofing trick).
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_characters(value, *, allow_line_breaks=False):
    allowed = {"\n", "\r", "\t"} if allow_line_breaks else set()
    return any(
        (unicodedata.category(char) == "Cc" and char not in allowed) or char in _BIDI_CONTROLS
        for char in value
    )


def _refuse_control_characters(value, *, allow_line_breaks=False):
    if has_control_characters(value, allow_line_breaks=allow_line_breaks):
        raise forms.ValidationError(
            _("Remove the invisible control characters from this field."), code="control"
        )


class ReauthThrottle:
    """Counts wrong current passwords per account; refuses to check more past the limit."""

    def reauth_allowed(self, user):
        decision = ratelimit.peek(
            action=REAUTH_FAILURE_ACTION, key=str(user.pk), rate=REAUTH_FAILURE_RATE
        )
        if not decision.allowed:
            raise forms.ValidationError(
                _("Too many wrong passwords. %(retry)s")
                % {"retry": ratelimit.retry_after_message(decision.retry_after)},
                code="throttled",
            )

    def reauth_failed(self, user):
        ratelimit.hit(
            action=REAUTH_FAILURE_ACTION,
            key=str(user.pk),
            rate=REAUTH_FAILURE_RATE,
            fail_open=True,
        )


class AccountPasswordChangeForm(ReauthThrottle, PasswordRulesMixin, PasswordChangeForm):
    """Django's PasswordChangeForm (old_password, new_password1, new_password2).

    Saving goes through portal.services.user_set_password, not save(). Passwords are checked
    and validated in their NFKC form (portal.passwords), the form they are hashed in. The rules
    are shown above the form (includes/password_rules.html), so the fields point at them
    instead of repeating Django's help texts.
    """

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        # No autofocus: screen-reader users start at the skip link and the heading.
        self.fields["old_password"].widget.attrs.pop("autofocus", None)
        for name in ("new_password1", "new_password2"):
            self.fields[name].help_text = ""
        self._describe_fields()

    @sensitive_variables("old_password")
    def clean_old_password(self):
        self.reauth_allowed(self.user)
        old_password = self.cleaned_data["old_password"]
        if not check_user_password(self.user, old_password):
            self.reauth_failed(self.user)
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password

    def clean_new_password1(self):
        return normalise_password(self.cleaned_data["new_password1"])

    def clean_new_password2(self):
        return normalise_password(self.cleaned_data["new_password2"])


class RecoveryEmailForm(ReauthThrottle, forms.Form):
    """Self Serve set-up: the new recovery address, confirmed with the current password."""

    recovery_email = forms.EmailField(
        label=_("New recovery email address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    current_password = forms.CharField(
        label=_("Your current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_recovery_email(self):
        value = self.cleaned_data["recovery_email"].strip()
        _refuse_control_characters(value)
        if self.user.has_self_serve and normalise_email(value) == normalise_email(
            self.user.recovery_email
        ):
            raise forms.ValidationError(
                _("This is already your recovery email address."), code="unchanged"
            )
        return value

    def clean_current_password(self):
        password = self.cleaned_data["current_password"]
        self.reauth_allowed(self.user)
        if not check_user_password(self.user, password):
            self.reauth_failed(self.user)
            raise forms.ValidationError(
                _("Your current password was entered incorrectly. Please enter it again."),
                code="password_incorrect",
            )
        return password


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language for pages and emails"), choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each language named in itself, as the switcher in the page header does.
        self.fields["language"].choices = [
            (code, get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES
        ]


class ContactChangeForm(forms.Form):
    """What a parent asks the school to change; at least one field. Staff check each one."""

    phone = forms.CharField(
        label=_("New phone number"),
        required=False,
        max_length=PHONE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
        help_text=_("Digits, with spaces, dashes or brackets if you like."),
    )
    email = forms.CharField(
        label=_("New email address"),
        required=False,
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    details = forms.CharField(
        label=_("Other changes (address, name, anything else)"),
        required=False,
        max_length=DETAILS_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Never write a password here."),
    )

    def clean_phone(self):
        value = self.cleaned_data["phone"].strip()
        if not value:
            return ""
        _refuse_control_characters(value)
        digits = sum(char.isdigit() for char in value)
        if not _PHONE_SHAPE.match(value) or not 7 <= digits <= 20:
            raise forms.ValidationError(
                _("Enter a phone number, for example 408-555-0100."), code="phone"
            )
        return value

    def clean_email(self):
        value = self.cleaned_data["email"].strip()
        if not value:
            return ""
        _refuse_control_characters(value)
        EmailValidator(message=_("Enter an email address, for example name@example.org."))(value)
        return value

    def clean_details(self):
        value = self.cleaned_data["details"].strip()
        _refuse_control_characters(value, allow_line_breaks=True)
        return value

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not any(cleaned.get(name) for name in ("phone", "email", "details")):
            raise forms.ValidationError(
                _("Fill in at least one change you would like the school to make."),
                code="empty",
            )
        return cleaned

    def changes(self):
        """(ContactChangeRequest.Field value, new value) pairs, in form order."""
        names = (("phone", "phone"), ("email", "email"), ("other", "details"))
        values = [(field, self.cleaned_data[name]) for field, name in names]
        return [(field, value) for field, value in values if value]
