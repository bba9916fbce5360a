"""Sign-in and sign-out: Django's views, with the portal's form and templates."""

from django.contrib.auth import views as auth_views

from portal.forms import LoginForm


class LoginView(auth_views.LoginView):
    # Django's LoginView already adds never_cache, csrf_protect and sensitive_post_parameters,
    # and only follows a `next` on this host (url_has_allowed_host_and_scheme).
    form_class = LoginForm
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    # POST only (Django's default): a link or an image tag cannot sign anyone out.
    pass
