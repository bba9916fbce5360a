import unicodedata

from django.conf import settings
from django.utils.translation import get_language_info


def _language_choices():
    # Each language named in itself (Django's name_local), NFC-normalised: Django's Vietnamese
    # name is stored decomposed, which some fonts and screen readers render poorly.
    choices = []
    for code, _name in settings.LANGUAGES:
        name = unicodedata.normalize("NFC", get_language_info(code)["name_local"])
        choices.append((code, name[:1].upper() + name[1:]))
    return choices


def district(request):
    """What every page shows: the district, how to reach support, the language switcher."""
    return {
        "district_name": settings.DISTRICT_NAME,
        "support_contact": settings.SUPPORT_CONTACT,
        "language_choices": _language_choices(),
    }
