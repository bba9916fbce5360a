"""`make run`'s database in a test: a script run in a child process on settings.dev (SQLite).

The test process itself is configured for PostgreSQL, so the demo's plain paths are exercised
in a process of their own, on a real SQLite file."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_on_demo_database(script, *args):
    """Run `script` (Python source) with `args` as sys.argv[1:]; return its stdout and stderr
    once it has exited 0."""
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings.dev"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr
