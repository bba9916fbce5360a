"""Portal forms. Later issues hook login throttling into LoginForm (SPEC §6.2)."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _


class LoginForm(AuthenticationForm):
    """The portal sign-in form: Django's, with autocomplete hints for password managers.

    The seam for the login throttle: override clean() here, so every sign-in passes through it.
    """

    username = forms.CharField(
        label=_("Username"),
        max_length=254,
        # No autofocus (unlike Django's form): it would skip the page's heading and the skip link
        # for screen-reader users.
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
