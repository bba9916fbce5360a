"""The staff sign-in forms: the password step (through authenticate(), so the login throttle
applies) and the code step."""

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import LoginForm
from recovery.staff_access import is_staff_user

_REFUSAL = _("The username or password is not right.")


class StaffLoginForm(LoginForm):
    """The portal's throttled sign-in form, for staff accounts only.

    A family account with the right password is refused with the very message a wrong password
    gets: the staff sign-in does not say which accounts are staff.
    """

    error_messages = {"invalid_login": _REFUSAL, "inactive": _REFUSAL}

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not is_staff_user(user):
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login")


class StaffCodeForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code from your authenticator app, or a backup code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )
