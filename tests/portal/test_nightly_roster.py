import pytest
from django.test import override_settings

from portal.models import Guardian, Student
from portal.roster.synthetic import write_roster
from portal.tasks import nightly_roster

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
