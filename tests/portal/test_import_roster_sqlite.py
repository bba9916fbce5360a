"""`make run`'s database: the plain path on a real SQLite file, through the command."""

from portal.roster.synthetic import write_roster
from tests.support.demo_database import run_on_demo_database

SCRIPT = """
import sys
import settings.dev as dev
dev.DATABASES["default"]["NAME"] = sys.argv[1]
import django
django.setup()
from django.core.management import call_command
from portal.models import Guardian, GuardianStudent, Student
call_command("migrate", verbosity=0)
for path in sys.argv[2:]:
    call_command("import_roster", path)
print("students", Student.objects.filter(active=True).count())
print("shared", Guardian.objects.filter(email_shared=True).count())
print("links", GuardianStudent.objects.count())
"""


def test_the_demo_database_imports_a_district_twice_without_changes(tmp_path):
    folder = write_roster(tmp_path / "set", students=120, seed=4)
    zipped = write_roster(tmp_path / "zip", students=120, seed=4, version="1.2", zip=True)
    out, _ = run_on_demo_database(SCRIPT, tmp_path / "demo.sqlite3", folder, zipped)
    students = [line.split()[1:] for line in out.splitlines() if line.startswith("students ")]
    # created, updated, deactivated, unchanged, skipped: all created, then the 1.2 export of the
    # same district changes nothing.
    assert students[0] == ["120", "0", "0", "0", "0"]
    assert students[1] == ["0", "0", "0", "120", "0"]
    assert "students 120" in out
    assert int(out.split("links ")[1].split()[0]) > 120
    assert int(out.split("shared ")[1].split()[0]) > 0
