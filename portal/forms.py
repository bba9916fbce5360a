"""Portal forms: sign-in (the login throttle is applied by portal.backends) and the code page."""

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from portal import login_throttle
from portal.password_validation import password_rules
from portal.passwords import normalise_password
from recovery import ratelimit


class LoginForm(AuthenticationForm):
    """The portal sign-in form: Django's, throttled, with one generic failure message.

    Every refusal reads the same whatever the reason (unknown username, wrong password,
    inactive account, unusable password of a parent not yet activated, expired student default,
    locked account): nothing says which (checklist J1, Django CVE-2018-6188). A throttled
    attempt is refused before the password is checked, with when to try again.
    """

    error_messages = {
        "invalid_login": _(
            "The username or password is not right. Both are case-sensitive. "
            "If you cannot sign in, use Help below."
        ),
        "inactive": _(
            "The username or password is not right. Both are case-sensitive. "
            "If you cannot sign in, use Help below."
        ),
    }

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

    @sensitive_variables("password")
    def clean(self):
        # The backend applies the throttle (before checking the password) and counts failures;
        # this only words the reply.
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            self.user_cache = authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                raise self._refusal()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def _refusal(self):
        outcome = login_throttle.attempt_outcome(self.request)
        if outcome is not None and not outcome.checked:
            return forms.ValidationError(
                login_throttle.message_for(outcome.verdict), code="throttled"
            )
        message = str(self.error_messages["invalid_login"])
        if outcome is not None and not outcome.verdict.allowed:
            message = f"{message} {login_throttle.message_for(outcome.verdict)}"
        return forms.ValidationError(message, code="invalid_login")


class StudentCodeForm(forms.Form):
    """/login/code/: a student's username, the code staff gave them and a new password, twice.

    Attempts are counted per client IP and per typed username before anything is looked up;
    the code itself is checked by the view (portal.student_codes), which gives one generic
    message for every reason a code is refused.
    """

    error_messages = {
        "password_mismatch": _("The two passwords do not match. Type them again."),
    }

    username = forms.CharField(
        label=_("Username (your student number)"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    code = forms.CharField(
        label=_("Code from your school"),
        max_length=32,
        help_text=_("12 letters and numbers, like ABCD-EFGH-JKMN."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "characters"}
        ),
    )
    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "new-password", "aria-describedby": "password-rules"}
        ),
    )
    new_password2 = forms.CharField(
        label=_("Type the new password again"),
        strip=False,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "new-password", "aria-describedby": "password-rules"}
        ),
    )

    def __init__(self, *args, request, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    @property
    def password_rules(self):
        return password_rules(user=None)

    def clean(self):
        cleaned = super().clean()
        username = cleaned.get("username")
        if username is None:
            return cleaned
        decisions = [
            ratelimit.hit(
                action="student_code.ip",
                key=ratelimit.client_ip(self.request),
                rate=settings.RATELIMIT_STUDENT_CODE_PER_IP,
            ),
            ratelimit.hit(
                action="student_code.username",
                key=username,
                rate=settings.RATELIMIT_STUDENT_CODE_PER_USERNAME,
            ),
        ]
        refused = [decision for decision in decisions if not decision.allowed]
        if refused:
            wait = max(decision.retry_after for decision in refused)
            raise forms.ValidationError(
                " ".join([str(_("Too many attempts.")), ratelimit.retry_after_message(wait)]),
                code="throttled",
            )
        password1, password2 = cleaned.get("new_password1"), cleaned.get("new_password2")
        if (
            password1 is not None
            and password2 is not None
            and normalise_password(password1) != normalise_password(password2)
        ):
            self.add_error(
                "new_password2",
                forms.ValidationError(
                    self.error_messages["password_mismatch"], code="password_mismatch"
                ),
            )
        return cleaned
