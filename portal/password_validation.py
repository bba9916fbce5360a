"""The district's password policy as Django password validators (SPEC §6.3; checklist H1-H12).

Wired in settings AUTH_PASSWORD_VALIDATORS, so every set-password form (activation, reset,
first-login change, the account page's PasswordChangeForm) applies the same rules:

- MinimumLengthValidator: at least 12 characters; 8 for students below grade 6 (a documented
  risk acceptance for young children, checklist H1 / Appendix 2.1). Counted in code points of the
  NFKC form, the form that is hashed (portal.passwords).
- MaximumLengthValidator: at most 128 (checklist H2: no truncation, and no hashing of megabytes).
- Django's CommonPasswordValidator (about 20,000 common passwords).
- BreachedPasswordValidator: works offline (no password, hash or prefix ever leaves the server).
  A small bundled list of frequently breached passwords Django's list misses, plus the patterns
  breach corpora are full of: a common word with numbers or symbols around it ("Welcome123!"),
  look-alike characters ("P@ssw0rd"), repeats ("abc123abc123") and runs ("123456789012").
  A full breach corpus (hundreds of millions of hashes) is deliberately not shipped; these
  rules catch the guesses that online attacks actually try first.
- PersonalInformationValidator: nothing built from the person's names (given, family, middle,
  preferred, from the account and the SIS record), username, student number, email name, birth
  date in any common format, or the student's district default password (initials + mmddyy),
  compared case-insensitively after NFKC (and with accents folded).

No composition rules (checklist H3): no validator asks for digits, capitals or symbols, which is
why Django's NumericPasswordValidator is not used. Each validator's get_help_text is plain words;
password_rules(user=...) gives the list shown before the person types.
"""

import gzip
import re
import unicodedata
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.passwords import normalise_password
from portal.student_passwords import ascii_fold, default_password_for

MIN_LENGTH = 12
YOUNG_STUDENT_MIN_LENGTH = 8
MAX_LENGTH = 128
# OneRoster grade codes below grade 6: infant/toddler, preschool, pre-K, transitional K, K, 1-5.
YOUNG_GRADES = frozenset(
    {"IT", "PR", "PS", "PK", "TK", "KG", "K"} | {f"{g:02d}" for g in range(1, 6)} | set("12345")
)
BREACHED_LIST_PATH = Path(__file__).resolve().parent / "data" / "breached_passwords.txt"

# Look-alike characters people swap in for letters ("P@ssw0rd").
_LEET = str.maketrans("013457@$", "oieastas")
# Numbers, symbols and spaces stuck before or after a word ("!!summer2024", "welcome 123").
_EDGE_JUNK = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\s\-_./\\,:;'\u2019]+")
_NOT_LETTERS = re.compile(r"[^\w]+|[\d_]+")
_DIGIT_RUNS = "01234567890123456789"


def fold(text):
    """Case-insensitive comparison form: NFKC, casefold."""
    return unicodedata.normalize("NFKC", str(text or "")).casefold()


def _variants(password):
    """The password's comparison forms: folded, accent-folded, and both without separators."""
    folded = fold(password)
    forms = {folded, ascii_fold(folded)}
    return forms | {_SEPARATORS.sub("", form) for form in forms}


def min_length_for(user):
    """12, or 8 for a student below grade 6 (grade from the SIS record)."""
    student = getattr(user, "student", None) if user is not None else None
    grade = (getattr(student, "grade", "") or "").strip().upper()
    if grade in YOUNG_GRADES:
        return YOUNG_STUDENT_MIN_LENGTH
    return MIN_LENGTH


class MinimumLengthValidator:
    def __init__(self, min_length=MIN_LENGTH, young_student_min_length=YOUNG_STUDENT_MIN_LENGTH):
        self.min_length = min_length
        self.young_student_min_length = young_student_min_length

    def required_length(self, user=None):
        if min_length_for(user) == YOUNG_STUDENT_MIN_LENGTH:
            return self.young_student_min_length
        return self.min_length

    def validate(self, password, user=None):
        required = self.required_length(user)
        if len(normalise_password(password)) < required:
            raise ValidationError(
                ngettext(
                    "This password is too short. Use at least %(min_length)d character.",
                    "This password is too short. Use at least %(min_length)d characters.",
                    required,
                ),
                code="password_too_short",
                params={"min_length": required},
            )

    def get_help_text(self):
        return _(
            "Use at least %(min_length)d characters (%(young_min_length)d for students in "
            "grade 5 or below). A few unrelated words make a long password that is easy to "
            "remember."
        ) % {"min_length": self.min_length, "young_min_length": self.young_student_min_length}


class MaximumLengthValidator:
    def __init__(self, max_length=MAX_LENGTH):
        self.max_length = max_length

    def validate(self, password, user=None):
        if len(normalise_password(password)) > self.max_length:
            raise ValidationError(
                _("This password is too long. Use at most %(max_length)d characters."),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self):
        return _(
            "Use at most %(max_length)d characters. Spaces, capital letters, numbers, symbols "
            "and letters from any language are all allowed, and none is required."
        ) % {"max_length": self.max_length}


@cache
def _breached_passwords(path):
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return frozenset(
            fold(line.strip()) for line in lines if line.strip() and not line.startswith("#")
        )


@cache
def _common_passwords():
    return frozenset(CommonPasswordValidator().passwords)


def _service_words():
    words = {"portal", "password", "passwort", "contraseña", "contrasena", "matkhau"}
    for word in re.split(r"\W+", fold(getattr(settings, "DISTRICT_NAME", ""))):
        if len(word) >= 4 and word not in {"school", "district", "unified", "public", "county"}:
            words.add(word)
    return words


def _is_repetition(text):
    # "abcabc", "aaaa": the text is found again inside itself doubled, before its full length.
    return len(text) >= 2 and (text + text).find(text, 1) < len(text)


def _is_run(text):
    if len(text) < 6:
        return False
    if text.isdigit():
        return text in _DIGIT_RUNS or text in _DIGIT_RUNS[::-1]
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    keyboard = "qwertyuiopasdfghjklzxcvbnm"
    return any(text in seq or text in seq[::-1] for seq in (alphabet, keyboard))


class BreachedPasswordValidator:
    """Offline breached/guessable check: a bundled list plus the patterns of breach corpora."""

    def __init__(self, list_path=BREACHED_LIST_PATH):
        self.list_path = str(list_path)

    def _is_guessable(self, password):
        breached = _breached_passwords(self.list_path)
        common = _common_passwords()
        known = breached | common
        for form in _variants(password):
            compact = _SEPARATORS.sub("", form)
            if form in known or compact in known:
                return True
            if _is_repetition(compact) or _is_run(compact):
                return True
            base = _EDGE_JUNK.sub("", form)
            for candidate in {base, base.translate(_LEET), form.translate(_LEET)}:
                candidate_compact = _SEPARATORS.sub("", candidate)
                if len(candidate_compact) < 4:
                    continue
                if (
                    candidate in known
                    or candidate_compact in known
                    or candidate_compact in _service_words()
                    or _is_repetition(candidate_compact)
                ):
                    return True
        return False

    def validate(self, password, user=None):
        if self._is_guessable(normalise_password(password)):
            raise ValidationError(
                _(
                    "This password is too easy to guess: it is, or is close to, a password "
                    "that has been stolen and published before. Try a few unrelated words "
                    "instead."
                ),
                code="password_breached",
            )

    def get_help_text(self):
        return _(
            "Do not use a common password, or one that has leaked before, even with numbers "
            "or symbols added (like Password1234 or Summer2024!)."
        )


def _name_parts(value):
    """The words of a name ("García-López" -> "garcía", "lópez") and the name run together."""
    folded = fold(value)
    words = [word for word in _NOT_LETTERS.split(folded) if word]
    parts = set(words)
    if len(words) > 1:
        parts.add("".join(words))
    return parts | {ascii_fold(part) for part in parts}


def _date_forms(date):
    """The birth date written the ways people write it, separators removed."""
    y4, y2 = f"{date.year:04d}", f"{date.year % 100:02d}"
    mm, dd = f"{date.month:02d}", f"{date.day:02d}"
    m, d = str(date.month), str(date.day)
    forms = {
        mm + dd + y2,  # 030912: the district default's date part
        mm + dd + y4,
        dd + mm + y2,
        dd + mm + y4,
        y4 + mm + dd,  # 2012-03-09
        y2 + mm + dd,
        y4 + dd + mm,
        m + d + y4,  # 3/9/2012
        d + m + y4,
        y4 + m + d,
    }
    return {form for form in forms if len(form) >= 6}


def personal_context(user):
    """(words, date forms) the person's password must not be built from."""
    words, dates = set(), set()
    if user is None:
        return words, dates
    for value in (user.first_name, user.last_name):
        words |= _name_parts(value)
    for identifier in (user.username, getattr(user, "email", "")):
        identifier = fold(identifier)
        local = identifier.split("@", 1)[0]
        words |= {identifier, local, ascii_fold(local)}
        words |= {part for part in re.split(r"[._+\-]+", local) if len(part) >= 4}
    for record in (getattr(user, "student", None), getattr(user, "guardian", None)):
        if record is None:
            continue
        for name in (
            record.given_name,
            record.family_name,
            record.middle_name,
            record.preferred_given_name,
        ):
            words |= _name_parts(name)
        for identifier in (record.username, getattr(record, "student_number", "")):
            if identifier:
                words.add(fold(identifier))
        if getattr(record, "birth_date", None):
            dates |= _date_forms(record.birth_date)
            default = default_password_for(record) or ""
            if default:
                words.add(fold(default))
    words = {word for word in words if len(word) >= 3}
    return words, dates


def _contains_personal_information(password, user):
    words, dates = personal_context(user)
    if not words and not dates:
        return False
    forms = _variants(password)
    tokens = set()
    for form in forms:
        tokens |= {token for token in _NOT_LETTERS.split(form) if token}
    for word in words:
        if len(word) >= 4:
            if any(word in form for form in forms):
                return True
        elif word in tokens:  # a three-letter name only as a word of its own ("ana", not "banana")
            return True
    digits_only = {re.sub(r"\D", "", form) for form in forms}
    return any(date in form for date in dates for form in forms | digits_only)


class PersonalInformationValidator:
    """Nothing built from the person's name, username, student number or birth date."""

    def validate(self, password, user=None):
        if _contains_personal_information(normalise_password(password), user):
            raise ValidationError(
                _(
                    "This password is too easy to guess: it contains your name, username, "
                    "student number or birth date. Try a few unrelated words instead."
                ),
                code="password_too_personal",
            )

    def get_help_text(self):
        return _("Do not use your name, username, student number or birth date, in any form.")


def password_rules(*, user=None):
    """The policy in plain words, in the order shown before the person types."""
    return [
        _(
            "Use at least %(min_length)d characters. A few unrelated words make a long password "
            "that is easy to remember, like “purple kettle sings loudly”."
        )
        % {"min_length": min_length_for(user)},
        MaximumLengthValidator().get_help_text(),
        BreachedPasswordValidator().get_help_text(),
        PersonalInformationValidator().get_help_text(),
    ]
