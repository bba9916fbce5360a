"""Match a manual request against the roster, for the staff member who opens it (SPEC §6.7).

    match = match_request(manual_request=row)
    match.student            # StudentMatch for the student number typed, or None
    match.candidates         # students with the typed name, when the ID does not fit
    match.parent             # GuardianMatch: the typed parent among THAT student's guardians
    match.reasons            # plain sentences saying why, for the request page
    match.accounts           # the accounts involved and their state

What families type is never proof of identity: the match only tells staff what the school's
records say, so they can act on the contact on record. Names are compared accent-, case-,
hyphen- and space-insensitively ("Garcia Lopez" ~ "García-López"), and each verdict says how
the typed value differs, so staff see "differs only in accents" rather than a bare yes/no.
Emails are compared on portal.normalisation's normal form.

Reads only (no writes). Student data leaves here as StudentSummary, which carries no birth
date: the request page must never show one (SPEC §6.6).
"""

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.models import Guardian, Student, User
from portal.normalisation import normalise_email

# --- Verdicts ---------------------------------------------------------------------------------

EXACT = "exact"  # the same text
EQUIVALENT = "equivalent"  # the same but for case, accents, hyphens, spaces or apostrophes
PARTIAL = "partial"  # the typed name is part of a compound name on record (one surname of two)
DIFFERENT = "different"
NOT_GIVEN = "not_given"  # nothing was typed
NO_RECORD = "no_record"  # nothing on record to compare with

# Differences a name may have and still match, in the order sentences list them.
CASE = "case"
ACCENTS = "accents"
HYPHENS = "hyphens"
SPACES = "spaces"
PUNCTUATION = "punctuation"
_KINDS = (CASE, ACCENTS, HYPHENS, SPACES, PUNCTUATION)
_KIND_WORDS = {
    CASE: gettext_lazy("capital letters"),
    ACCENTS: gettext_lazy("accents"),
    HYPHENS: gettext_lazy("hyphens"),
    SPACES: gettext_lazy("spaces"),
    PUNCTUATION: gettext_lazy("apostrophes or dots"),
}

_HYPHEN_CHARS = "-\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"
_PUNCTUATION_CHARS = "'`.\u2018\u2019\u02bc\u00b4"
# Letters that Unicode does not decompose into a base letter and a mark.
_LETTER_FOLDS = str.maketrans(
    {
        "Đ": "D",
        "đ": "d",
        "Ø": "O",
        "ø": "o",
        "Ł": "L",
        "ł": "l",
        "Æ": "AE",
        "æ": "ae",
        "Œ": "OE",
        "œ": "oe",
        "\u0131": "i",  # dotless i
        "Þ": "Th",
        "þ": "th",
        "ẞ": "SS",
    }
)
# Account states, as Q's request page shows them.
ACTIVE = "active"
NOT_ACTIVATED = "not_activated"
DISABLED = "disabled"
NO_ACCOUNT = "no_account"

_CANDIDATE_LIMIT = 10
_STUDENT_FIELDS = (
    "sourced_id",
    "active",
    "enabled",
    "given_name",
    "preferred_given_name",
    "family_name",
    "student_number",
    "email",
    "email_normalised",
    "grade",
    "school",
)


# --- Comparing names --------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One criterion: what was typed, what the record holds, and the verdict."""

    verdict: str
    typed: str = ""
    recorded: str = ""
    differences: tuple = ()  # of CASE, ACCENTS, HYPHENS, SPACES, PUNCTUATION (EQUIVALENT/PARTIAL)
    # For an email: "sis" (the SIS email) or "recovery" (the account's recovery email).
    source: str = ""

    @property
    def matches(self):
        return self.verdict in (EXACT, EQUIVALENT)

    @property
    def is_close(self):
        """Matches, or is one part of a compound name on record."""
        return self.verdict in (EXACT, EQUIVALENT, PARTIAL)


def clean_typed(value):
    """Trimmed, NFKC, runs of whitespace as one space: the form every comparison starts from."""
    return " ".join(unicodedata.normalize("NFKC", str(value or "")).split())


def fold_name(value, kinds=_KINDS):
    """`value` with the given kinds of difference removed (all of them by default)."""
    text = clean_typed(value)
    if ACCENTS in kinds:
        text = unicodedata.normalize("NFKD", text.translate(_LETTER_FOLDS))
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    if CASE in kinds:
        text = text.casefold()
    if HYPHENS in kinds:
        text = text.translate({ord(ch): None for ch in _HYPHEN_CHARS})
    if SPACES in kinds:
        text = text.replace(" ", "")
    if PUNCTUATION in kinds:
        text = text.translate({ord(ch): None for ch in _PUNCTUATION_CHARS})
    return text


def _name_parts(value):
    """The folded words of a name: "García-López" → ("garcia", "lopez")."""
    return _words(value, (CASE, ACCENTS, PUNCTUATION))


def compare_name(*, typed, recorded):
    """How the typed name compares with the one on record (a Comparison)."""
    typed_clean, recorded_clean = clean_typed(typed), clean_typed(recorded)
    if not typed_clean:
        return Comparison(verdict=NOT_GIVEN, recorded=recorded_clean)
    if not recorded_clean:
        return Comparison(verdict=NO_RECORD, typed=typed_clean)
    if typed_clean == recorded_clean:
        return Comparison(verdict=EXACT, typed=typed_clean, recorded=recorded_clean)
    if fold_name(typed_clean) == fold_name(recorded_clean):
        return Comparison(
            verdict=EQUIVALENT,
            typed=typed_clean,
            recorded=recorded_clean,
            differences=_differences(typed_clean, recorded_clean),
        )
    typed_parts, recorded_parts = _name_parts(typed_clean), _name_parts(recorded_clean)
    if typed_parts and _is_run_of(typed_parts, recorded_parts):
        # "Garcia" for "García-López": families often type one surname of two.
        return Comparison(
            verdict=PARTIAL,
            typed=typed_clean,
            recorded=recorded_clean,
            differences=_partial_differences(typed_clean, recorded_clean),
        )
    return Comparison(verdict=DIFFERENT, typed=typed_clean, recorded=recorded_clean)


def _is_run_of(parts, whole):
    size = len(parts)
    return size < len(whole) and any(
        whole[start : start + size] == parts for start in range(len(whole) - size + 1)
    )


def _differences(typed, recorded):
    """The kinds of difference that matter: each one that, left in, breaks the equality."""
    return tuple(
        kind
        for kind in _KINDS
        if fold_name(typed, tuple(k for k in _KINDS if k != kind))
        != fold_name(recorded, tuple(k for k in _KINDS if k != kind))
    )


def _partial_differences(typed, recorded):
    """For a PARTIAL name: does the typed part differ from its spelling on record in case or
    accents? ("Garcia" in "García-López": accents.)"""
    found = []
    for kind in (CASE, ACCENTS):
        others = tuple(k for k in (CASE, ACCENTS, PUNCTUATION) if k != kind)
        if not _is_run_of(_words(typed, others), _words(recorded, others)):
            found.append(kind)
    return tuple(found)


def _words(value, kinds):
    text = fold_name(value, kinds)
    for ch in _HYPHEN_CHARS:
        text = text.replace(ch, " ")
    return tuple(text.split())


def compare_first_name(*, typed, given_name, preferred_given_name=""):
    """The typed first name against the legal given name, or else the preferred one."""
    legal = compare_name(typed=typed, recorded=given_name)
    if legal.matches or not preferred_given_name:
        return legal
    preferred = compare_name(typed=typed, recorded=preferred_given_name)
    return preferred if _rank(preferred) < _rank(legal) else legal


def compare_email(*, typed, on_record):
    """The typed address against addresses on record: [(source, stored address), ...]."""
    typed_clean = clean_typed(typed)
    if not typed_clean:
        return Comparison(verdict=NOT_GIVEN)
    known = [(source, stored) for source, stored in on_record if stored]
    if not known:
        return Comparison(verdict=NO_RECORD, typed=typed_clean)
    normal = normalise_email(typed_clean)
    for source, stored in known:
        if normalise_email(stored) == normal:
            verdict = EXACT if stored.strip() == typed_clean else EQUIVALENT
            return Comparison(verdict=verdict, typed=typed_clean, recorded=stored, source=source)
    return Comparison(verdict=DIFFERENT, typed=typed_clean)


_RANKS = {EXACT: 0, EQUIVALENT: 1, PARTIAL: 2, DIFFERENT: 3, NO_RECORD: 4, NOT_GIVEN: 5}


def _rank(comparison):
    return _RANKS[comparison.verdict]


# --- What the match returns -------------------------------------------------------------------


@dataclass(frozen=True)
class StudentSummary:
    """What staff may see of a student record: never the birth date."""

    sourced_id: str
    name: str
    student_number: str
    school_id: str | None
    school_name: str
    grade: str
    active: bool

    @classmethod
    def of(cls, student):
        school = student.school
        return cls(
            sourced_id=student.sourced_id,
            name=student.full_name,
            student_number=student.student_number,
            school_id=school.sourced_id if school else None,
            school_name=school.name if school else "",
            grade=student.grade,
            active=student.active and student.enabled,
        )


@dataclass(frozen=True)
class Account:
    """An account involved in the request, and what staff can do with it."""

    person: str  # "student" or "guardian"
    name: str
    sourced_id: str  # the Student's or Guardian's SIS id
    state: str  # ACTIVE, NOT_ACTIVATED, DISABLED or NO_ACCOUNT
    reason: str  # plain words: why not active, or what to know ("" when nothing)
    user: User | None = None
    username: str = ""
    has_self_serve: bool = False  # a verified recovery email: a reset link can go there
    login_locked: bool = False
    guardian: Guardian | None = None

    @property
    def state_label(self):
        return {
            ACTIVE: _("Active"),
            NOT_ACTIVATED: _("Not activated yet"),
            DISABLED: _("Disabled"),
            NO_ACCOUNT: _("No account"),
        }[self.state]


@dataclass(frozen=True)
class GuardianMatch:
    """One guardian of the student, compared with the parent typed."""

    guardian: Guardian
    first_name: Comparison
    last_name: Comparison
    email: Comparison

    @property
    def name(self):
        return self.guardian.full_name

    @property
    def name_matches(self):
        return self.first_name.matches and self.last_name.is_close

    @property
    def email_matches(self):
        return self.email.matches


@dataclass(frozen=True)
class StudentMatch:
    """One student record compared with what was typed."""

    student: StudentSummary
    student_id: Comparison
    first_name: Comparison
    last_name: Comparison
    email: Comparison
    guardians: tuple = ()  # GuardianMatch for each guardian of this student
    parent: GuardianMatch | None = None  # the guardian the typed parent is, if any

    @property
    def name_matches(self):
        return self.first_name.matches and self.last_name.is_close


@dataclass(frozen=True)
class Match:
    """The roster match of one manual request."""

    student: StudentMatch | None  # the student whose number was typed
    candidates: tuple = ()  # StudentMatch for students with the typed name, other numbers
    reasons: tuple = ()  # plain sentences, in the order they should be read
    accounts: tuple = ()  # Account for the student and each of their guardians
    school_id: str | None = None
    warnings: tuple = field(default=())  # the reasons that need a staff member's attention
    for_parent: bool = True  # the request is for a parent's account (else a student's)

    @property
    def parent(self):
        return self.student.parent if self.student else None

    @property
    def is_confident(self):
        """The student ID and names fit, and for a parent's request a guardian has the name."""
        if self.student is None or not self.student.name_matches:
            return False
        return self.student.parent is not None if self.for_parent else True


# --- The match --------------------------------------------------------------------------------


def match_request(*, manual_request):
    """Match `manual_request` (a ManualRequest) against the roster; return a Match."""
    typed_number = clean_typed(manual_request.student_id)
    by_number = _students_by_number(typed_number)
    student = by_number[0] if by_number else None
    student_match = _compare_student(student, manual_request, by_number=True) if student else None
    candidates = ()
    if student_match is None or not student_match.name_matches:
        candidates = tuple(
            _compare_student(candidate, manual_request, by_number=False)
            for candidate in _students_by_name(
                first_name=manual_request.student_first_name,
                last_name=manual_request.student_last_name,
                exclude=student.sourced_id if student else None,
            )
        )
    reasons, warnings = _reasons(
        manual_request=manual_request,
        typed_number=typed_number,
        student_match=student_match,
        candidates=candidates,
        shared_number=len(by_number) > 1,
    )
    focus = student_match or (candidates[0] if len(candidates) == 1 else None)
    accounts = _accounts(student=student if student_match else None, focus=focus)
    return Match(
        student=student_match,
        candidates=candidates,
        reasons=tuple(reasons),
        accounts=accounts,
        school_id=student_match.student.school_id if student_match else None,
        warnings=tuple(warnings),
        for_parent=manual_request.request_for != "student",
    )


def school_for_student_number(*, student_number):
    """The school id of the one student with exactly this number, else None (one query).

    For the request form, which files a request under a school for staff scoping.
    """
    number = clean_typed(student_number)
    if not number:
        return None
    schools = list(
        Student.objects.filter(student_number=number).values_list("school_id", flat=True)[:2]
    )
    return schools[0] if len(schools) == 1 else None


# --- Reads ------------------------------------------------------------------------------------


def _students():
    return Student.objects.select_related("school").only(
        *_STUDENT_FIELDS, "school__name", "school__sourced_id"
    )


def _students_by_number(number):
    """Students with exactly this number (the active one first); normally one or none."""
    if not number:
        return []
    # An exact match only: a student number is what the SIS prints, not a name to fold.
    return list(_students().filter(student_number=number).order_by("-active", "sourced_id")[:2])


def _students_by_name(*, first_name, last_name, exclude):
    """Students whose names fit the typed ones (folded), best first, at most a few."""
    if not _name_parts(last_name) or not _name_parts(first_name):
        return []
    found = []
    for student in _students_named_like(first_name=first_name, last_name=last_name)[:200]:
        if student.sourced_id == exclude:
            continue
        first, last = _compare_names(student, first_name=first_name, last_name=last_name)
        if first.is_close and last.is_close:
            found.append((_rank(first) + _rank(last), not student.active, student))
    found.sort(key=lambda item: (item[0], item[1], item[2].sourced_id))
    return [student for _, _, student in found[:_CANDIDATE_LIMIT]]


def _students_named_like(*, first_name, last_name):
    """Students whose names may fold to the typed ones, or have them as one of their parts.

    A superset narrowed in the database (Python decides, with compare_name): a regular
    expression where each letter admits its accented forms and separators may sit anywhere.
    Both names narrow it, so a common family name (thousands of Nguyens) cannot crowd out
    the student asked about.
    """
    first_parts = _name_parts(first_name)
    given = _name_regex(first_parts, field="given_name") | _name_regex(
        first_parts, field="preferred_given_name"
    )
    family = _name_regex(_name_parts(last_name), field="family_name")
    return _students().filter(family & given).order_by("-active", "sourced_id")


def _name_regex(parts, *, field):
    gap = "[-\\s'.\u2010-\u2014\u2018\u2019]*"
    whole = gap.join(_letter_class(ch) for ch in "".join(parts))
    part_patterns = [gap.join(_letter_class(ch) for ch in part) for part in parts]
    boundary_start, boundary_end = "(^|[-\\s\u2010-\u2014])", "([-\\s\u2010-\u2014]|$)"
    one_part = boundary_start + "(" + "|".join(part_patterns) + ")" + boundary_end
    return Q(**{f"{field}__regex": f"^{gap}{whole}{gap}$"}) | Q(**{f"{field}__regex": one_part})


@cache
def _letter_variants():
    """Every Latin letter that folds to each ASCII letter: {"a": "aAáÁàÀ...", ...}."""
    variants = {}
    ranges = [(0x41, 0x5B), (0x61, 0x7B), (0xC0, 0x250), (0x1E00, 0x1F00)]
    for start, end in ranges:
        for code in range(start, end):
            ch = chr(code)
            folded = fold_name(ch, kinds=(ACCENTS, CASE))
            if len(folded) == 1 and "a" <= folded <= "z":
                variants.setdefault(folded, []).append(ch)
    return {letter: "".join(chars) for letter, chars in variants.items()}


def _letter_class(ch):
    variants = _letter_variants().get(ch)
    if variants:
        return f"[{variants}]"
    if ch == "s":  # pragma: no cover (s is a Latin letter: handled above)
        return "[sS]"
    return re.escape(ch)


def _guardians_of(student_sourced_id):
    return list(
        Guardian.objects.filter(links__student_id=student_sourced_id)
        .select_related("account")
        .order_by("-active", "family_name", "given_name", "sourced_id")
    )


def _student_account(student_sourced_id):
    return User.objects.filter(student_id=student_sourced_id).first()


# --- Comparing records ------------------------------------------------------------------------


def _compare_student(student, manual_request, *, by_number):
    typed_number = clean_typed(manual_request.student_id)
    if by_number:
        id_comparison = Comparison(
            verdict=EXACT, typed=typed_number, recorded=student.student_number
        )
    else:
        id_comparison = Comparison(
            verdict=DIFFERENT if typed_number else NOT_GIVEN,
            typed=typed_number,
            recorded=student.student_number,
        )
    first_name, last_name = _compare_names(
        student,
        first_name=manual_request.student_first_name,
        last_name=manual_request.student_last_name,
    )
    email = compare_email(
        typed=manual_request.student_email,
        on_record=_emails_on_record(student, account=_student_account(student.sourced_id)),
    )
    guardians = ()
    parent = None
    if by_number or manual_request.parent_first_name or manual_request.parent_last_name:
        guardians = tuple(
            _compare_guardian(guardian, manual_request)
            for guardian in _guardians_of(student.sourced_id)
        )
        parent = _best_guardian(guardians)
    return StudentMatch(
        student=StudentSummary.of(student),
        student_id=id_comparison,
        first_name=first_name,
        last_name=last_name,
        email=email,
        guardians=guardians,
        parent=parent,
    )


def _compare_guardian(guardian, manual_request):
    first_name, last_name = _compare_names(
        guardian,
        first_name=manual_request.parent_first_name,
        last_name=manual_request.parent_last_name,
    )
    return GuardianMatch(
        guardian=guardian,
        first_name=first_name,
        last_name=last_name,
        email=compare_email(
            typed=manual_request.parent_email,
            on_record=_emails_on_record(guardian, account=getattr(guardian, "account", None)),
        ),
    )


def _compare_names(person, *, first_name, last_name):
    """The typed first and last names against a Student's or Guardian's: (first, last)."""
    return (
        compare_first_name(
            typed=first_name,
            given_name=person.given_name,
            preferred_given_name=person.preferred_given_name,
        ),
        compare_name(typed=last_name, recorded=person.family_name),
    )


def _emails_on_record(person, *, account):
    """A Student's or Guardian's addresses for compare_email: the SIS one, and the recovery
    email of their account only once verified (an unverified one proves nothing)."""
    return [
        ("sis", person.email),
        ("recovery", account.recovery_email if account and account.has_self_serve else ""),
    ]


def _best_guardian(guardians):
    """The typed parent among these guardians: by name (the email only breaks ties)."""
    named = [match for match in guardians if match.name_matches]
    if not named:
        return None
    named.sort(key=lambda match: (not match.email_matches, _rank(match.last_name)))
    return named[0]


# --- Accounts ---------------------------------------------------------------------------------


def _accounts(*, student, focus):
    if focus is None:
        return ()
    accounts = []
    record = student or _students().filter(sourced_id=focus.student.sourced_id).first()
    if record is not None:
        accounts.append(_student_account_info(record))
    for guardian_match in focus.guardians or [
        _GuardianOnly(guardian) for guardian in _guardians_of(focus.student.sourced_id)
    ]:
        accounts.append(_guardian_account_info(guardian_match.guardian))
    return tuple(accounts)


@dataclass(frozen=True)
class _GuardianOnly:
    guardian: Guardian


def _student_account_info(student):
    return _account_info(
        person="student",
        name=student.full_name,
        sourced_id=student.sourced_id,
        user=_student_account(student.sourced_id),
        no_account_reason=lambda: (
            _("The student is not active in the school's records.")
            if not (student.active and student.enabled)
            else _("No portal account has been made for this student yet.")
        ),
    )


def _guardian_account_info(guardian):
    return _account_info(
        person="guardian",
        name=guardian.full_name,
        sourced_id=guardian.sourced_id,
        user=getattr(guardian, "account", None),
        no_account_reason=lambda: (
            str(Guardian.Unprovisioned(guardian.unprovisioned_reason).label)
            if guardian.unprovisioned_reason in Guardian.Unprovisioned.values
            else _("No account has been made yet (the nightly job has not run since).")
        ),
        guardian=guardian,
    )


def _account_info(*, person, name, sourced_id, user, no_account_reason, guardian=None):
    """The Account for `user`; without one, `no_account_reason()` says why."""
    if user is None:
        return Account(
            person=person,
            name=name,
            sourced_id=sourced_id,
            state=NO_ACCOUNT,
            reason=no_account_reason(),
            guardian=guardian,
        )
    notes = []
    if not user.is_active:
        state = DISABLED
        notes.append(
            _("Disabled because the school's records deactivated this person.")
            if user.disabled_by_sis
            else _("Disabled.")
        )
    elif user.role == User.Role.PARENT and user.activated_at is None:
        state = NOT_ACTIVATED
        notes.append(_("The welcome email's link has not been used yet."))
    else:
        state = ACTIVE
        if user.default_password_active:
            notes.append(_("Still on the district's first password; has not changed it yet."))
    if user.is_active:
        if user.has_self_serve:
            notes.append(_("Self Serve is set up: a reset link can go to the verified email."))
        else:
            notes.append(_("Self Serve is not set up: there is no verified recovery email."))
    if user.login_locked_at:
        notes.append(_("Sign-in is locked after too many failed attempts."))
    return Account(
        person=person,
        name=name,
        sourced_id=sourced_id,
        state=state,
        reason=" ".join(str(note) for note in notes),
        user=user,
        username=user.get_username(),
        has_self_serve=user.has_self_serve,
        login_locked=bool(user.login_locked_at),
        guardian=guardian,
    )


# --- Reasons ----------------------------------------------------------------------------------


def _describe_student(summary, *, with_number):
    details = [summary.school_name] if summary.school_name else []
    if summary.grade:
        details.append(_("grade %(grade)s") % {"grade": summary.grade})
    if not summary.active:
        details.append(_("not active"))
    text = summary.name
    if with_number:
        text = _("%(name)s, ID %(number)s") % {"name": text, "number": summary.student_number}
    return f"{text} ({', '.join(details)})" if details else text


def _kinds_text(kinds):
    words = [str(_KIND_WORDS[kind]) for kind in kinds]
    if len(words) <= 1:
        return "".join(words)
    return _("%(list)s and %(last)s") % {"list": ", ".join(words[:-1]), "last": words[-1]}


# What to say of a typed name that is not the one on record, by verdict. The student's name is
# checked once the student ID matched, so each verdict gets a sentence (a PARTIAL one that also
# differs in case or accents says so, under _PARTIAL_DIFFERING); the parent's name is named
# only when it fits a guardian's loosely.
_PARTIAL_DIFFERING = "partial_differing"
_STUDENT_NAME_SENTENCES = {
    EQUIVALENT: gettext_lazy(
        "The student ID matches, but the %(field)s typed (%(typed)s) differs from the "
        "record (%(recorded)s) only in %(kinds)s."
    ),
    _PARTIAL_DIFFERING: gettext_lazy(
        "The student ID matches, but the %(field)s typed (%(typed)s) is only one part "
        "of the record (%(recorded)s), and differs from it in %(kinds)s."
    ),
    PARTIAL: gettext_lazy(
        "The student ID matches, but the %(field)s typed (%(typed)s) is only one part "
        "of the record (%(recorded)s)."
    ),
    DIFFERENT: gettext_lazy(
        "The student ID matches, but the %(field)s typed (%(typed)s) is not the one on "
        "record (%(recorded)s)."
    ),
    NOT_GIVEN: gettext_lazy("No student %(field)s was typed."),
}
_GUARDIAN_NAME_SENTENCES = {
    EQUIVALENT: gettext_lazy(
        "The parent's %(field)s typed (%(typed)s) differs from the guardian's record "
        "(%(recorded)s) only in %(kinds)s."
    ),
    PARTIAL: gettext_lazy(
        "The parent's %(field)s typed (%(typed)s) is only one part of the guardian's "
        "record (%(recorded)s)."
    ),
}


def _name_sentence(*, label, comparison, sentences):
    """The sentence `sentences` holds for this comparison of a name, filled in (None if none)."""
    verdict = comparison.verdict
    if verdict == PARTIAL and comparison.differences and _PARTIAL_DIFFERING in sentences:
        verdict = _PARTIAL_DIFFERING
    sentence = sentences.get(verdict)
    if sentence is None:
        return None
    return sentence % {
        "field": label,
        "typed": comparison.typed,
        "recorded": comparison.recorded,
        "kinds": _kinds_text(comparison.differences),
    }


_FIELD_LABELS = {
    "first": gettext_lazy("first name"),
    "last": gettext_lazy("last name"),
}


def _reasons(*, manual_request, typed_number, student_match, candidates, shared_number):
    reasons, warnings = [], []

    def say(sentence, *, warn=False):
        if sentence:
            reasons.append(str(sentence))
            if warn:
                warnings.append(str(sentence))

    if student_match is not None:
        summary = student_match.student
        say(
            _("Student ID %(number)s matches %(student)s.")
            % {"number": typed_number, "student": _describe_student(summary, with_number=False)}
        )
        if shared_number:
            say(
                _("More than one student record has this ID; check the others in the SIS."),
                warn=True,
            )
        if not summary.active:
            say(_("This student is not active in the school's records."), warn=True)
        first, last = student_match.first_name, student_match.last_name
        if first.verdict == EXACT and last.verdict == EXACT:
            say(_("The first and last names typed match the record exactly."))
        for label, comparison in (("first", first), ("last", last)):
            say(
                _name_sentence(
                    label=str(_FIELD_LABELS[label]),
                    comparison=comparison,
                    sentences=_STUDENT_NAME_SENTENCES,
                ),
                warn=not comparison.is_close,
            )
    elif typed_number:
        say(_("No student has the ID %(number)s.") % {"number": typed_number}, warn=True)
    else:
        say(_("No student ID was typed."), warn=True)

    if candidates:
        say(
            _("Students with the name typed: %(students)s.")
            % {
                "students": "; ".join(
                    _describe_student(candidate.student, with_number=True)
                    for candidate in candidates
                )
            },
            warn=True,
        )
    elif student_match is None or not student_match.name_matches:
        say(_("No student on record has the name typed."))

    focus = student_match or (candidates[0] if len(candidates) == 1 else None)
    if focus is not None and student_match is None:
        say(
            _("The checks below are against %(student)s, the only student with the name typed.")
            % {"student": focus.student.name}
        )
    if focus is not None:
        _student_email_reasons(manual_request, focus, say)
        _parent_reasons(manual_request, focus, say)
    return reasons, warnings


def _student_email_reasons(manual_request, focus, say):
    email = focus.email
    if email.verdict == NOT_GIVEN:
        return
    if email.matches:
        say(
            _("The student email typed is the student's email on record.")
            if email.source == "sis"
            else _(
                "The student email typed is the verified recovery email of the student's account."
            )
        )
    elif email.verdict == NO_RECORD:
        say(_("The student has no email on record to compare the student email typed with."))
    else:
        say(
            _(
                "The student email typed is not the one on record; answers go only to the "
                "contact on record."
            ),
            warn=manual_request.request_for == "student",
        )


def _parent_reasons(manual_request, focus, say):
    typed_first = clean_typed(manual_request.parent_first_name)
    typed_last = clean_typed(manual_request.parent_last_name)
    typed_name = " ".join(part for part in (typed_first, typed_last) if part)
    for_parent = manual_request.request_for == "parent"
    if not focus.guardians:
        say(_("This student has no guardian on record."), warn=for_parent)
    parent = focus.parent
    if not typed_name:
        if for_parent:
            say(_("No parent name was typed."), warn=True)
    elif parent is None and focus.guardians:
        say(
            _("No guardian of this student has the name %(name)s.") % {"name": typed_name},
            warn=for_parent,
        )
    elif parent is not None:
        say(
            _("%(name)s is a guardian of this student on record (%(role)s).")
            % {"name": parent.name, "role": parent.guardian.get_role_display()}
        )
        for label, comparison in (("first", parent.first_name), ("last", parent.last_name)):
            if comparison.verdict in (EQUIVALENT, PARTIAL):
                say(
                    _name_sentence(
                        label=str(_FIELD_LABELS[label]),
                        comparison=comparison,
                        sentences=_GUARDIAN_NAME_SENTENCES,
                    )
                )
    if not clean_typed(manual_request.parent_email):
        return
    by_email = [match for match in focus.guardians if match.email_matches]
    if parent is not None and parent.email_matches:
        say(
            _("The parent email typed is this guardian's email on record.")
            if parent.email.source == "sis"
            else _(
                "The parent email typed is the verified recovery email of this guardian's account."
            )
        )
    elif by_email:
        other = by_email[0]
        say(
            _("The parent email typed belongs to another guardian of this student: %(name)s.")
            % {"name": other.name},
            warn=True,
        )
    else:
        say(
            _(
                "The parent email typed is not the one on record; answers go only to the contact "
                "on record."
            ),
            warn=for_parent,
        )


__all__ = [
    "ACTIVE",
    "DISABLED",
    "NOT_ACTIVATED",
    "NO_ACCOUNT",
    "Account",
    "Comparison",
    "GuardianMatch",
    "Match",
    "StudentMatch",
    "StudentSummary",
    "compare_email",
    "compare_name",
    "fold_name",
    "match_request",
    "school_for_student_number",
]
