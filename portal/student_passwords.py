"""The district's default student password (SPEC §2.5): initials + birth date as mmddyy.

    default_password_for(student)  # Ana Garcia, 2012-03-09 -> "AG030912"

The first letter of the legal given name and of the legal family name, as the SIS sends them,
ASCII-folded and upper-cased, then the birth date as mmddyy. It is computed from the roster
record when a student signs in (portal.backends), never stored or hashed in bulk. A student with
no birth date, or whose name has no letter that folds to ASCII, has no default: staff issue a
one-time code instead (portal.student_codes).
"""

import unicodedata

# Letters that NFKD does not decompose into an ASCII base letter. Only the first letter of a
# name is used, so a fold to two letters (Æ -> AE) keeps the first one.
_FOLDS = str.maketrans(
    {
        "Đ": "D",
        "đ": "d",
        "Ð": "D",
        "ð": "d",
        "Ø": "O",
        "ø": "o",
        "Ł": "L",
        "ł": "l",
        "Æ": "A",
        "æ": "a",
        "Œ": "O",
        "œ": "o",
        "ß": "s",
        "ẞ": "S",
        "Þ": "T",
        "þ": "t",
        "Ħ": "H",
        "ħ": "h",
        "\u0131": "i",  # dotless i
        "Ŧ": "T",
        "ŧ": "t",
        "Ŋ": "N",
        "ŋ": "n",
        "Ŀ": "L",
        "ŀ": "l",
    }
)


def ascii_fold(text):
    """`text` with accents removed and special letters folded: "Ñúñez" -> "Nunez"."""
    decomposed = unicodedata.normalize("NFKD", str(text).translate(_FOLDS))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def initial(name):
    """The first ASCII letter of `name` once folded, upper-case; "" when there is none.

    Leading punctuation and spaces are skipped ("'Ana" -> "A"); a name written only in a
    script that does not fold to ASCII has no initial.
    """
    for char in ascii_fold(name):
        if char.isascii() and char.isalpha():
            return char.upper()
    return ""


def default_password_for(student):
    """The default password of `student` (a portal.models.Student), or None if it has none."""
    if student is None or student.birth_date is None:
        return None
    given, family = initial(student.given_name), initial(student.family_name)
    if not given or not family:
        return None
    return f"{given}{family}{student.birth_date:%m%d%y}"
