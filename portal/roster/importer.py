"""The roster import service: a OneRoster CSV set (folder or .zip) mirrored into the database.

    import_roster(path, *, allow_mass_deactivation=False) -> ImportSummary

What it does (SPEC §3, §4; docs/oneroster.md):

- reads OneRoster 1.1 and 1.2, bulk and delta (the manifest gives each file's mode), columns by
  header name, UTF-8 with or without BOM; `metadata.*` and other unknown columns are ignored and
  the `password` column is never read;
- students are users with role `student` (1.2: in roles.csv); guardians have role `parent`,
  `guardian` or `relative` (stored; provisioning decides about relatives); other roles are counted
  as ignored. The student number comes from `settings.STUDENT_NUMBER_FIELD`, the birth date from
  demographics.csv, the school from the first org of type `school` (1.1 `orgSourcedIds`; 1.2 the
  student role's `orgSourcedId`, else `primaryOrgSourcedId`);
- links are the union of `agentSourcedIds` on both sides. A bulk users.csv replaces the links of
  everyone it lists; a delta adds the links it lists and removes those of `tobedeleted` people;
- `enabledUser=false` -> `enabled=False`; `tobedeleted` and absence from a bulk users.csv (or
  orgs.csv) -> `active=False`; listed again -> `active=True`;
- `Guardian.email_shared` is recomputed after every import: true exactly for active guardians whose
  non-empty normalised email another active guardian also has.

Failure modes — all of them apply nothing, since the whole import is one transaction:

- structural errors (missing manifest, a declared file missing, a missing required column,
  unreadable CSV, an empty file) raise `StructuralError` naming the file and line;
- a row in error (bad date, missing sourcedId, unknown role, ...) is skipped and reported with its
  file and line; more than 1% of all rows in error raises `TooManyRowErrors`;
- the safety stop: counted per kind (students, guardians) — if the people a run would deactivate
  (absent from a bulk file or `tobedeleted`) exceed `ROSTER_MAX_DEACTIVATE_SHARE` of that kind's
  currently active people, `SafetyStop` is raised, naming the numbers and the override
  (`allow_mass_deactivation=True`, `import_roster --allow-mass-deactivation`). Per kind, because a
  truncated export that lost only its guardians must stop even though the students are all there.
  Explicit `tobedeleted` rows count too: a delta deleting a third of a district is just as
  suspicious. The first import (nobody active yet) never stops.

Two write paths give the same result (tests/portal/test_import_roster_parity.py):
`postgres.PostgresWriter` (COPY into staging tables + set-based SQL merge; see its docstring for
why) on PostgreSQL, `plain.PlainWriter` (Python csv + ORM bulk operations) elsewhere — SQLite, for
`make run`'s demo district of a few hundred rows.

After the merge and inside the transaction, `signals.roster_imported` is sent so account work
commits or fails with the import.
"""

import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal.models import Guardian, Student
from portal.roster import rules
from portal.roster.reader import CsvFile, RosterSource, read_manifest
from portal.roster.signals import roster_imported
from portal.roster.summary import ImportSummary, SafetyStop, check_row_errors


def import_roster(path, *, allow_mass_deactivation=False, writer=None):
    """Import the OneRoster set at `path`; return the summary or raise ImportStopped.

    `writer` ("postgres" or "plain") forces a write path; by default PostgreSQL gets the COPY
    path and every other database the plain one.
    """
    started = time.perf_counter()
    if writer is None:
        writer = "postgres" if connection.vendor == "postgresql" else "plain"
    number_field = settings.STUDENT_NUMBER_FIELD
    summary = ImportSummary(changed_at=timezone.now())
    with RosterSource(path) as source:
        manifest = read_manifest(source)
        summary.version = manifest.version
        files = {}
        for file in rules.FILES:
            mode = manifest.mode(file)
            summary.modes[file] = mode
            if mode == "absent":
                continue
            required = rules.required_columns(
                file, version=manifest.version, mode=mode, student_number_field=number_field
            )
            files[file] = CsvFile(source, file, required=required)
        with transaction.atomic():
            active_before = {
                "students": Student.objects.filter(active=True).count(),
                "guardians": Guardian.objects.filter(active=True).count(),
            }
            if writer == "postgres":
                _run_postgres(source, manifest, files, summary, number_field, active_before)
            else:
                from portal.roster.plain import PlainWriter

                PlainWriter(
                    manifest=manifest,
                    files=files,
                    summary=summary,
                    changed_at=summary.changed_at,
                    number_field=number_field,
                ).run()
            _check_deactivations(summary, active_before, allow=allow_mass_deactivation)
            roster_imported.send(sender=ImportSummary, summary=summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_postgres(source, manifest, files, summary, number_field, active_before):
    from portal.roster.postgres import PostgresWriter

    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        writer = PostgresWriter(
            cursor=cursor,
            source=source,
            manifest=manifest,
            files=files,
            summary=summary,
            changed_at=summary.changed_at,
            number_field=number_field,
            active_before=active_before,
        )
        # Hash joins and sorts of a million rows stay in memory (this transaction only).
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # JIT compiling each big statement costs about a second and a half and wins back less:
        # these statements are scans, hashes and sorts, not expression-heavy loops.
        cursor.execute("SET LOCAL jit = off")
        # The commit does not wait for its WAL to reach the disk. Safe here: a crash in that
        # moment loses only this import (the database stays consistent), and the import is
        # rerun from the same files next night.
        cursor.execute("SET LOCAL synchronous_commit = off")
        writer.open_staging()
        writer.stage()
        writer.validate_orgs_and_roles()
        # Orgs first: a student's school, and so the digests of unchanged people, depend on them.
        # (Merged before the row-error count: a run stopped by it still rolls everything back.)
        writer.merge_orgs()
        writer.match_unchanged()
        writer.validate_people()
        check_row_errors(summary, writer.collect_errors())
        writer.merge_people()
        writer.merge_links()
        writer.flag_shared_emails()
        writer.restore_secondary_structures()
        writer.drop_staging()


def _check_deactivations(summary, active_before, *, allow):
    if allow:
        return
    share = settings.ROSTER_MAX_DEACTIVATE_SHARE
    for kind, active in active_before.items():
        deactivated = summary.counts[kind].deactivated
        if active and deactivated > share * active:
            raise SafetyStop(
                f"Safety stop: this import would deactivate {deactivated} of {active} active "
                f"{kind} ({deactivated / active:.0%}, more than ROSTER_MAX_DEACTIVATE_SHARE = "
                f"{share:.0%}). A truncated export looks like this; nothing was changed. If the "
                "file is right, run again with --allow-mass-deactivation."
            )
