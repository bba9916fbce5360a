"""The password policy (SPEC §6.3, checklist H1-H12) through Django's validate_password, i.e. the
AUTH_PASSWORD_VALIDATORS every set-password form uses."""

import gzip
import unicodedata
from datetime import date
from pathlib import Path

import django
import pytest
from django.contrib.auth.password_validation import (
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string

from portal.models import Guardian, Student, User
from portal.password_validation import (
    BREACHED_LIST_PATH,
    min_length_for,
    password_rules,
)
from portal.passwords import normalise_password
from portal.student_passwords import default_password_for

PASSPHRASE = "correct horse battery staple"


def errors(password, user=None):
    """The validation error codes for `password` (empty when accepted)."""
    try:
        validate_password(password, user)
    except ValidationError as error:
        return {e.code for e in error.error_list}
    return set()


def parent():
    guardian = Guardian(
        sourced_id="g-1",
        given_name="María José",
        family_name="García-López",
        email="mj.garcia@example.org",
        role=Guardian.Role.PARENT,
    )
    return User(
        username="mgarcialopez",
        first_name="María José",
        last_name="García-López",
        role=User.Role.PARENT,
        guardian=guardian,
    )


def student(grade="08"):
    record = Student(
        sourced_id="s-1",
        given_name="Ana",
        family_name="Nguyễn",
        preferred_given_name="Annie",
        student_number="40517",
        birth_date=date(2012, 4, 15),
        grade=grade,
    )
    return User(username="40517", role=User.Role.STUDENT, student=record)


# --- H1/H2: length ------------------------------------------------------------------------------


def test_twelve_characters_at_least_for_parents():
    assert errors("purple kett", parent()) == {"password_too_short"}  # 11
    assert errors("purple kettl", parent()) == set()  # 12


def test_students_in_grade_six_and_up_need_twelve():
    assert errors("kettlewhale", student("06")) == {"password_too_short"}
    assert errors("kettlewhales", student("06")) == set()


@pytest.mark.parametrize("grade", ["KG", "PK", "TK", "01", "03", "05"])
def test_students_below_grade_six_need_eight(grade):
    young = student(grade)
    assert min_length_for(young) == 8
    assert errors("kettlew", young) == {"password_too_short"}  # 7
    assert errors("kettlewh", young) == set()  # 8


def test_the_short_reason_names_the_length():
    with pytest.raises(ValidationError) as raised:
        validate_password("short one", parent())
    assert "at least 12 characters" in " ".join(raised.value.messages)


def test_at_most_128_characters():
    words = "plum kettle orbit juniper velvet harbor quill ember "  # 52
    long_128 = (words * 3)[:128]
    assert len(long_128) == 128
    assert errors(long_128, parent()) == set()
    assert errors(long_128 + "x", parent()) == {"password_too_long"}


def test_a_huge_password_is_refused_without_trouble():
    assert "password_too_long" in errors("tangerine " * 500, parent())


# --- H3/H7: no composition rules, any characters -------------------------------------------------


def test_a_lower_case_passphrase_with_spaces_is_accepted():
    assert errors(PASSPHRASE, parent()) == set()
    assert errors(PASSPHRASE) == set()


def test_no_rule_asks_for_digits_capitals_or_symbols():
    texts = " ".join(password_validators_help_texts()).lower()
    for word in ("uppercase", "upper-case", "digit", "must contain", "special character"):
        assert word not in texts
    assert errors("839274619283", parent()) == set()  # all digits, random: allowed


@pytest.mark.parametrize(
    "password",
    ["mañana 🦊 tacos en la playa", "Đêm nay trời đẹp quá", "日本語のながいパスワードです"],
)
def test_unicode_is_accepted(password):
    assert errors(password, parent()) == set()


def test_normal_form_counts_code_points_and_matches_composed_with_decomposed():
    composed = "mañana tacos en la playa"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert normalise_password(decomposed) == composed
    assert normalise_password("\uff46\uff55\uff4c\uff4c") == "full"  # full-width letters fold too
    assert normalise_password("Spaces Stay ") == "Spaces Stay "  # nothing else is changed


# --- H4/H5: common and breached passwords --------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["password1234", "qwertyuiop", "iloveyou123", "123456789012345", "1q2w3e4r5t6y"],
)
def test_common_passwords_are_refused(password):
    assert errors(password, parent()) & {"password_too_common", "password_breached"}


def _djangos_list():
    path = Path(django.__file__).parent / "contrib/auth/common-passwords.txt.gz"
    with gzip.open(path, "rt") as lines:
        return {line.strip() for line in lines}


@pytest.mark.parametrize(
    "password",
    [
        "trustno1trustno1",  # in the bundled list only
        "Welcome123!",  # a common word with numbers and symbols around it
        "Summer2024!!",
        "P@ssw0rd2024",  # look-alike characters
        "abc123abc123",  # a repeat
        "aaaaaaaaaaaa",
        "123456789012",  # a run
        "portal2026",  # the service's own name
    ],
)
def test_breached_and_patterned_passwords_beyond_djangos_list_are_refused(password):
    assert password.lower() not in _djangos_list()
    assert "password_breached" in errors(password, parent())


def test_the_bundled_list_adds_to_djangos():
    bundled = {
        line.strip()
        for line in BREACHED_LIST_PATH.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert len(bundled) > 100
    assert not bundled & _djangos_list()
    for password in bundled:
        assert "password_breached" in errors(password)


def test_the_breached_reason_suggests_a_passphrase():
    with pytest.raises(ValidationError) as raised:
        validate_password("Welcome123!", parent())
    assert "unrelated words" in " ".join(raised.value.messages)


# --- H6/K2: built from the person's details ------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "mgarcialopez kettle",  # username
        "kettle whale garcia",  # family name, accent folded
        "GARCÍA kettle whale",  # any case
        "López kettle whale!",  # the second family name
        "maria kettle whales",  # given name
        "josé kettle whales!",
        "mj.garcia kettle 22",  # email name
    ],
)
def test_a_parents_names_username_and_email_are_refused(password):
    assert "password_too_personal" in errors(password, parent())


@pytest.mark.parametrize(
    "password",
    [
        "40517 kettle whale",  # student number
        "kettle annie whale",  # preferred name
        "nguyen kettle whale",  # family name without its accents
        "kettle 041512 whale",  # mmddyy
        "kettle 04152012 whale",  # mmddyyyy
        "kettle 2012-04-15 whale",  # ISO
        "kettle 15/04/2012 whale",  # dd/mm/yyyy
        "kettle 150412 whale",  # ddmmyy
        "kettle 4/15/2012 whale",  # m/d/yyyy
        "kettle 20120415 whale",  # yyyymmdd
    ],
)
def test_a_students_number_names_and_birth_date_in_any_format_are_refused(password):
    assert "password_too_personal" in errors(password, student())


def test_a_three_letter_name_is_refused_only_as_a_word():
    user = student()
    assert "password_too_personal" in errors("ana kettle whale", user)
    assert errors("banana kettle whale", user) == set()


@pytest.mark.parametrize("variant", ["AN041512", "an041512", "An041512", "AN041512!", "!an041512"])
def test_the_student_default_and_its_variants_are_refused(variant):
    user = student("03")  # 8 characters is long enough here: only the content refuses it
    assert default_password_for(user.student) == "AN041512"
    assert "password_too_personal" in errors(variant, user)


def test_the_default_uses_ascii_initials():
    record = Student(given_name="Ñandú", family_name="Đặng", birth_date=date(2012, 3, 9))
    assert default_password_for(record) == "ND030912"


def test_personal_checks_are_skipped_without_a_person():
    assert errors("kettle 041512 whale") == set()


def test_the_personal_reason_is_plain():
    with pytest.raises(ValidationError) as raised:
        validate_password("kettle 041512 whale", student())
    assert "birth date" in " ".join(raised.value.messages)


# --- the rules shown before the person types -----------------------------------------------------


def test_the_rules_name_the_persons_own_minimum():
    assert "at least 12 characters" in password_rules(user=parent())[0]
    assert "at least 8 characters" in password_rules(user=student("02"))[0]


def test_the_rules_snippet_lists_every_rule():
    rules = password_rules(user=parent())
    html = render_to_string("includes/password_rules.html", {"rules": rules})
    assert 'id="password-rules"' in html
    assert html.count("<li>") == len(rules) == 4
