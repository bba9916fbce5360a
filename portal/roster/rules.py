"""What a valid row is: the required columns, the accepted values and the row-error messages.

Both write paths (`postgres.py` in SQL, `plain.py` in Python) apply these same rules in the same
order, so a row gets the same first error message whichever path reads it; the parity test in
tests/portal/test_import_roster_parity.py holds them to it.
"""

FILES = ("orgs", "users", "demographics", "roles")

KNOWN_ROLES = frozenset(
    {
        # OneRoster 1.1 RoleType and 1.2 role values.
        "administrator", "aide", "guardian", "parent", "proctor", "relative", "student",
        "teacher", "counselor", "districtAdministrator", "principal", "siteAdministrator",
        "systemAdministrator",
    }
)  # fmt: skip
GUARDIAN_ROLES = ("parent", "guardian", "relative")  # in the order a 1.2 user's role is chosen
ORG_TYPES = frozenset({"school", "district", "local", "state", "national", "department"})

# Values are trimmed of spaces (the stray kind real exports have; SQL's plain btrim() is half
# the price of trimming a character set, which counts at a million rows).
FIELD_WHITESPACE = " "
# Emails are trimmed like portal.normalisation does (str.strip()): for ASCII addresses SQL's
# btrim() removes exactly these; non-ASCII addresses are trimmed in Python on both paths.
ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"

# (model field, max length, column label): a longer value is a row error, not a database error.
PERSON_LENGTHS = (
    ("given_name", 255, "givenName"),
    ("family_name", 255, "familyName"),
    ("middle_name", 255, "middleName"),
    ("preferred_given_name", 255, "preferredGivenName"),
    ("username", 255, "username"),
    ("email", 320, "email"),
)
STUDENT_LENGTHS = (("student_number", 64, "student number"), ("grade", 16, "grades"))
GUARDIAN_LENGTHS = (("phone", 64, "phone"), ("sms", 64, "sms"))
ORG_LENGTHS = (
    ("sourced_id", 255, "sourcedId"),
    ("name", 255, "name"),
    ("identifier", 255, "identifier"),
    ("parent_sourced_id", 255, "parentSourcedId"),
)

# Row-error messages ({} is filled with the value or the column as sent).
MISSING_SOURCED_ID = "missing sourcedId"
SOURCED_ID_TOO_LONG = "sourcedId longer than 255 characters"
DUPLICATE = "duplicate sourcedId (first on line {})"
BAD_STATUS = "status must be active or tobedeleted in a delta file"
BAD_ORG_TYPE = "unknown org type"
MISSING_NAME = "missing name"
BAD_ROLE = "unknown role"
NO_ROLE = "no role for this user (roles.csv)"
BAD_ENABLED = "enabledUser must be true or false"
MISSING_GIVEN = "missing givenName"
MISSING_FAMILY = "missing familyName"
TOO_LONG = "{} longer than {} characters"
BAD_BIRTH_DATE = "birthDate is not a YYYY-MM-DD date"
MISSING_USER = "missing userSourcedId"

# A birth date must match this, have a year in this range, and be a real calendar day.
BIRTH_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
BIRTH_YEARS = (1900, 2100)
ERROR_SHARE = 0.01  # more rows in error than this share of all rows aborts the run
ERRORS_KEPT = 1000  # the summary lists this many row errors; the count is always exact


def required_columns(file, *, version, mode, student_number_field):
    """The header names a file must carry (others are optional and read as blank)."""
    delta = ("status", "dateLastModified") if mode == "delta" else ()
    if file == "orgs":
        return ("sourcedId", *delta, "name", "type")
    if file == "demographics":
        return ("sourcedId", *delta, "birthDate")
    if file == "roles":
        return ("sourcedId", *delta, "userSourcedId", "roleType", "role", "orgSourcedId")
    columns = ["sourcedId", *delta, "enabledUser", "givenName", "familyName", "email"]
    columns += ["agentSourcedIds", student_number_field]
    if version == "1.1":
        columns += ["orgSourcedIds", "role"]
    return tuple(dict.fromkeys(columns))


def delta_status(value):
    """'active' -> False, 'tobedeleted' -> True (1.0's 'inactive' too), else None (an error)."""
    value = value.strip(FIELD_WHITESPACE).lower()
    if value == "active":
        return False
    if value in {"tobedeleted", "inactive"}:
        return True
    return None


def parse_enabled(value):
    value = value.strip(FIELD_WHITESPACE).lower()
    if value in {"true", ""}:
        return True
    if value == "false":
        return False
    return None
