"""`make bench`: the benchmarks of SPEC §8, printed as one table with ratios.

Runs on PostgreSQL and Redis on localhost, in a database of its own (portal_help_bench, dropped
and re-created each run) so it never touches the test or demo data. Each benchmark module has
`run(args) -> list[dict]`, one dict per figure: benchmark, figure, value, unit.

    python -m tests.bench [--only NAME ...] [--quick]
"""

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ["import", "provisioning", "email", "help", "login"]
BENCH_DB = "portal_help_bench"


def prepare_environment():
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"
    os.environ.setdefault("DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    db_name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-q",
            "-c",
            f"DROP DATABASE IF EXISTS {db_name}",
        ],
        check=True,
    )
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", f"CREATE DATABASE {db_name}"],
        check=True,
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, check=True
    )
    # Its Redis database too: rate-limit and login-throttle state left by an earlier run (an
    # unknown name locked after 100 failures, say) would change what this run measures.
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    import django

    django.setup()


def format_table(rows):
    headers = ["benchmark", "figure", "value", "unit"]
    cells = [[r["benchmark"], r["figure"], _number(r["value"]), r.get("unit", "")] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for c in cells:
        out.append(
            "  ".join(
                (v.rjust(w) if i == 2 else v.ljust(w))
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    return "\n".join(out)


def _number(value):
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    prepare_environment()
    rows = []
    started = time.perf_counter()
    for name in args.only:
        module = importlib.import_module(f"tests.bench.bench_{name}")
        rows.extend(module.run(args))
        print(format_table(rows), flush=True)
        print()
    print(f"benchmarks took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
