from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Portal")

    def ready(self):
        from portal.account_sync import sync_accounts_with_roster
        from portal.roster.signals import roster_imported
        from portal.roster.summary import ImportSummary

        # Inside the import's transaction: accounts follow the roster or nothing changes.
        roster_imported.connect(
            sync_accounts_with_roster, sender=ImportSummary, dispatch_uid="portal.account_sync"
        )
