"""Parent usernames: made from the name, ASCII-folded and lower case, unique, never the email.

    username_base(given_name="María José", family_name="García-López") -> "maria.garcia-lopez"
    allocator = UsernameAllocator(); allocator.allocate("maria.garcia") -> "maria.garcia" / "...2"

A username is the first given name and the family name, folded to ASCII letters (Đ -> d,
ß -> ss, accents dropped), joined by a dot. Digits are never part of a base, so a base never
ends in one and a numeric suffix (`maria.garcia2`) can always be told apart from it; parent
usernames therefore never look like a student number either (those get the stricter login
throttle). The email is never used: it would leak the address and change with it.
"""

import functools
import re
import unicodedata

from django.db import connection

from portal.models import User

# Letters NFKD does not split into a base letter and a mark.
_FOLD = str.maketrans(
    {
        "Đ": "D", "đ": "d", "Ø": "O", "ø": "o", "Ł": "L", "ł": "l", "ß": "ss", "Æ": "AE",
        "æ": "ae", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th", "Ð": "D", "ð": "d",
        "\u0131": "i",  # dotless i
        "Ħ": "H", "ħ": "h",
    }
)  # fmt: skip
# ASCII apostrophe, right single quote, modifier apostrophe, grave and acute accents: O'Brien.
_APOSTROPHES = re.compile("['\u2019\u02bc`\u00b4]")
_PART_MAX = 30
FALLBACK_BASE = "parent"


def ascii_fold(value):
    """`value` with accents removed and special letters spelled in ASCII; other scripts drop."""
    decomposed = unicodedata.normalize("NFKD", (value or "").translate(_FOLD))
    return (
        "".join(c for c in decomposed if not unicodedata.combining(c))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


@functools.lru_cache(maxsize=1 << 16)  # names repeat a lot in a district: fold each once
def _given_part(given_name):
    # The first given name only: "Mary Ann" -> "mary".
    words = re.findall(r"[a-z]+", _APOSTROPHES.sub("", ascii_fold(given_name).lower()))
    return words[0][:_PART_MAX] if words else ""


@functools.lru_cache(maxsize=1 << 16)
def _family_part(family_name):
    # Hyphens stay ("garcia-lopez"); spaces and other marks go ("De la Cruz" -> "delacruz").
    folded = _APOSTROPHES.sub("", ascii_fold(family_name).lower())
    part = re.sub(r"[^a-z-]+", "", folded)
    return re.sub(r"-{2,}", "-", part).strip("-")[:_PART_MAX].strip("-")


def username_base(*, given_name, family_name):
    """The username a person of this name would get if nobody had it yet."""
    parts = [p for p in (_given_part(given_name), _family_part(family_name)) if p]
    return ".".join(parts) or FALLBACK_BASE


_STEM = re.compile(r"^(.*?)(\d*)$")


def split_suffix(username):
    """("maria.garcia", 2) for "maria.garcia2"; a bare name counts as number 1."""
    stem, digits = _STEM.match(username.lower()).groups()
    return stem, int(digits) if digits else 1


class UsernameAllocator:
    """Hands out unique usernames for bases, knowing which are taken in the database.

    For each base it remembers the highest number in use (the bare base is 1, `base2` is 2)
    and hands out the next one, so an allocation never equals an existing username, whatever
    gaps deleted accounts left. Existing usernames are looked up once per base, in one query
    per batch of new bases. Not safe across processes by itself: provisioning runs hold a lock.
    """

    def __init__(self):
        self._highest = {}

    def load(self, bases):
        """Learn the usernames in use for the bases not seen yet (one query)."""
        new = sorted({base for base in bases if base not in self._highest})
        if not new:
            return
        for base in new:
            self._highest[base] = 0
        for username in _usernames_with_stems(new):
            self._note(username)

    def allocate(self, base):
        if base not in self._highest:
            self.load([base])
        number = self._highest[base] + 1
        self._highest[base] = number
        return base if number == 1 else f"{base}{number}"

    def _note(self, username):
        stem, number = split_suffix(username)
        if stem in self._highest and number > self._highest[stem]:
            self._highest[stem] = number


def _usernames_with_stems(stems):
    """Existing usernames (lower case) whose stem, digits stripped, is one of `stems`."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT lower(username) FROM {User._meta.db_table} "  # noqa: S608 - our table
                "WHERE regexp_replace(lower(username), '[0-9]+$', '') = ANY(%s)",
                [list(stems)],
            )
            return [row[0] for row in cursor.fetchall()]
    # Elsewhere (SQLite, the demo's few hundred accounts): read them all and filter here.
    wanted = set(stems)
    return [
        name.lower()
        for name in User.objects.values_list("username", flat=True).iterator()
        if split_suffix(name)[0] in wanted
    ]
