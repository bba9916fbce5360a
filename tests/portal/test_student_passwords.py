"""The default student password of SPEC §2.5: initials, ASCII-folded, upper-case, + mmddyy."""

import datetime as dt

import pytest

from portal.models import Student
from portal.student_passwords import ascii_fold, default_password_for, initial


def student(given, family, birth_date=dt.date(2012, 3, 9)):
    # Not saved: the formula reads only the record's fields.
    return Student(given_name=given, family_name=family, birth_date=birth_date)


def test_the_specs_example():
    assert default_password_for(student("Ana", "Garcia")) == "AG030912"


@pytest.mark.parametrize(
    ("given", "family", "expected"),
    [
        ("Ana", "García-López", "AG"),
        ("ana", "garcia", "AG"),  # upper-cased whatever the SIS sends
        ("Ñúñez", "Ñúñez", "NN"),
        ("Đặng", "Đỗ", "DD"),
        ("Ólafur", "Ørsted", "OO"),
        ("Łucja", "Æsir", "LA"),
        ("Élodie", "Ünal", "EU"),
        ("  Ana ", " 'Garcia", "AG"),  # spaces and leading punctuation skipped
        ("\uff2d\uff41\uff52\uff49\uff41", "\uff2c\uff45\uff45", "ML"),  # full-width letters
    ],
)
def test_initials_are_ascii_folded_and_upper_case(given, family, expected):
    assert default_password_for(student(given, family)) == f"{expected}030912"


def test_birth_date_is_mmddyy():
    assert default_password_for(student("Bao", "Tran", dt.date(2009, 11, 30))) == "BT113009"
    assert default_password_for(student("Bao", "Tran", dt.date(2000, 1, 2))) == "BT010200"


def test_no_birth_date_means_no_default():
    assert default_password_for(student("Ana", "Garcia", None)) is None


def test_a_name_with_no_letter_that_folds_to_ascii_has_no_default():
    assert initial("李") == ""
    assert default_password_for(student("李", "Garcia")) is None
    assert default_password_for(student("Ana", "")) is None
    assert default_password_for(None) is None


def test_ascii_fold_keeps_the_letters_and_drops_marks():
    assert ascii_fold("García-López Ñúñez Đặng") == "Garcia-Lopez Nunez Dang"
