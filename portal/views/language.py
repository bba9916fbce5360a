"""The language switcher: Django's set_language, remembered on the account when signed in.

The language follows the person's choice, then the browser (SPEC §7). A choice made while
signed in is kept on the account, so it follows them to other devices at sign-in and their
emails (rendered by a worker, with no browser to ask) come in the same language.
"""

from django.conf import settings
from django.views import i18n


def is_offered(language):
    return language in dict(settings.LANGUAGES)


def remember_language(*, user, language):
    if is_offered(language) and user.language != language:
        user.language = language
        user.save(update_fields=["language"])


def set_language_cookie(response, language):
    # The same cookie Django's set_language writes; LocaleMiddleware reads it.
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


def set_language(request):
    response = i18n.set_language(request)
    if request.method == "POST" and request.user.is_authenticated:
        remember_language(user=request.user, language=request.POST.get("language", ""))
    return response
