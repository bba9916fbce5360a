from django.conf import settings


def district(request):
    return {
        "district_name": settings.DISTRICT_NAME,
        "support_contact": settings.SUPPORT_CONTACT,
    }
