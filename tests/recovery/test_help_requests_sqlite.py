"""`make run`'s database: Help requests resolved in batches, and the login throttle, on SQLite."""

from tests.support.demo_database import run_on_demo_database

SCRIPT = """
import sys
import settings.dev as dev
dev.DATABASES["default"]["NAME"] = sys.argv[1]
dev.CELERY_BROKER_URL = "memory://"  # nothing leaves this process
# The demo's counters live in its file cache: a fresh one, so no earlier run's count applies.
dev.CACHES["default"]["LOCATION"] = sys.argv[2]
import django
django.setup()
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone
from portal import login_throttle
from portal.models import User
from recovery.help_requests import submit_help_request
from recovery.models import HelpRequest
from recovery.resolution import resolve_help_requests
call_command("migrate", verbosity=0)
User.objects.create_user(
    username="rosa.nguyen",
    password="a long enough password",
    recovery_email="rosa@example.org",
    recovery_email_normalised="rosa@example.org",
    recovery_email_verified_at=timezone.now(),
    activated_at=timezone.now(),
)
request = RequestFactory().post("/help/forgot-username/", REMOTE_ADDR="192.0.2.9")
for typed in ("rosa@example.org", "nobody@example.org", "rosa.nguyen"):
    kind = "forgot_username" if "@" in typed else "forgot_password"
    submit_help_request(kind=kind, identifier=typed, request=request)
print("resolved", resolve_help_requests())
for row in HelpRequest.objects.order_by("pk"):
    print("outcome", row.outcome)
user = User.objects.get(username="rosa.nguyen")
for _ in range(2):
    login_throttle.fail(request=request, username="rosa.nguyen", user=user)
print("failures", user.failed_login_count, type(user.last_failed_login_at).__name__)
"""


def test_the_demo_database_resolves_help_requests_and_counts_login_failures(tmp_path):
    stdout, stderr = run_on_demo_database(SCRIPT, tmp_path / "demo.sqlite3", tmp_path / "cache")
    # The batch look-up ran (a fallback to row-by-row queries would be logged as an error).
    assert "Batch look-up" not in stderr, stderr
    lines = stdout.splitlines()
    assert "resolved 3" in lines
    outcomes = [line.split()[1] for line in lines if line.startswith("outcome ")]
    assert outcomes == ["reminded_1_welcomed_0", "no_account_sent", "reset_sent"]
    assert "failures 2 datetime" in lines
