"""Provisioning benchmark (SPEC §8): 100k guardians (quick: 10k) on PostgreSQL.

Writes a synthetic OneRoster set with enough students for that many guardians, imports it, then
times `provision_accounts()` in this process: parent accounts with their welcome emails queued
in the outbox (and enqueued to the broker on commit), and student accounts. Reported: seconds,
accounts per second, and the proof that no password was hashed — every account created has an
unusable password, so `usable passwords` must be 0. Nothing sends the emails (no worker); the
queued tasks are purged from the broker afterwards.
"""

import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

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
    with tempfile.TemporaryDirectory(prefix="bench-provisioning-") as scratch:
        folder = write_roster(
            Path(scratch) / "set", students=round(guardians / GUARDIANS_PER_STUDENT), seed=7
        )
        _clean()
        import_roster(folder)
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
    purge_broker(settings.CELERY_BROKER_URL)
    _clean()

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


def _clean():
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE recovery_outboundemail, recovery_issuedtoken, portal_user, "
            "portal_guardianstudent, portal_student, portal_guardian, portal_organisation CASCADE"
        )
    connection.close()
