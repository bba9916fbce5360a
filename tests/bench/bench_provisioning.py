"""Provisioning benchmark (SPEC §8): 100k guardians (quick: 10k) on PostgreSQL.

Writes a synthetic OneRoster set with enough students for that many guardians, imports it, then
times `provision_accounts()` in this process: parent accounts with their welcome emails queued
in the outbox (and enqueued to the broker on commit), and student accounts. Reported: seconds,
accounts per second, and the proof that no password was hashed — every account created has an
unusable password, so `usable passwords` must be 0. Nothing sends the emails (no worker); the
queued tasks are purged from the broker afterwards.

Then the roster→accounts receiver (portal.account_sync): its cost after an unchanged re-import
(it looks only at rows the import changed), its worst case when it must scan every account, and
a real import in which 5% of the families have left (their accounts disabled, links revoked).
"""

import csv
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.db import connection, transaction

from portal.account_sync import sync_accounts_with_roster
from portal.models import Guardian, User
from portal.provisioning import provision_accounts
from portal.roster.importer import import_roster
from portal.roster.synthetic import write_roster
from recovery.models import OutboundEmail
from tests.support.worker import purge_broker

GUARDIANS_PER_STUDENT = 1.15  # the synthetic district's guardians per student


def run(args):
    guardians = 10_000 if args.quick else 100_000
    label = f"{guardians // 1000}k guardians"
    students = round(guardians / GUARDIANS_PER_STUDENT)
    with tempfile.TemporaryDirectory(prefix="bench-provisioning-") as scratch:
        folder = write_roster(Path(scratch) / "set", students=students, seed=7)
        smaller = _without_last_families(folder, Path(scratch) / "smaller", share=0.05)
        _clean()
        import_roster(folder)
        rows = _provision(label)
        rows.extend(_sync(label, folder, smaller))
    purge_broker(settings.CELERY_BROKER_URL)
    _clean()
    return rows


def _provision(label):
    in_roster = Guardian.objects.count()

    started = time.perf_counter()
    summary = provision_accounts()
    seconds = time.perf_counter() - started
    accounts = summary.parents_created + summary.students_created
    usable = sum(1 for p in User.objects.values_list("password", flat=True) if p[:1] != "!")
    again_started = time.perf_counter()
    again = provision_accounts()
    again_seconds = time.perf_counter() - again_started
    welcomes = OutboundEmail.objects.filter(kind="welcome").count()

    def figure(name, value, unit):
        return {"benchmark": "provisioning", "figure": f"{label}: {name}", "value": value,
                "unit": unit}  # fmt: skip

    return [
        figure("guardians in roster", in_roster, "guardians"),
        figure("parent accounts", summary.parents_created, "accounts"),
        figure("student accounts", summary.students_created, "accounts"),
        figure("welcome emails queued", welcomes, "emails"),
        figure("provision_accounts", seconds, "s (target < 30 for 100k)"),
        *(
            figure(f"  of which {phase}", value, "s")
            for phase, value in summary.phase_seconds.items()
        ),
        figure("accounts/s", accounts / seconds, "accounts/s"),
        figure("usable passwords (hashed)", usable, "(must be 0)"),
        figure("second run", again_seconds, f"s ({again.parents_created} created)"),
    ]


def _sync(label, folder, smaller):
    """The roster→accounts receiver inside real imports, and its worst case (a full scan)."""
    unchanged = import_roster(folder)
    started = time.perf_counter()
    sync_accounts_with_roster(None, summary=unchanged)
    narrowed = time.perf_counter() - started
    started = time.perf_counter()
    with transaction.atomic():
        sync_accounts_with_roster(None, summary=SimpleNamespace(changed_at=None))
    full_scan = time.perf_counter() - started
    started = time.perf_counter()
    import_roster(smaller)
    shrink = time.perf_counter() - started
    disabled = User.objects.filter(disabled_by_sis=True).count()
    users = User.objects.count()

    def figure(name, value, unit):
        return {"benchmark": "account sync", "figure": f"{label}: {name}", "value": value,
                "unit": unit}  # fmt: skip

    return [
        figure("after an unchanged re-import", narrowed, "s"),
        figure("full scan (changed_at unknown)", full_scan, f"s over {users} accounts"),
        figure("import without 5% of families", shrink, f"s, {disabled} accounts disabled"),
    ]


def _without_last_families(folder, dest, *, share):
    """A copy of the set without its last `share` of users.csv rows (whole families, the
    synthetic writer puts each family's rows together) and their demographics."""
    shutil.copytree(folder, dest)
    with open(folder / "users.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    kept = rows[: 1 + round((len(rows) - 1) * (1 - share))]
    with open(dest / "users.csv", "w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(kept)
    ids = {row[0] for row in kept[1:]}
    with open(folder / "demographics.csv", encoding="utf-8", newline="") as handle:
        demographics = list(csv.reader(handle))
    with open(dest / "demographics.csv", "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerows([demographics[0], *(r for r in demographics[1:] if r[0] in ids)])
    return dest


def _clean():
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE recovery_outboundemail, recovery_issuedtoken, portal_user, "
            "portal_guardianstudent, portal_student, portal_guardian, portal_organisation CASCADE"
        )
    connection.close()
