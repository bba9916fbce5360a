"""The plain write path: Python's csv module and the ORM's bulk operations.

Used on databases other than PostgreSQL — in practice SQLite for `make run`'s demo district of a
few hundred rows — where COPY does not exist. It applies the same rules (rules.py), in the same
order, with the same results as `postgres.py`; the parity test imports one synthetic set both ways
and compares every row. It holds the parsed rows and the existing roster in memory, which is fine
for a demo and is why PostgreSQL takes the COPY path instead.
"""

import re
from datetime import date

from django.db.models import Q

from portal.models import Guardian, GuardianStudent, Organisation, Student
from portal.normalisation import normalise_email
from portal.roster import rules
from portal.roster.summary import RowError, check_row_errors

WS = rules.FIELD_WHITESPACE
BIRTH = re.compile(rules.BIRTH_DATE_PATTERN)
PERSON_FIELDS = [f for f, _, _ in rules.PERSON_LENGTHS] + ["email_normalised", "enabled"]
STUDENT_FIELDS = [*PERSON_FIELDS, "student_number", "birth_date", "grade", "school_id"]
GUARDIAN_FIELDS = [*PERSON_FIELDS, "role", "phone", "sms"]
ORG_FIELDS = ["name", "type", "identifier", "parent_sourced_id"]


class PlainWriter:
    def __init__(self, *, manifest, files, summary, changed_at, number_field):
        self.manifest = manifest
        self.files = files
        self.summary = summary
        self.ts = changed_at
        self.number_field = number_field
        self.v12 = manifest.version == "1.2"
        self.rows = {}  # file -> parsed rows, for the error report

    def mode(self, file):
        return self.manifest.mode(file)

    def run(self):
        orgs = self.read("orgs", self.validate_org) if "orgs" in self.files else None
        role_rows = self.read("roles", self.validate_role) if "roles" in self.files else None
        # Orgs are merged before roles/users are resolved (schools), as in SQL; row errors of
        # every file are counted first, so nothing is written when there are too many.
        people = self.read("users", self.validate_user_fields) if "users" in self.files else None
        demo = (
            self.read("demographics", self.validate_demo) if "demographics" in self.files else None
        )
        self.merge_orgs(orgs)
        role_info = self.role_info(role_rows) if role_rows is not None else None
        if people is not None:
            self.classify_people(people, role_info)
        self.collect_errors()
        check_row_errors(self.summary, self.summary.error_count)
        if people is None:
            self.update_birth_dates(demo, listed=set())
            self.flag_shared_emails()
            self.forget_digests()
            return
        self.merge_people(people, demo)
        self.merge_links(people)
        self.flag_shared_emails()
        self.forget_digests()

    def forget_digests(self):
        """This path keeps no digests (postgres.py's memo of unchanged rows): after it wrote,
        none of them can be trusted, so the next PostgreSQL import compares every row."""
        for model in (Student, Guardian):
            model.objects.exclude(roster_digest="").update(roster_digest="")

    # --- reading and validation ----------------------------------------------------------
    def read(self, file, validate):
        csv_file = self.files[file]
        index = csv_file.index
        rows = []
        first_line = {}
        for line, values in csv_file.rows():
            self.summary.rows += 1

            def get(name, values=values):
                position = index.get(name)
                return "" if position is None else values[position].strip(WS)

            row = validate(get, values, index)
            row["line"] = line
            sid = row["sid"]
            if sid and sid in first_line:
                row["error"] = rules.DUPLICATE.format(first_line[sid])
            elif sid:
                first_line[sid] = line
            rows.append(row)
        self.rows[file] = rows
        return rows

    def delta_status(self, get, file):
        if self.mode(file) != "delta":
            return False
        return rules.delta_status(get("status"))

    def validate_org(self, get, values, index):
        row = {
            "sid": get("sourcedId"),
            "del": self.delta_status(get, "orgs"),
            "name": get("name"),
            "type": get("type"),
            "identifier": get("identifier"),
            "parent_sourced_id": get("parentSourcedId"),
        }
        row["error"] = self.first_error(
            row,
            [
                (row["sid"] == "", rules.MISSING_SOURCED_ID),
                (len(row["sid"]) > 255, rules.SOURCED_ID_TOO_LONG),
                (row["del"] is None, rules.BAD_STATUS),
                (row["del"] is True, None),
                (row["name"] == "", rules.MISSING_NAME),
                (row["type"] not in rules.ORG_TYPES, rules.BAD_ORG_TYPE),
                *_lengths(row, rules.ORG_LENGTHS[1:]),
            ],
        )
        return row

    def validate_role(self, get, values, index):
        row = {
            "sid": "",  # role rows are not checked for duplicates
            "role_sid": get("sourcedId"),
            "user_sid": get("userSourcedId"),
            "del": self.delta_status(get, "roles"),
            "role_type": get("roleType"),
            "role": get("role"),
            "org": get("orgSourcedId"),
        }
        row["error"] = self.first_error(
            row,
            [
                (row["role_sid"] == "", rules.MISSING_SOURCED_ID),
                (row["user_sid"] == "", rules.MISSING_USER),
                (row["del"] is None, rules.BAD_STATUS),
                (row["del"] is True, None),
                (row["role"] not in rules.KNOWN_ROLES, rules.BAD_ROLE),
            ],
        )
        return row

    def validate_user_fields(self, get, values, index):
        position = index.get("email")
        raw_email = "" if position is None else values[position]
        return {
            "sid": get("sourcedId"),
            "del": self.delta_status(get, "users"),
            "role_raw": "" if self.v12 else get("role"),
            "enabled": rules.parse_enabled(get("enabledUser")),
            "given_name": get("givenName"),
            "family_name": get("familyName"),
            "middle_name": get("middleName"),
            "preferred_given_name": get("preferredGivenName"),
            "username": get("username"),
            "email": raw_email.strip(),
            "email_normalised": normalise_email(raw_email),
            "agents": get("agentSourcedIds"),
            "student_number": get(self.number_field),
            "grade": get("grades"),
            "phone": get("phone"),
            "sms": get("sms"),
            "org_ids": get("orgSourcedIds"),
            "primary_org": get("primaryOrgSourcedId"),
            "error": None,  # decided in classify_people, once roles and orgs are known
        }

    def validate_demo(self, get, values, index):
        row = {"sid": get("sourcedId"), "del": self.delta_status(get, "demographics")}
        birth = get("birthDate")
        row["birth_raw"] = birth
        row["birth"] = None
        row["error"] = self.first_error(
            row,
            [
                (row["sid"] == "", rules.MISSING_SOURCED_ID),
                (len(row["sid"]) > 255, rules.SOURCED_ID_TOO_LONG),
                (row["del"] is None, rules.BAD_STATUS),
                (row["del"] is True, None),
                (birth == "", None),
                (not _valid_birth_date(birth), rules.BAD_BIRTH_DATE),
            ],
        )
        if row["error"] is None and not row["del"] and birth:
            row["birth"] = date.fromisoformat(birth)
        return row

    @staticmethod
    def first_error(row, checks):
        """Like SQL's CASE: the first true condition decides; None means valid."""
        if row.get("error"):
            return row["error"]
        for condition, message in checks:
            if condition:
                return message
        return None

    def classify_people(self, people, role_info):
        existing_students = existing_guardians = {}
        if self.v12 and self.mode("roles") != "bulk":
            sids = [p["sid"] for p in people]
            existing_students = set(
                Student.objects.filter(pk__in=sids).values_list("pk", flat=True)
            )
            existing_guardians = dict(
                Guardian.objects.filter(pk__in=sids).values_list("pk", "role")
            )
        for p in people:
            if self.v12:
                info = role_info.get(p["sid"]) if role_info is not None else None
                kind = role = None
                if info is not None:
                    if info["is_student"]:
                        kind = "student"
                    elif info["guardian_role"]:
                        kind = "guardian"
                    else:
                        kind = "other"
                    role = info["guardian_role"]
                if kind is None and self.mode("roles") != "bulk":
                    if p["sid"] in existing_students:
                        kind = "student"
                    elif p["sid"] in existing_guardians:
                        kind = "guardian"
                if role is None and self.mode("roles") != "bulk":
                    role = existing_guardians.get(p["sid"])
                p["student_school"] = info["student_school"] if info else None
                role_check = (kind is None, rules.NO_ROLE)
            else:
                raw = p["role_raw"]
                kind = (
                    "student"
                    if raw == "student"
                    else "guardian"
                    if raw in rules.GUARDIAN_ROLES
                    else "other"
                    if raw in rules.KNOWN_ROLES
                    else None
                )
                role = raw
                role_check = (raw not in rules.KNOWN_ROLES, rules.BAD_ROLE)
            p["kind"] = kind
            p["role"] = role
            student = kind == "student"
            guardian = kind == "guardian"
            p["error"] = self.first_error(
                p,
                [
                    (p["sid"] == "", rules.MISSING_SOURCED_ID),
                    (len(p["sid"]) > 255, rules.SOURCED_ID_TOO_LONG),
                    (p["del"] is None, rules.BAD_STATUS),
                    (p["del"] is True, None),
                    role_check,
                    (kind == "other", None),
                    (p["enabled"] is None, rules.BAD_ENABLED),
                    (p["given_name"] == "", rules.MISSING_GIVEN),
                    (p["family_name"] == "", rules.MISSING_FAMILY),
                    *_lengths(p, rules.PERSON_LENGTHS),
                    *_lengths(p, rules.STUDENT_LENGTHS, when=student),
                    *_lengths(p, rules.GUARDIAN_LENGTHS, when=guardian),
                ],
            )

    def role_info(self, role_rows):
        info = {}
        ordered = sorted(
            (r for r in role_rows if r["error"] is None and not r["del"]),
            key=lambda r: (r["role_type"] != "primary", r["line"]),
        )
        schools = set(
            Organisation.objects.filter(type="school").values_list("sourced_id", flat=True)
        )
        for r in ordered:
            entry = info.setdefault(
                r["user_sid"], {"is_student": False, "guardian_role": None, "student_school": None}
            )
            if r["role"] == "student":
                entry["is_student"] = True
                if entry["student_school"] is None and r["org"] in schools:
                    entry["student_school"] = r["org"]
            if r["role"] in rules.GUARDIAN_ROLES and entry["guardian_role"] is None:
                entry["guardian_role"] = r["role"]
        return info

    def collect_errors(self):
        files = [
            ("orgs", "orgs.csv"),
            ("users", "users.csv"),
            ("demographics", "demographics.csv"),
            ("roles", "roles.csv"),
        ]
        errors = []
        for file, name in files:
            for row in self.rows.get(file, []):
                if row["error"]:
                    kind = {"orgs": "orgs", "demographics": "students"}.get(file)
                    if file == "users":
                        kind = {"student": "students", "guardian": "guardians"}.get(row["kind"])
                    errors.append((name, row["line"], row["error"], kind))
        errors.sort(key=lambda e: (e[0], e[1]))
        for _, _, _, kind in errors:
            if kind:
                self.summary.counts[kind].skipped += 1
        self.summary.error_count = len(errors)
        self.summary.errors = [RowError(f, line, r) for f, line, r, _ in errors][
            : rules.ERRORS_KEPT
        ]

    # --- merging -------------------------------------------------------------------------
    def merge_orgs(self, orgs):
        if orgs is None:
            return
        counts = self.summary.counts["orgs"]
        valid = {r["sid"]: r for r in orgs if r["error"] is None and not r["del"]}
        existing = Organisation.objects.in_bulk()
        create, update = [], []
        for sid, r in valid.items():
            values = {f: r[f] for f in ORG_FIELDS}
            obj = existing.get(sid)
            if obj is None:
                create.append(
                    Organisation(
                        sourced_id=sid,
                        active=True,
                        created_at=self.ts,
                        updated_at=self.ts,
                        **values,
                    )
                )
            elif _differs(obj, {**values, "active": True}):
                _assign(obj, {**values, "active": True, "updated_at": self.ts})
                update.append(obj)
        _bulk_create(Organisation, create)
        Organisation.objects.bulk_update(update, [*ORG_FIELDS, "active", "updated_at"])
        counts.created, counts.updated = len(create), len(update)
        counts.unchanged = len(valid) - len(create) - len(update)
        if self.mode("orgs") == "bulk":
            listed = {r["sid"] for r in orgs}
            gone = [o for sid, o in existing.items() if o.active and sid not in listed]
        else:
            deleted = {r["sid"] for r in orgs if r["error"] is None and r["del"]}
            gone = [o for sid, o in existing.items() if o.active and sid in deleted]
        for o in gone:
            o.active, o.updated_at = False, self.ts
        Organisation.objects.bulk_update(gone, ["active", "updated_at"])
        counts.deactivated = len(gone)

    def merge_people(self, people, demo):
        valid = [p for p in people if p["error"] is None and not p["del"]]
        schools = dict(Organisation.objects.filter(type="school").values_list("pk", "pk"))
        existing_students = Student.objects.in_bulk()
        demo_valid = {d["sid"]: d for d in demo or [] if d["error"] is None}
        demo_errors = {d["sid"] for d in demo or [] if d["error"] is not None}
        students, guardians = {}, {}
        self.summary.ignored_users = sum(1 for p in valid if p["kind"] == "other")
        for p in valid:
            values = {f: p[f] for f in PERSON_FIELDS}
            if p["kind"] == "student":
                values["student_number"] = p["student_number"]
                values["grade"] = p["grade"]
                values["school_id"] = self.school_of(p, schools)
                values["birth_date"] = self.birth_of(
                    p["sid"], demo, demo_valid, demo_errors, existing_students
                )
                students[p["sid"]] = values
            elif p["kind"] == "guardian":
                values.update(role=p["role"], phone=p["phone"], sms=p["sms"])
                guardians[p["sid"]] = values
        self.merge_kind("students", Student, students, STUDENT_FIELDS, existing_students)
        self.merge_kind(
            "guardians", Guardian, guardians, GUARDIAN_FIELDS, Guardian.objects.in_bulk()
        )
        self.update_birth_dates(demo, listed=set(students))
        for kind, model, people_kind in (
            ("students", Student, "student"),
            ("guardians", Guardian, "guardian"),
        ):
            if self.mode("users") == "bulk":
                listed = {p["sid"] for p in people if p["error"] or p["kind"] == people_kind}
                gone = model.objects.filter(active=True).exclude(pk__in=listed)
            else:
                deleted = [p["sid"] for p in people if p["error"] is None and p["del"]]
                gone = model.objects.filter(active=True, pk__in=deleted)
            self.summary.counts[kind].deactivated = gone.update(active=False, updated_at=self.ts)
        self.students, self.guardians = students, guardians

    def school_of(self, p, schools):
        if self.v12:
            if p.get("student_school"):
                return p["student_school"]
            return schools.get(p["primary_org"])
        for org in p["org_ids"].split(","):
            org = org.strip(WS)
            if org in schools:
                return org
        return None

    def birth_of(self, sid, demo, demo_valid, demo_errors, existing):
        d = demo_valid.get(sid)
        if d is not None:
            return d["birth"]
        if demo is not None and self.mode("demographics") == "bulk" and sid not in demo_errors:
            return None
        current = existing.get(sid)
        return current.birth_date if current else None

    def merge_kind(self, kind, model, incoming, fields, existing):
        counts = self.summary.counts[kind]
        create, update = [], []
        for sid, values in incoming.items():
            obj = existing.get(sid)
            if obj is None:
                create.append(
                    model(
                        sourced_id=sid,
                        active=True,
                        created_at=self.ts,
                        updated_at=self.ts,
                        **values,
                    )
                )
            elif _differs(obj, {**values, "active": True}):
                _assign(obj, {**values, "active": True, "updated_at": self.ts})
                update.append(obj)
        _bulk_create(model, create)
        model.objects.bulk_update(update, [*fields, "active", "updated_at"], batch_size=500)
        counts.created, counts.updated = len(create), len(update)
        counts.unchanged = len(incoming) - len(create) - len(update)

    def update_birth_dates(self, demo, *, listed):
        if demo is None:
            return
        wanted = {
            d["sid"]: d["birth"] for d in demo if d["error"] is None and d["sid"] not in listed
        }
        changed = []
        for student in Student.objects.filter(pk__in=list(wanted)):
            if student.birth_date != wanted[student.pk]:
                student.birth_date, student.updated_at = wanted[student.pk], self.ts
                changed.append(student)
        Student.objects.bulk_update(changed, ["birth_date", "updated_at"], batch_size=500)
        self.summary.counts["students"].updated += len(changed)

    def merge_links(self, people):
        counts = self.summary.counts["links"]
        pairs = set()
        for p in people:
            if p["error"] or p["del"] or not p["agents"]:
                continue
            for agent in p["agents"].split(","):
                agent = agent.strip(WS)
                if p["kind"] == "student":
                    pairs.add((p["sid"], agent))
                elif p["kind"] == "guardian":
                    pairs.add((agent, p["sid"]))
        pairs = {(s, g) for s, g in pairs if s and g}
        student_ids = set(
            Student.objects.filter(pk__in={s for s, _ in pairs}).values_list("pk", flat=True)
        )
        guardian_ids = set(
            Guardian.objects.filter(pk__in={g for _, g in pairs}).values_list("pk", flat=True)
        )
        ok = {(s, g) for s, g in pairs if s in student_ids and g in guardian_ids}
        counts.skipped = len(pairs) - len(ok)
        if self.mode("users") == "bulk":
            scope = Q(student_id__in=list(self.students)) | Q(guardian_id__in=list(self.guardians))
        else:
            deleted = [p["sid"] for p in people if p["error"] is None and p["del"]]
            scope = Q(student_id__in=deleted) | Q(guardian_id__in=deleted)
        existing = {}
        for link_id, s, g in GuardianStudent.objects.filter(scope).values_list(
            "id", "student_id", "guardian_id"
        ):
            existing[(s, g)] = link_id
        if self.mode("users") == "bulk":
            remove = [link_id for pair, link_id in existing.items() if pair not in ok]
        else:
            remove = list(existing.values())
        GuardianStudent.objects.filter(id__in=remove).delete()
        counts.deactivated = len(remove)
        present = set(
            GuardianStudent.objects.filter(
                student_id__in={s for s, _ in ok}, guardian_id__in={g for _, g in ok}
            ).values_list("student_id", "guardian_id")
        )
        new = [GuardianStudent(student_id=s, guardian_id=g) for s, g in sorted(ok - present)]
        _bulk_create(GuardianStudent, new)
        counts.created = len(new)
        counts.unchanged = len(ok) - len(new)

    def flag_shared_emails(self):
        holders = {}
        for sid, email in (
            Guardian.objects.filter(active=True)
            .exclude(email_normalised="")
            .values_list("pk", "email_normalised")
        ):
            holders.setdefault(email, []).append(sid)
        shared = {sid for sids in holders.values() if len(sids) > 1 for sid in sids}
        Guardian.objects.filter(email_shared=True).exclude(pk__in=shared).update(
            email_shared=False, updated_at=self.ts
        )
        Guardian.objects.filter(pk__in=shared, email_shared=False).update(
            email_shared=True, updated_at=self.ts
        )


def _lengths(row, checks, *, when=True):
    return [
        (when and len(row[field]) > limit, rules.TOO_LONG.format(label, limit))
        for field, limit, label in checks
    ]


def _valid_birth_date(value):
    if not BIRTH.match(value):
        return False
    year, month, day = int(value[:4]), int(value[5:7]), int(value[8:10])
    low, high = rules.BIRTH_YEARS
    if not (low <= year <= high and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _differs(obj, values):
    return any(getattr(obj, field) != value for field, value in values.items())


def _assign(obj, values):
    for field, value in values.items():
        setattr(obj, field, value)


def _bulk_create(model, objects):
    # Small batches: SQLite limits the variables in one statement.
    model.objects.bulk_create(objects, batch_size=200)
