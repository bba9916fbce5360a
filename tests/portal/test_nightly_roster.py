import pytest
from django.test import override_settings

from portal.models import Guardian, Student, User
from portal.roster.importer import import_roster
from portal.roster.synthetic import write_roster
from portal.tasks import nightly_roster
from recovery.models import OutboundEmail

pytestmark = pytest.mark.django_db


def test_without_a_drop_path_the_night_imports_nothing():
    with override_settings(ROSTER_DROP_PATH=""):
        assert nightly_roster() == {"import": "skipped"}
    assert not Student.objects.exists()


def test_the_night_imports_the_drop_folder(tmp_path):
    folder = write_roster(tmp_path / "drop", students=40, seed=3)
    with override_settings(ROSTER_DROP_PATH=str(folder)):
        assert nightly_roster() == {"import": "ok"}
    assert Student.objects.filter(active=True).count() == 40
    assert Guardian.objects.exists()


def test_a_broken_drop_stops_the_night_and_applies_nothing(tmp_path):
    folder = write_roster(tmp_path / "drop", students=40, seed=3)
    (folder / "manifest.csv").unlink()
    with override_settings(ROSTER_DROP_PATH=str(folder)):
        assert nightly_roster() == {"import": "failed"}
    assert not Student.objects.exists()


# --- the night provisions after a good import, and only then


def test_the_night_provisions_after_a_good_import(tmp_path):
    folder = write_roster(tmp_path / "drop", students=40, seed=3)
    with override_settings(ROSTER_DROP_PATH=str(folder)):
        nightly_roster()
    parents = User.objects.filter(role=User.Role.PARENT)
    assert parents.exists()
    assert User.objects.filter(role=User.Role.STUDENT).count() == 40
    assert OutboundEmail.objects.filter(kind="welcome").count() == parents.count()
    assert not Guardian.objects.filter(account__isnull=True, unprovisioned_reason="").exists()


def test_without_a_drop_path_the_night_still_provisions_the_roster_it_has(tmp_path):
    import_roster(write_roster(tmp_path / "by-hand", students=40, seed=3))
    with override_settings(ROSTER_DROP_PATH=""):
        assert nightly_roster() == {"import": "skipped"}
    assert User.objects.filter(role=User.Role.STUDENT).count() == 40


def test_a_failed_import_provisions_nothing(tmp_path):
    # Last night's roster is in the database, unprovisioned; tonight's drop is broken.
    import_roster(write_roster(tmp_path / "last-night", students=40, seed=3))
    folder = write_roster(tmp_path / "drop", students=40, seed=4)
    (folder / "users.csv").write_text("sourcedId\n", encoding="utf-8")
    with override_settings(ROSTER_DROP_PATH=str(folder)):
        assert nightly_roster() == {"import": "failed"}
    assert not User.objects.exists()
