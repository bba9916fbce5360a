"""A synthetic, spec-exact OneRoster CSV set for a realistic district (demo data and benchmarks).

`write_roster(path, students=..., seed=..., version="1.1"|"1.2", zip=False)` writes manifest.csv,
orgs.csv, users.csv and demographics.csv (1.2 adds roles.csv and 1.2's users.csv columns) and
returns the folder, or the .zip when `zip=True`.

The district is one `district` org and several schools. Students come in families of one to
three siblings who share one to three guardians (about 1.6 guardians per student), so a guardian
is often linked to several students. It also contains the awkward cases that real SIS exports
have, so the demo and the benchmarks go through the same code paths as a real night:

- household emails shared by two guardians, sometimes differing only in case;
- guardians with no email, a few non-ASCII addresses;
- `enabledUser` written `true`, `TRUE`, `false` or `False`; a few disabled people;
- `relative` guardians (a third adult in some families);
- links (`agentSourcedIds`) on the student side only, on the guardian side only, or on both;
- accented and hyphenated names (García-López, Nguyễn, Đặng, Ñúñez);
- a UTF-8 BOM on users.csv and orgs.csv (not on the others);
- students without a birth date (no demographics row, or a blank birthDate);
- a `metadata.*` extension column and a few `password` values the importer must never store.

Output is deterministic for a seed and streamed row by row (the benchmark writes a million users
with it), so memory stays flat whatever the size: each family's rows are written as soon as the
family is drawn, to all files at once.
"""

import csv
import random
import shutil
import tempfile
import zipfile
from datetime import date, timedelta
from pathlib import Path

USERS_11 = [
    "sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username",
    "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
    "agentSourcedIds", "grades", "password",
]  # fmt: skip
USERS_12 = [
    "sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
    "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds",
    "grades", "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName",
    "preferredMiddleName", "preferredFamilyName", "primaryOrgSourcedId", "pronouns",
]  # fmt: skip
DEMOGRAPHICS = [
    "sourcedId", "status", "dateLastModified", "birthDate", "sex", "americanIndianOrAlaskaNative",
    "asian", "blackOrAfricanAmerican", "nativeHawaiianOrOtherPacificIslander", "white",
    "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity", "countryOfBirthCode",
    "stateOfBirthAbbreviation", "cityOfBirth", "publicSchoolResidenceStatus",
]  # fmt: skip
ORGS = ["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"]
ROLES = [
    "sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "beginDate",
    "endDate", "orgSourcedId", "userProfileSourcedId",
]  # fmt: skip
EXTENSION = "metadata.sis.personID"

MANIFEST_FILES_11 = [
    "academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
    "demographics", "enrollments", "lineItems", "orgs", "resources", "results", "users",
]  # fmt: skip
MANIFEST_FILES_12 = [
    *MANIFEST_FILES_11, "roles", "userProfiles", "userResources", "scoreScales",
    "lineItemLearningObjectiveIds", "lineItemScoreScales", "resultLearningObjectiveIds",
    "resultScoreScales",
]  # fmt: skip
SENT_FILES = {"orgs", "users", "demographics", "roles"}

FAMILY_NAMES = [
    ("García-López", "garcia.lopez"), ("Nguyễn", "nguyen"), ("Đặng", "dang"), ("Ñúñez", "nunez"),
    ("Smith", "smith"), ("Johnson", "johnson"), ("Hernández", "hernandez"), ("Trần", "tran"),
    ("Lê", "le"), ("Phạm", "pham"), ("Martínez", "martinez"), ("O'Brien", "obrien"),
    ("Williams", "williams"), ("Rodríguez", "rodriguez"), ("Kim", "kim"), ("Patel", "patel"),
    ("Brown", "brown"), ("Lopez", "lopez"), ("Chen", "chen"), ("Gonzalez", "gonzalez"),
    ("Võ", "vo"), ("Huỳnh", "huynh"), ("Wilson", "wilson"), ("Singh", "singh"),
    ("Müller", "muller"), ("Sánchez-Ortiz", "sanchez.ortiz"), ("Bùi", "bui"), ("Davis", "davis"),
]  # fmt: skip
CHILD_NAMES = [
    "Ana", "José", "María", "Minh", "Thảo", "Liam", "Olivia", "Noah", "Sofía", "Bảo", "Emma",
    "Mateo", "Ñoño", "Élodie", "Anh", "Isabella", "Lucas", "Mia", "Ethan", "Valentina", "Hùng",
    "Zoë", "Aarav", "Chloé", "Diego", "Linh", "Jack", "Ximena", "Quân", "Ava",
]  # fmt: skip
ADULT_NAMES = [
    ("Rosa", "rosa"), ("Juan", "juan"), ("Lan", "lan"), ("Tuấn", "tuan"), ("Michael", "michael"),
    ("Jennifer", "jennifer"), ("Ángel", "angel"), ("Hương", "huong"), ("David", "david"),
    ("Sarah", "sarah"), ("Carmen", "carmen"), ("Đức", "duc"), ("Priya", "priya"),
    ("Robert", "robert"), ("Guadalupe", "guadalupe"), ("Thanh", "thanh"), ("Fatima", "fatima"),
    ("Jessica", "jessica"), ("Luis", "luis"), ("Mai", "mai"), ("Daniel", "daniel"),
    ("Ngọc", "ngoc"),
]  # fmt: skip
GRADES = ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]
SCHOOL_YEAR = 2025  # autumn of the current school year: a KG pupil is 5 on 1 September
DOMAINS = ["example.net", "example.com", "mail.example.org"]
TRUE_SPELLINGS = ["true"] * 8 + ["TRUE", "True"]
FALSE_SPELLINGS = ["false", "FALSE", "False"]


def write_roster(path, *, students=300, seed=1, version="1.1", zip=False):
    """Write a synthetic OneRoster set for `students` students; return the folder or .zip path.

    `path` is the folder to write into (created if missing). With `zip=True` the files are
    zipped into `path/oneroster.zip` — or into `path` itself when it ends in `.zip` — and no
    loose CSVs are left behind.
    """
    if version not in {"1.1", "1.2"}:
        raise ValueError(f"OneRoster version must be 1.1 or 1.2, not {version!r}")
    path = Path(path)
    if zip:
        zip_path = path if path.suffix == ".zip" else path / "oneroster.zip"
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=zip_path.parent) as scratch:
            folder = _write_folder(Path(scratch), students=students, seed=seed, version=version)
            with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.iterdir()):
                    archive.write(file, arcname=file.name)
            shutil.rmtree(folder, ignore_errors=True)
        return zip_path
    path.mkdir(parents=True, exist_ok=True)
    return _write_folder(path, students=students, seed=seed, version=version)


def _write_folder(folder, *, students, seed, version):
    rng = random.Random(seed)
    v12 = version == "1.2"
    school_count = max(3, min(200, students // 400))
    schools = [f"org-school-{n:03d}" for n in range(1, school_count + 1)]
    _write_manifest(folder, version=version)
    _write_orgs(folder, schools)

    files = {
        "users": _open(folder / "users.csv", bom=True),
        "demographics": _open(folder / "demographics.csv", bom=False),
    }
    if v12:
        files["roles"] = _open(folder / "roles.csv", bom=False)
    try:
        users = csv.writer(files["users"], lineterminator="\n")
        demographics = csv.writer(files["demographics"], lineterminator="\n")
        roles = csv.writer(files["roles"], lineterminator="\n") if v12 else None
        users.writerow([*(USERS_12 if v12 else USERS_11), EXTENSION])
        demographics.writerow(DEMOGRAPHICS)
        if roles:
            roles.writerow(ROLES)
        writer = _FamilyWriter(rng, users, demographics, roles, schools, v12=v12)
        made = 0
        while made < students:
            made += writer.family(min(_sibling_count(rng), students - made))
    finally:
        for handle in files.values():
            handle.close()
    return folder


def _open(path, *, bom):
    # newline="" lets the csv module own line endings (RFC 4180); utf-8-sig writes the BOM.
    encoding = "utf-8-sig" if bom else "utf-8"
    return open(path, "w", newline="", encoding=encoding, buffering=1 << 20)


def _write_manifest(folder, *, version):
    names = MANIFEST_FILES_12 if version == "1.2" else MANIFEST_FILES_11
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["propertyName", "value"])
        out.writerow(["manifest.version", "1.0"])
        out.writerow(["oneroster.version", version])
        for name in names:
            out.writerow([f"file.{name}", "bulk" if name in SENT_FILES else "absent"])
        out.writerow(["source.systemName", "Synthetic SIS"])
        out.writerow(["source.systemCode", "synthetic"])


def _write_orgs(folder, schools):
    with _open(folder / "orgs.csv", bom=True) as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(ORGS)
        out.writerow(["org-district", "", "", "Unified School District", "district", "USD", ""])
        kinds = ["Elementary School", "Middle School", "High School"]
        for n, sourced_id in enumerate(schools, start=1):
            name = f"{FAMILY_NAMES[n % len(FAMILY_NAMES)][0]} {kinds[n % 3]} #{n}"
            out.writerow([sourced_id, "", "", name, "school", f"S{n:03d}", "org-district"])


def _sibling_count(rng):
    roll = rng.random()
    return 1 if roll < 0.65 else 2 if roll < 0.92 else 3


class _FamilyWriter:
    """Draws one household at a time and writes its rows to every file at once."""

    def __init__(self, rng, users, demographics, roles, schools, *, v12):
        self.rng = rng
        self.users = users
        self.demographics = demographics
        self.roles = roles
        self.schools = schools
        self.v12 = v12
        self.families = 0
        self.student_seq = 0
        self.guardian_seq = 0

    def family(self, size):
        rng = self.rng
        self.families += 1
        family_name, family_ascii = FAMILY_NAMES[rng.randrange(len(FAMILY_NAMES))]
        kids = []
        for _ in range(size):
            self.student_seq += 1
            kids.append(f"stu-{self.student_seq:08d}")
        roll = rng.random()
        adult_count = 1 if roll < 0.40 else 2 if roll < 0.95 else 3
        adults = []
        for _ in range(adult_count):
            self.guardian_seq += 1
            adults.append(f"gdn-{self.guardian_seq:08d}")
        # Which side carries agentSourcedIds: students only, guardians only, or both.
        side = rng.random()
        on_students = side < 0.7
        on_guardians = side >= 0.4
        school = self.schools[rng.randrange(len(self.schools))]

        emails = self._household_emails(adults, family_ascii)
        for index, sourced_id in enumerate(adults):
            role = "relative" if index == 2 else ("parent" if rng.random() < 0.9 else "guardian")
            given, given_ascii = ADULT_NAMES[rng.randrange(len(ADULT_NAMES))]
            self._user(
                sourced_id,
                role=role,
                org=school,
                username=f"{given_ascii}.{family_ascii}{self.guardian_seq}" if index == 0 else "",
                given=given,
                family=family_name,
                identifier="",
                email=emails[index],
                phone=f"(408) 555-{rng.randrange(10000):04d}",
                sms=f"408555{rng.randrange(10000):04d}" if rng.random() < 0.2 else "",
                agents=kids if on_guardians else [],
                grade="",
            )
        for sourced_id in kids:
            grade_index = rng.randrange(len(GRADES))
            number = f"{100000 + int(sourced_id[4:])}"
            has_email = grade_index >= 6
            self._user(
                sourced_id,
                role="student",
                org=school,
                username=number,
                given=CHILD_NAMES[rng.randrange(len(CHILD_NAMES))],
                family=family_name,
                identifier=number,
                email=f"{number}@students.example.org" if has_email else "",
                phone="",
                sms="",
                agents=adults if on_students else [],
                grade=GRADES[grade_index],
                password="Welcome-2025" if rng.random() < 0.01 else "",
            )
            roll = rng.random()
            if roll < 0.01:
                continue  # no demographics row at all: no birth date
            birth = "" if roll < 0.02 else self._birth_date(grade_index)
            sex = "male" if rng.random() < 0.5 else "female"
            hispanic = "true" if family_ascii in {"garcia.lopez", "nunez", "hernandez"} else "false"
            self.demographics.writerow(
                [sourced_id, "", "", birth, sex, "false", "false", "false", "false", "false",
                 "false", hispanic, "", "CA", "San José", ""]
            )  # fmt: skip
        return size

    def _household_emails(self, adults, family_ascii):
        rng = self.rng
        emails = []
        for n, _ in enumerate(adults):
            roll = rng.random()
            if roll < 0.05:
                emails.append("")  # no email on file
                continue
            local = f"{family_ascii}.{self.families}.{n}"
            if roll < 0.055:
                local = f"thảo.{local}"  # a rare non-ASCII address
            elif roll < 0.15:
                local = local.title()  # mixed case, as typed into the SIS
            emails.append(f"{local}@{DOMAINS[self.families % len(DOMAINS)]}")
        if len(adults) >= 2 and emails[0] and rng.random() < 0.18:
            # A household address typed into both parents' records, sometimes in other case.
            shared = f"{family_ascii}.family{self.families}@{DOMAINS[0]}"
            emails[0] = shared
            emails[1] = shared.title() if rng.random() < 0.5 else shared
        return emails

    def _birth_date(self, grade_index):
        start = date(SCHOOL_YEAR - 6 - grade_index, 9, 2)
        return (start + timedelta(days=self.rng.randrange(365))).isoformat()

    def _user(self, sourced_id, *, role, org, username, given, family, identifier, email, phone,
              sms, agents, grade, password=""):  # fmt: skip
        rng = self.rng
        enabled = (
            FALSE_SPELLINGS[rng.randrange(3)]
            if rng.random() < 0.01
            else TRUE_SPELLINGS[rng.randrange(10)]
        )
        agent_ids = ",".join(agents)
        extension = f"P{sourced_id[4:]}"
        if self.v12:
            self.users.writerow(
                [sourced_id, "", "", enabled, username, "", given, family, "", identifier, email,
                 sms, phone, agent_ids, grade, password, "", "", "", "", "", org, "", extension]
            )  # fmt: skip
            self.roles.writerow(
                [f"role-{sourced_id}", "", "", sourced_id, "primary", role, "", "", org, ""]
            )
        else:
            self.users.writerow(
                [sourced_id, "", "", enabled, org, role, username, "", given, family, "",
                 identifier, email, sms, phone, agent_ids, grade, password, extension]
            )  # fmt: skip
