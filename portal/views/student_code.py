"""/login/code/: a student sets their first password with a one-time code from staff."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from portal.forms import StudentCodeForm
from portal.student_codes import CodeRefused, redeem_student_code


@method_decorator(never_cache, name="dispatch")
@method_decorator(sensitive_post_parameters("code", "new_password1", "new_password2"), "dispatch")
class StudentCodeView(FormView):
    form_class = StudentCodeForm
    template_name = "portal/student_code/redeem.html"
    # No automatic sign-in after setting a password (checklist G2): the student signs in.
    success_url = reverse_lazy("login")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        try:
            redeem_student_code(
                username=form.cleaned_data["username"],
                code=form.cleaned_data["code"],
                password=form.cleaned_data["new_password1"],
                request=self.request,
            )
        except CodeRefused:
            form.add_error(
                None,
                _(
                    "That username and code do not go together, or the code was already used "
                    "or is too old. Check both, or ask your school for a new code."
                ),
            )
            return self.form_invalid(form)
        except ValidationError as error:
            form.add_error("new_password1", error)
            return self.form_invalid(form)
        messages.success(
            self.request, _("Your password is set. Sign in with your username and new password.")
        )
        return super().form_valid(form)
