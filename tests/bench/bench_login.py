"""Login timing (SPEC §8, checklist J2): is a refusal as slow for every kind of account?

Interleaved samples of POST /login/ through Django's full stack (test client, in process) with
the production Argon2 parameters, for: an unknown username, a parent's wrong password, a parent
not yet activated (unusable password), an inactive parent, a student on the default (wrong
guess) and a student whose default expired. The throttle is opened wide so no attempt is cut
short; each sample comes from its own address. Reported: median and p90 in ms, and each
median's ratio to the ordinary wrong password (1.00 = indistinguishable).

    python -m tests.bench.bench_login [--quick]
"""

import datetime as dt
import random
import statistics
import sys
import time

CASES = {
    "unknown username": ("nobody.here", "wrong password 1"),
    "parent, wrong password": ("bench.parent", "wrong password 1"),
    "parent not yet activated": ("bench.awaiting", "wrong password 1"),
    "inactive parent": ("bench.inactive", "wrong password 1"),
    "student on the default, wrong": ("9100001", "AG010101"),
    "student, default expired": ("9100002", "AG030912"),
}
BASELINE = "parent, wrong password"


def _accounts():
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portal.models import Student

    users = get_user_model().objects
    users.filter(username__in=[username for username, _ in CASES.values()]).delete()
    Student.objects.filter(sourced_id__startswith="bench-").delete()
    users.create_user(username="bench.parent", password="correct horse battery staple")
    users.create_user(username="bench.awaiting", password=None)
    users.create_user(username="bench.inactive", password="x y z w v u", is_active=False)
    now = timezone.now()
    for number, since in (("9100001", now), ("9100002", now - dt.timedelta(days=400))):
        record = Student.objects.create(
            sourced_id=f"bench-{number}",
            student_number=number,
            given_name="Ana",
            family_name="Garcia",
            birth_date=dt.date(2012, 3, 9),
        )
        users.create(
            username=number,
            password="!unusable",
            role="student",
            student=record,
            must_change_password=True,
            default_password_active=True,
            default_password_since=since,
        )


def _percentile(values, share):
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def run(args):
    from django.test import Client, override_settings

    rounds = 20 if getattr(args, "quick", False) else 100
    with override_settings(
        # The production hasher (settings.test swaps in a cheap one for the suite).
        PASSWORD_HASHERS=["portal.hashers.PortalArgon2PasswordHasher"],
        LOGIN_FREE_FAILURES=10**9,
        RATELIMIT_LOGIN_PER_IP="1000000/m",
        RATELIMIT_LOGIN_STUDENT_NUMBER="1000000/m",
    ):
        _accounts()
        client = Client()
        samples = {case: [] for case in CASES}
        order = list(CASES)
        for round_number in range(rounds + 3):
            random.shuffle(order)
            for case in order:
                username, password = CASES[case]
                started = time.perf_counter()
                response = client.post(
                    "/login/",
                    {"username": username, "password": password},
                    REMOTE_ADDR=f"10.{round_number % 250}.{order.index(case)}.1",
                )
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (case, response.status_code)
                if round_number >= 3:  # the first rounds warm caches and connections
                    samples[case].append(elapsed * 1000)
    base = statistics.median(samples[BASELINE])
    rows = []
    for case, values in samples.items():
        median = statistics.median(values)
        rows.append(
            {"benchmark": "login", "figure": f"{case}: median", "value": median, "unit": "ms"}
        )
        rows.append(
            {
                "benchmark": "login",
                "figure": f"{case}: p90",
                "value": _percentile(values, 0.9),
                "unit": "ms",
            }
        )
        rows.append(
            {
                "benchmark": "login",
                "figure": f"{case}: median / wrong password",
                "value": median / base,
                "unit": "x",
            }
        )
    return rows


if __name__ == "__main__":
    from tests.bench.__main__ import format_table, prepare_environment

    prepare_environment()

    class _Args:
        quick = "--quick" in sys.argv

    print(format_table(run(_Args())))
