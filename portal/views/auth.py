"""Sign-in and sign-out: Django's views, with the portal's form and templates."""

from django.contrib.auth import views as auth_views

from portal.forms import LoginForm
from portal.views.language import is_offered, set_language_cookie


class LoginView(auth_views.LoginView):
    # Django's LoginView already adds never_cache, csrf_protect and sensitive_post_parameters,
    # and only follows a `next` on this host (url_has_allowed_host_and_scheme).
    form_class = LoginForm
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        # The language chosen on the account wins over this browser's (SPEC §7).
        language = form.get_user().language
        if is_offered(language):
            set_language_cookie(response, language)
        return response


class LogoutView(auth_views.LogoutView):
    # POST only (Django's default): a link or an image tag cannot sign anyone out.
    pass
