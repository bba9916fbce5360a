"""`make run`: the demo on embedded defaults — nothing to install beforehand (SPEC §3, §5).

    .venv/bin/python -m portal.demo          (PORT=8001 to use another port)

Migrates the SQLite database, seeds a demo district on first run, starts a real Celery worker
and Celery beat on kombu's filesystem transport (no Redis) as child processes, then serves the
site with runserver. Ctrl-C or SIGTERM stops everything it started.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 15
START_DEADLINE_SECONDS = 60


def configure_environment(*, port):
    # The demo always runs on the embedded defaults, whatever the shell exported.
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings.dev"
    os.environ.setdefault("PORTAL_BASE_URL", f"http://127.0.0.1:{port}")


def prepare(settings):
    """Create the folders the file-based mail, broker and beat need, migrate, seed once."""
    from django.core.management import call_command

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    folders = [
        settings.VAR_DIR,
        Path(settings.MAILERS["default"]["OPTIONS"]["file_path"]),
        Path(options["data_folder_in"]),
        Path(options["data_folder_out"]),
        Path(options["processed_folder"]),
    ]
    if "control_folder" in options:
        folders.append(Path(options["control_folder"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)

    call_command("migrate", interactive=False, verbosity=0)
    from portal.models import Student

    if not Student.objects.exists():
        print("First run: seeding the demo district (a few seconds)...", flush=True)
        call_command("seed_demo")


def child_commands(settings, *, port):
    python = sys.executable
    queues = sorted({route["queue"] for route in settings.CELERY_TASK_ROUTES.values()})
    return {
        "worker": [
            python, "-m", "celery", "-A", "portal", "worker",
            "--queues", ",".join(queues), "--concurrency", "2", "--loglevel", "INFO",
            "--hostname", "demo@%h",
        ],
        "beat": [
            python, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO",
            "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
        # No autoreloader: its extra process would outlive a SIGTERM sent to its parent.
        "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
    }  # fmt: skip


def wait_for_port(port, *, processes, deadline):
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes.values()):
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def print_banner(*, port):
    from portal.management.commands.seed_demo import demo_logins

    base = f"http://127.0.0.1:{port}"
    lines = [
        "",
        "=" * 72,
        f"  Portal Help demo:  {base}/login/",
        f"  Emails it sends:   {base}/dev/mail/",
        f"  Health:            {base}/healthz",
        f"  Admin:             {base}/admin/",
        "",
        "  Demo logins (demo only — these passwords are published):",
    ]
    labels = {"staff": "staff (admin)", "parent": "parent", "student": "student"}
    lines += [
        f"    {labels[role]:<14} {username:<28} {password}"
        for role, username, password in demo_logins()
    ]
    lines += [
        "",
        "  The staff console (/staff/) also asks for a one-time code; print the current one",
        "  with: .venv/bin/python manage.py demo_code",
        "",
        "  Press Ctrl-C to stop.",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)


def stop(processes):
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop


def main():
    port = int(os.environ.get("PORT", "8000"))
    configure_environment(port=port)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    prepare(settings)

    processes = {}
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        for name, command in child_commands(settings, port=port).items():
            processes[name] = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        if wait_for_port(port, processes=processes, deadline=deadline):
            print_banner(port=port)
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"The {name} process stopped (exit {process.returncode}).", flush=True)
                    return 1
            time.sleep(0.5)
    except _Stop:
        print("\nStopping the demo...", flush=True)
        return 0
    finally:
        # Ignore further Ctrl-C while the children shut down cleanly.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
