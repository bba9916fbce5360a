"""Signals of the roster import.

`roster_imported` is sent inside the import's transaction, after the merge and the safety stop,
with `sender=ImportSummary` and `summary=<ImportSummary>`. A receiver that writes (the accounts
work: disable accounts of deactivated people, re-send welcomes after an email change) therefore
commits or rolls back together with the import. Rows the import created or changed carry
`updated_at == summary.changed_at`, so a receiver can select exactly them.
"""

from django.dispatch import Signal

roster_imported = Signal()
