from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecoveryConfig(AppConfig):
    name = "recovery"
    verbose_name = _("Account recovery")
