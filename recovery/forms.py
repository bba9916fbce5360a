"""Forms shared by the recovery journeys."""

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.utils.translation import gettext_lazy as _

from portal.password_validation import password_rules
from portal.passwords import normalise_password

# The id of the rules list (templates/includes/password_rules.html) the fields point at.
RULES_ELEMENT_ID = "password-rules"


class PasswordRulesMixin:
    """For forms with new_password1/2 and a `user`: the rules to show, and fields pointing at them.

    Setting aria-describedby turns Django's automatic one off, so each field also names its
    error list (id "<field id>_error") when it has one.
    """

    @property
    def password_rules(self):
        return password_rules(user=self.user)

    def full_clean(self):
        super().full_clean()
        self._describe_fields()

    def _describe_fields(self):
        errors = self.errors if self.is_bound and hasattr(self, "cleaned_data") else {}
        for name in ("new_password1", "new_password2"):
            ids = [RULES_ELEMENT_ID]
            if name in errors:
                ids.append(f"{self[name].auto_id}_error")
            self.fields[name].widget.attrs["aria-describedby"] = " ".join(ids)


class SetPasswordForm(PasswordRulesMixin, forms.Form):
    """A new password, typed twice and checked by AUTH_PASSWORD_VALIDATORS for `user`.

    Used by activation, reset and the first-login change. The rules are shown before the person
    types (`password_rules`, rendered by includes/password_rules.html) and both fields point at
    them with aria-describedby, and at their error when there is one. `new_password` is the
    accepted password in the NFKC form that is hashed; pass it to user_set_password.
    """

    error_messages = {"password_mismatch": _("The two passwords do not match. Type them again.")}

    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label=_("Type the new password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        self._describe_fields()

    @property
    def new_password(self):
        return self.cleaned_data["new_password1"]

    def clean_new_password1(self):
        return normalise_password(self.cleaned_data["new_password1"])

    def clean_new_password2(self):
        password2 = normalise_password(self.cleaned_data["new_password2"])
        password1 = self.cleaned_data.get("new_password1")
        if password1 is not None and password1 != password2:
            raise forms.ValidationError(
                self.error_messages["password_mismatch"], code="password_mismatch"
            )
        return password2

    def _post_clean(self):
        super()._post_clean()
        password = self.cleaned_data.get("new_password1")
        if password is not None and "new_password2" in self.cleaned_data:
            try:
                validate_password(password, self.user)
            except forms.ValidationError as error:
                self.add_error("new_password1", error)
