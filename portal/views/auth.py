"""Sign-in and sign-out: Django's views, with the portal's form and templates."""

from django.contrib.auth import views as auth_views

from portal.forms import LoginForm
from portal.views.language import is_offered, set_language_cookie
from recovery.audit import record_event


class LoginView(auth_views.LoginView):
    # Django's LoginView already adds never_cache, csrf_protect and sensitive_post_parameters,
    # and only follows a `next` on this host (url_has_allowed_host_and_scheme).
    form_class = LoginForm
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        # Django's login() gives the session a new key (no session fixation, checklist I1).
        response = super().form_valid(form)
        user = form.get_user()
        record_event(
            action="login.succeeded",
            request=self.request,
            subject=user,
            identifier=user.get_username(),
            detail={"forced_change": bool(user.must_change_password)},
        )
        # The language chosen on the account wins over this browser's (SPEC §7).
        language = user.language
        if is_offered(language):
            set_language_cookie(response, language)
        return response


class LogoutView(auth_views.LogoutView):
    # POST only (Django's default): a link or an image tag cannot sign anyone out.
    pass
