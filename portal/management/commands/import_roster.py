"""`manage.py import_roster PATH [--allow-mass-deactivation]`: mirror a OneRoster CSV set.

Prints the summary (per kind: created / updated / deactivated / unchanged / skipped) and the
skipped rows with file and line; exits non-zero, naming the file and line, when the import stops
(structural error, too many bad rows, safety stop), in which case nothing was applied. The last
line, `elapsed_seconds=<s>`, is the import's own time (Django start-up excluded), for scripts and
the benchmark.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from portal.roster.importer import import_roster
from portal.roster.summary import ImportStopped


class Command(BaseCommand):
    help = "Import a OneRoster 1.1/1.2 CSV set (folder or .zip) into the roster."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a OneRoster CSV folder or .zip")
        parser.add_argument(
            "--allow-mass-deactivation",
            action="store_true",
            help="apply the import even if it deactivates more than ROSTER_MAX_DEACTIVATE_SHARE",
        )

    def handle(self, *args, path, allow_mass_deactivation, **options):
        started = time.perf_counter()
        try:
            summary = import_roster(path, allow_mass_deactivation=allow_mass_deactivation)
        except ImportStopped as exc:
            raise CommandError(f"Import stopped, nothing was applied. {exc}") from exc
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(f"elapsed_seconds={time.perf_counter() - started:.3f}")
