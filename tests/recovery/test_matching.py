"""recovery.matching: the roster match staff see on a manual request, on generated data."""

import random
from datetime import date, timedelta

import pytest
from django.utils import timezone

from portal.models import Guardian, GuardianStudent, Organisation, Student, User
from recovery import matching
from recovery.matching import (
    ACCENTS,
    CASE,
    DIFFERENT,
    EQUIVALENT,
    EXACT,
    HYPHENS,
    NOT_GIVEN,
    PARTIAL,
    SPACES,
    compare_email,
    compare_name,
    match_request,
    school_for_student_number,
)
from recovery.models import ManualRequest

pytestmark = pytest.mark.django_db

FIRST_NAMES = ["Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofía", "Minh", "Linh", "Aarav", "Zoé"]
LAST_NAMES = ["Smith", "Nguyễn", "Pérez", "Tran", "Johnson", "O'Brien", "Kowalski", "Lee"]


def make_school(name="Lincoln Elementary", sourced_id="org-lincoln"):
    return Organisation.objects.create(sourced_id=sourced_id, name=name, type="school")


def make_student(number, given, family, *, school=None, grade="3", **extra):
    return Student.objects.create(
        sourced_id=f"s-{number}-{random.randrange(10**9)}",
        student_number=number,
        given_name=given,
        family_name=family,
        birth_date=date(2016, 3, 9),
        grade=grade,
        school=school,
        **extra,
    )


def make_guardian(student, given, family, *, email="", account=None, **extra):
    guardian = Guardian.objects.create(
        sourced_id=f"g-{given}-{family}-{random.randrange(10**9)}",
        given_name=given,
        family_name=family,
        email=email,
        email_normalised=email.strip().casefold(),
        role=Guardian.Role.PARENT,
        **extra,
    )
    GuardianStudent.objects.create(guardian=guardian, student=student)
    if account is not None:
        User.objects.create_user(
            username=f"u{guardian.sourced_id}",
            role=User.Role.PARENT,
            guardian=guardian,
            email=email,
            **account,
        )
    return guardian


def noise(count=40):
    """A roster around the students a test is about, so matches are found among others."""
    rng = random.Random(5)
    school = make_school("Noise Middle", "org-noise")
    for index in range(count):
        make_student(
            f"9{index:05d}", rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), school=school
        )


def request(**typed):
    values = {
        "reference": f"R-{random.randrange(10**8):08d}",
        "student_first_name": "Ana",
        "student_last_name": "García-López",
        "student_id": "123456",
        "request_type": "reset",
        "request_for": "parent",
        "parent_first_name": "María",
        "parent_last_name": "López",
        "parent_email": "maria.lopez@example.org",
        "answer_address": "maria.lopez@example.org",
    }
    values.update(typed)
    return ManualRequest.objects.create(**values)


@pytest.fixture
def ana():
    noise()
    school = make_school()
    student = make_student("123456", "Ana", "García-López", school=school)
    now = timezone.now()
    make_guardian(
        student,
        "María",
        "López",
        email="Maria.Lopez@example.org",
        account={"activated_at": now, "provisioned_at": now - timedelta(days=2)},
    )
    make_guardian(
        student,
        "José",
        "García",
        email="family@example.org",
        email_shared=True,
        unprovisioned_reason=Guardian.Unprovisioned.SHARED_EMAIL,
    )
    return student


# --- Comparing names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "recorded", "verdict", "differences"),
    [
        ("Ana", "Ana", EXACT, ()),
        ("  Ana  ", "Ana", EXACT, ()),
        ("ana", "Ana", EQUIVALENT, (CASE,)),
        ("Garcia-Lopez", "García-López", EQUIVALENT, (ACCENTS,)),
        ("garcia lopez", "García-López", EQUIVALENT, (CASE, ACCENTS, HYPHENS, SPACES)),
        ("GarciaLopez", "García-López", EQUIVALENT, (ACCENTS, HYPHENS)),
        ("Nguyen", "Nguyễn", EQUIVALENT, (ACCENTS,)),
        ("Dang", "Đặng", EQUIVALENT, (ACCENTS,)),
        ("OBrien", "O'Brien", EQUIVALENT, ("punctuation",)),
        ("Garcia", "García-López", PARTIAL, (ACCENTS,)),
        ("López", "García-López", PARTIAL, ()),
        ("Garcia", "Garcés", DIFFERENT, ()),
        ("Ana Maria", "Ana", DIFFERENT, ()),
        ("", "Ana", NOT_GIVEN, ()),
    ],
)
def test_compare_name_says_how_names_differ(typed, recorded, verdict, differences):
    comparison = compare_name(typed=typed, recorded=recorded)

    assert comparison.verdict == verdict
    assert comparison.differences == differences


def test_compare_email_uses_the_normal_form_and_says_which_address_matched():
    on_record = [("sis", "Maria.Lopez@Example.org"), ("recovery", "maria.home@example.org")]

    assert compare_email(typed=" maria.lopez@EXAMPLE.org ", on_record=on_record).source == "sis"
    assert compare_email(typed="maria.home@example.org", on_record=on_record).verdict == EXACT
    assert compare_email(typed="maria@elsewhere.org", on_record=on_record).verdict == DIFFERENT


# --- The match ------------------------------------------------------------------------------


def test_exact_match_names_the_student_school_and_grade(ana):
    match = match_request(manual_request=request())

    assert match.student.student.sourced_id == ana.sourced_id
    assert match.student.name_matches
    assert match.is_confident
    assert match.school_id == "org-lincoln"
    assert match.candidates == ()
    assert (
        match.reasons[0]
        == "Student ID 123456 matches Ana García-López (Lincoln Elementary, grade 3)."
    )
    assert "The first and last names typed match the record exactly." in match.reasons
    assert match.parent.name == "María López"
    assert "The parent email typed is this guardian's email on record." in match.reasons
    assert match.warnings == ()


def test_accent_case_and_hyphen_differences_are_explained(ana):
    match = match_request(
        manual_request=request(student_first_name="ANA", student_last_name="Garcia Lopez")
    )

    assert match.student.name_matches
    assert match.student.first_name.verdict == EQUIVALENT
    assert (
        "The student ID matches, but the last name typed (Garcia Lopez) differs from the record "
        "(García-López) only in accents, hyphens and spaces." in match.reasons
    )
    assert (
        "The student ID matches, but the first name typed (ANA) differs from the record (Ana) "
        "only in capital letters." in match.reasons
    )


def test_one_surname_of_two_is_a_partial_match(ana):
    match = match_request(manual_request=request(student_last_name="Garcia"))

    assert match.student.last_name.verdict == PARTIAL
    assert match.student.name_matches
    assert (
        "The student ID matches, but the last name typed (Garcia) is only one part of the record "
        "(García-López), and differs from it in accents." in match.reasons
    )


def test_wrong_student_id_lists_candidates_by_name(ana):
    other_school = make_school("Washington High", "org-washington")
    namesake = make_student("777001", "Ana", "Garcia Lopez", school=other_school, grade="10")

    match = match_request(
        manual_request=request(student_id="999999", student_last_name="garcía-lópez")
    )

    assert match.student is None
    assert match.school_id is None
    assert not match.is_confident
    ids = [candidate.student.sourced_id for candidate in match.candidates]
    assert ids == [ana.sourced_id, namesake.sourced_id]  # the closer spelling first
    assert match.reasons[0] == "No student has the ID 999999."
    assert match.reasons[0] in match.warnings
    assert (
        "Students with the name typed: Ana García-López, ID 123456 (Lincoln Elementary, grade 3); "
        "Ana Garcia Lopez, ID 777001 (Washington High, grade 10)." in match.reasons
    )
    assert match.accounts == ()  # two candidates: no account is "the" one yet


def test_wrong_student_id_with_one_namesake_checks_that_students_guardians(ana):
    match = match_request(manual_request=request(student_id="654321"))

    assert [c.student.sourced_id for c in match.candidates] == [ana.sourced_id]
    assert (
        "The checks below are against Ana García-López, the only student with the name typed."
        in match.reasons
    )
    assert "María López is a guardian of this student on record (Parent)." in match.reasons
    assert {account.name for account in match.accounts} == {
        "Ana García-López",
        "María López",
        "José García",
    }


def test_id_of_another_student_gives_a_name_warning_and_candidates(ana):
    make_student("555555", "Bao", "Tran")

    match = match_request(manual_request=request(student_id="555555"))

    assert match.student.first_name.verdict == DIFFERENT
    assert not match.is_confident
    assert (
        "The student ID matches, but the first name typed (Ana) is not the one on record (Bao)."
        in match.warnings
    )
    assert [c.student.sourced_id for c in match.candidates] == [ana.sourced_id]


def test_a_parent_who_is_not_a_guardian_of_that_student(ana):
    other = make_student("222222", "Ben", "Smith")
    make_guardian(other, "Maria", "Lopez", email="maria.lopez@example.org")

    match = match_request(
        manual_request=request(parent_first_name="Maria", parent_last_name="Lopez-Smith")
    )

    assert match.parent is None
    assert "No guardian of this student has the name Maria Lopez-Smith." in match.warnings


def test_parent_name_with_accent_differences_still_finds_the_guardian(ana):
    match = match_request(
        manual_request=request(parent_first_name="maria", parent_last_name="LOPEZ")
    )

    assert match.parent.name == "María López"
    assert (
        "The parent's first name typed (maria) differs from the guardian's record (María) only "
        "in capital letters and accents." in match.reasons
    )


def test_typed_parent_email_not_on_record(ana):
    match = match_request(manual_request=request(parent_email="attacker@evil.example"))

    assert match.parent.name == "María López"
    assert not match.parent.email_matches
    assert (
        "The parent email typed is not the one on record; answers go only to the contact on "
        "record." in match.warnings
    )


def test_typed_parent_email_matching_the_verified_recovery_email(ana):
    user = User.objects.get(guardian__given_name="María")
    user.recovery_email = "Maria.Home@example.org"
    user.recovery_email_normalised = "maria.home@example.org"
    user.recovery_email_verified_at = timezone.now()
    user.save()

    match = match_request(manual_request=request(parent_email="maria.home@EXAMPLE.org"))

    assert match.parent.email.source == "recovery"
    assert (
        "The parent email typed is the verified recovery email of this guardian's account."
        in match.reasons
    )


def test_typed_email_of_another_guardian_is_pointed_out(ana):
    match = match_request(manual_request=request(parent_email="FAMILY@example.org"))

    assert match.parent.name == "María López"
    assert (
        "The parent email typed belongs to another guardian of this student: José García."
        in match.warnings
    )


def test_accounts_involved_and_their_states(ana):
    student_user = User.objects.create_user(
        username="123456", role=User.Role.STUDENT, student=ana, default_password_active=True
    )
    student_user.login_locked_at = timezone.now()
    student_user.save()

    match = match_request(manual_request=request())

    by_name = {account.name: account for account in match.accounts}
    assert by_name["Ana García-López"].state == matching.ACTIVE
    assert by_name["Ana García-López"].login_locked
    assert by_name["Ana García-López"].user == student_user
    assert "first password" in by_name["Ana García-López"].reason
    assert by_name["María López"].state == matching.ACTIVE
    assert not by_name["María López"].has_self_serve
    assert by_name["José García"].state == matching.NO_ACCOUNT
    assert by_name["José García"].reason == "Email shared with another guardian"


def test_account_states_not_activated_and_disabled(ana):
    guardian = make_guardian(
        ana, "Lan", "Pham", email="lan@example.org", account={"provisioned_at": timezone.now()}
    )
    disabled = make_guardian(
        ana,
        "Tom",
        "Reyes",
        email="tom@example.org",
        account={"is_active": False, "disabled_by_sis": True},
    )

    by_id = {a.sourced_id: a for a in match_request(manual_request=request()).accounts}

    assert by_id[guardian.sourced_id].state == matching.NOT_ACTIVATED
    assert by_id[disabled.sourced_id].state == matching.DISABLED
    assert "deactivated" in by_id[disabled.sourced_id].reason


def test_the_match_never_carries_a_birth_date(ana):
    match = match_request(manual_request=request(student_id="654321"))

    text = repr(match)
    for shape in ("2016-03-09", "030916", "03/09/2016", "birth"):
        assert shape not in text


def test_request_for_a_student_compares_the_student_email(ana):
    ana.email = "ana.g@students.example.org"
    ana.save()

    match = match_request(
        manual_request=request(
            request_for="student",
            parent_first_name="",
            parent_last_name="",
            parent_email="",
            student_email="ANA.G@students.example.org",
        )
    )

    assert match.student.email.matches
    assert "The student email typed is the student's email on record." in match.reasons
    assert "No parent name was typed." not in match.reasons


def test_school_for_student_number_is_exact_and_unique(ana):
    assert school_for_student_number(student_number=" 123456 ") == "org-lincoln"
    assert school_for_student_number(student_number="12345") is None
    make_student("123456", "Other", "Child", school=make_school("Elm", "org-elm"))
    assert school_for_student_number(student_number="123456") is None


def test_reasons_follow_the_active_language(ana):
    from django.utils import translation

    with translation.override("es"):
        match = match_request(manual_request=request(student_id="999999"))

    assert match.reasons[0] != "No student has the ID 999999."


def test_the_sqlite_demo_prefilter_keeps_every_name_that_may_fold_equal():
    import re

    from recovery.matching import _name_parts, _name_regex

    def kept(typed, recorded):
        patterns = [
            child[1] for child in _name_regex(_name_parts(typed), field="family_name").children
        ]
        return any(re.search(pattern, recorded) for pattern in patterns)

    assert kept("garcia lopez", "García-López")
    assert kept("Garcia", "García-López")
    assert kept("lopez", "García López")
    assert kept("Nguyen", "NGUYỄN")
    assert kept("obrien", "O'Brien")
    assert not kept("Garcia", "Garcés")
    assert not kept("Lopez", "Lopezinski")


def test_a_common_family_name_does_not_crowd_out_the_student_asked_about():
    Student.objects.bulk_create(
        Student(
            sourced_id=f"a-{n:04d}",
            student_number=str(500000 + n),
            given_name=FIRST_NAMES[n % 5],  # never Linh
            family_name="Nguyễn",
        )
        for n in range(400)
    )
    wanted = make_student("888888", "Linh", "Nguyen")
    wanted.sourced_id = "zzz-last"
    Student.objects.filter(student_number="888888").update(sourced_id="zzz-last")

    match = match_request(
        manual_request=request(
            student_id="1", student_first_name="linh", student_last_name="NGUYEN"
        )
    )

    assert [c.student.sourced_id for c in match.candidates] == ["zzz-last"]


def test_confidence_needs_the_guardian_only_for_a_parents_request(ana):
    stranger = {"parent_first_name": "Rex", "parent_last_name": "Stranger"}

    assert not match_request(manual_request=request(**stranger)).is_confident
    assert match_request(manual_request=request(request_for="student", **stranger)).is_confident
