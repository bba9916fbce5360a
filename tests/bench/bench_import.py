"""Roster import benchmark (SPEC §8): 100k and 1M users (quick: 10k and 50k) on PostgreSQL.

For each size: write a synthetic OneRoster 1.1 set (portal.roster.synthetic), time PostgreSQL's
own COPY of the same users.csv + demographics.csv into plain text tables (the floor any import
is measured against), then run `manage.py import_roster` twice in a child process — a first
import into an empty roster and an unchanged re-import. The import's time is the command's own
`elapsed_seconds=` line (Django start-up left out); peak memory is the child's maximum RSS
(os.wait4), which must stay flat from one size to the next because the import streams.
"""

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from django.db import connection

from portal.roster.synthetic import write_roster

ROOT = Path(__file__).resolve().parents[2]
USERS_PER_STUDENT = 2.15  # the synthetic district's users (students + guardians) per student


def run(args):
    sizes = [10_000, 50_000] if args.quick else [100_000, 1_000_000]
    rows = []
    for size in sizes:
        rows.extend(_bench_size(size))
    return rows


def _bench_size(size):
    label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
    with tempfile.TemporaryDirectory(prefix="bench-roster-") as scratch:
        folder = write_roster(Path(scratch) / "set", students=round(size / USERS_PER_STUDENT))
        users = _data_rows(folder / "users.csv")
        megabytes = (folder / "users.csv").stat().st_size / 1e6
        _clean_roster()
        load = os.getloadavg()[0]  # 2 cores shared with others: a load over 2 skews every figure
        copy_seconds = _copy_seconds(folder)
        first_seconds, first_peak = _import(folder)
        again_seconds, again_peak = _import(folder)
        load = max(load, os.getloadavg()[0])
    _clean_roster()

    def figure(name, value, unit):
        return {"benchmark": "import", "figure": f"{label} users: {name}", "value": value,
                "unit": unit}  # fmt: skip

    return [
        figure("users.csv rows", users, f"rows ({megabytes:.0f} MB)"),
        figure("machine load (1 min, max of start/end)", load, "runnable"),
        figure("COPY users+demographics", copy_seconds, "s"),
        figure("import", first_seconds, "s"),
        figure("import rows/s", users / first_seconds, "rows/s"),
        figure("import / COPY", first_seconds / copy_seconds, "x (target <= 5, moonshot 3)"),
        figure("import peak RSS", first_peak, "MB"),
        figure("unchanged re-import", again_seconds, "s"),
        figure("re-import / import", again_seconds / first_seconds, "x (target <= 0.5)"),
        figure("re-import peak RSS", again_peak, "MB"),
    ]


def _data_rows(path):
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def _clean_roster():
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE portal_guardianstudent, portal_student, portal_guardian, "
            "portal_organisation CASCADE"
        )
    connection.close()


def _copy_seconds(folder):
    """PostgreSQL's COPY of users.csv + demographics.csv into plain text tables."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    ) as conn:
        total = 0.0
        for name in ("users", "demographics"):
            path = folder / f"{name}.csv"
            with open(path, encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle))
            columns = ", ".join(f'"{column}" text' for column in header)
            conn.execute(f"DROP TABLE IF EXISTS bench_copy_{name}")
            conn.execute(f"CREATE TABLE bench_copy_{name} ({columns})")
            started = time.perf_counter()
            with (
                conn.cursor() as cursor,
                open(path, "rb") as handle,
                cursor.copy(f"COPY bench_copy_{name} FROM STDIN (FORMAT csv, HEADER true)") as copy,
            ):
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            total += time.perf_counter() - started
            conn.execute(f"DROP TABLE bench_copy_{name}")
    return total


def _import(folder):
    """(the command's own seconds, the child's peak RSS in MB)."""
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(
            [sys.executable, "manage.py", "import_roster", str(folder)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    if child.returncode != 0:
        raise RuntimeError(f"import_roster failed:\n{output}")
    seconds = float(output.rsplit("elapsed_seconds=", 1)[1].split()[0])
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
