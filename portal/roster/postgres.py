"""The PostgreSQL write path: COPY the raw CSV into staging tables, then validate and merge in SQL.

Why this shape: parsing a million CSV rows in Python already costs about six times what
PostgreSQL's COPY needs to load them, before a single row is validated or written. So Python never
touches a row here. Each file's bytes go straight from the folder or .zip into a staging table
(text columns `c0..cN` in header order, plus `line`, an identity column that COPY fills in file
order so every row keeps its line number for error reports): UNLOGGED, in a schema of the
import's own, so that parallel workers can share the big scans (TEMP tables where the schema
cannot be made; see `open_staging`). From there, a handful of set-based statements do the work a
row loop would do:

1. validate (`t_orgs`, `t_roles`, `t_people`, `t_demo`): one CASE per row gives the first error
   (rules.py), duplicates are ruled out by a unique index (and only if that fails, found with a
   GROUP BY), bad dates by a probe into every valid date spelled out (`t_dates`);
2. stop if more than 1% of the rows are in error;
3. merge orgs, then students and guardians: an UPDATE ... FROM of only the rows whose values are
   DISTINCT FROM the stored ones (an unchanged row costs a hash-join probe and no write, which is
   what makes a re-import cheap), then an INSERT of the rows not yet stored (into an empty
   table, straight from the validating query: no staged copy is written just to be read once);
4. deactivate people absent from a bulk users.csv (or `tobedeleted` in a delta);
5. rebuild the links from `agentSourcedIds` of both sides, insert/delete only the difference;
6. recompute `Guardian.email_shared`.

A first import (or one that more than triples the roster) is loaded like a restore: the roster
tables' secondary indexes and unique/foreign-key constraints are dropped inside the transaction
and rebuilt once at the end (see `drop_secondary_structures`), instead of being maintained and
checked row by row — for a million users that is the difference between ~20 s and over a minute.

Emails: `email_normalised` must equal `portal.normalisation.normalise_email` exactly. For ASCII
addresses (almost all) that is `lower(btrim(email, <Python's ASCII whitespace>) COLLATE "C")`
(NFKC and casefold are identities on lower-cased ASCII, and the C collation keeps a Turkish
database locale from lower-casing I to a dotless i); the rare non-ASCII ones are fetched and
normalised in Python. Everything happens in the caller's transaction: an error rolls it all back.

Ids: every `...SourcedId(s)` value is staged in the "C" (byte order) collation of the stored id
columns (portal.fields.SourcedIdField); everything else keeps the database's collation.
"""

# SQL here is assembled from our own constants and header positions; row data never enters a
# statement (it arrives through COPY), so string-built SQL is safe in this module.
# ruff: noqa: S608

import hashlib
import logging
import re

import psycopg

from portal.normalisation import normalise_email
from portal.roster import rules
from portal.roster.summary import RowError, StructuralError

logger = logging.getLogger(__name__)
WS = "E'" + "".join(f"\\x{ord(c):02x}" for c in rules.ASCII_WHITESPACE) + "'"
COPY_LINE = re.compile(r"line (\d+)")
BULK_LOAD_TABLES = ("portal_student", "portal_guardian", "portal_guardianstudent")
BULK_LOAD_MIN_ROWS = 10_000
# Part of every row digest: bump it whenever a change here or in rules.py would store a different
# value for the same input, so that the next import compares every row in full once.
DIGEST_VERSION = 2


def lit(value):
    """A SQL string literal for a constant of ours (never for data: data goes through COPY)."""
    return "'" + str(value).replace("'", "''") + "'"


def trim(expr):
    """Spaces only (rules.FIELD_WHITESPACE); emails are trimmed with WS instead."""
    return f"btrim({expr})"


def _collated(name, expr):
    """Ids (every `...SourcedId(s)` column) in the byte-order collation of the stored ids
    (portal.fields.SourcedIdField): compared with them, and sorted and hashed cheaply."""
    return f'{expr} COLLATE "C"' if "sourcedid" in name.lower() else expr


def in_list(values):
    return "(" + ", ".join(lit(v) for v in sorted(values)) + ")"


class PostgresWriter:
    """One import on one psycopg cursor; `run()` stages, validates, merges and counts."""

    def __init__(
        self, *, cursor, source, manifest, files, summary, changed_at, number_field, active_before
    ):
        self.cur = cursor
        self.source = source
        self.manifest = manifest
        self.files = files  # "users" -> reader.CsvFile, only for files sent
        self.summary = summary
        self.ts = changed_at
        self.number_field = number_field
        self.active_before = active_before  # "students"/"guardians" -> active before the run
        self.v12 = manifest.version == "1.2"
        self.listed_stored = {}  # kind -> rows of this file now stored (see deactivate)
        self.restore = None  # set while secondary indexes are dropped for a bulk load
        self.has_digests = False  # some stored row has a digest (see match_unchanged)
        self.shared_flagged = False  # email_shared set on insert (see merge_kind)
        self.was_empty = {}  # "students"/"guardians" -> no stored row before the merge
        self.incoming = {}  # "students"/"guardians" -> valid rows of that kind (not set aside)
        self.staged = {}  # "students"/"guardians" -> t_students/t_guardians or their query
        self.same_counts = None  # kind -> rows in t_same (see same_count)
        self.table_kind = "TEMP"  # of the staging tables; see open_staging
        self.schema = None

    def open_staging(self):
        """Put this import's staging tables in a schema of its own, as UNLOGGED tables, when
        the database lets us create one; else (no CREATE privilege on the database, say) make
        them TEMP tables.

        Why not always TEMP: only the backend that owns a temp table can read it, so every
        statement over a million staged rows runs on one core. An unlogged table in a schema
        of our own is as cheap to fill (no WAL either) and parallel workers can scan it: on two
        cores the validating statement of a million users takes 2.4 s instead of 4.1. The schema is
        created in the import's transaction and dropped before its commit, so no other session
        ever sees it, a failed import leaves nothing behind, and two imports cannot collide.
        """
        self.cur.execute("SELECT 'roster_import_' || pg_backend_pid()")
        schema = self.cur.fetchone()[0]
        self.execute("SAVEPOINT roster_staging")
        try:
            self.execute(f"CREATE SCHEMA {schema}")
        except psycopg.Error as error:  # no CREATE privilege on the database, most likely
            logger.info("Roster staging in TEMP tables: %s", error.diag.message_primary)
            self.execute("ROLLBACK TO SAVEPOINT roster_staging")
            self.raise_temp_buffers()
        else:
            self.schema = schema
            self.table_kind = "UNLOGGED"
            # Unqualified names (s_users, t_people...) are created and found there first.
            self.execute(
                "SELECT set_config('search_path', %s || ', ' || current_setting('search_path'), "
                "true)",
                [schema],
            )
        self.execute("RELEASE SAVEPOINT roster_staging")

    def raise_temp_buffers(self):
        """TEMP staging tables: give them room in memory. PostgreSQL allows it only before a
        session's first use of temporary tables, so a long-lived connection may keep the
        default."""
        self.execute("SAVEPOINT roster_temp_buffers")
        try:
            self.execute("SET LOCAL temp_buffers = '1GB'")
        except psycopg.Error:
            self.execute("ROLLBACK TO SAVEPOINT roster_temp_buffers")
        self.execute("RELEASE SAVEPOINT roster_temp_buffers")

    def execute_planned(self, sql, params=None, **planner):
        """One statement with planner settings of its own (SET LOCAL), each back to its default
        after it. Only after success: a failed statement aborts the transaction, settings and
        all, and its own error is the one to report."""
        for name, value in planner.items():
            self.execute(f"SET LOCAL {name} = {value}")
        rows = self.execute(sql, params)
        for name in planner:
            self.execute(f"SET LOCAL {name} TO DEFAULT")
        return rows

    def execute_serial(self, sql, params=None):
        """For a GROUP BY over staged rows, whose number of groups the planner cannot know: it
        guesses a few hundred and spreads the aggregate over workers, which then pass up (and
        sort) every one of a million groups; one hash aggregate on one core is faster."""
        return self.execute_planned(sql, params, max_parallel_workers_per_gather=0)

    def execute_parallel(self, sql, params=None, **planner):
        """For a statement that writes a staged table from a big scan: left to its defaults, the
        planner charges every row passed up from a worker as if it cost more than computing it,
        and keeps the scan on one core."""
        if self.schema is not None:
            planner["parallel_tuple_cost"] = 0
        return self.execute_planned(sql, params, **planner)

    # --- helpers -------------------------------------------------------------------------
    def execute(self, sql, params=None):
        self.cur.execute(sql, params)
        return self.cur.rowcount

    def scalar(self, sql, params=None):
        self.cur.execute(sql, params)
        return self.cur.fetchone()[0]

    def col(self, file, name, alias="s"):
        """The staged column for a header name, trimmed; blank when the file lacks it."""
        position = self.files[file].index.get(name)
        column = f"{alias}.c{position}" if alias else f"c{position}"
        return _collated(name, "''" if position is None else trim(column))

    def raw(self, file, name, alias="s"):
        position = self.files[file].index.get(name)
        return _collated(name, "''" if position is None else f"{alias}.c{position}")

    def mode(self, file):
        return self.manifest.mode(file)

    def status_expr(self, file):
        """NULL = bad status, true = tobedeleted; always false in a bulk file."""
        if self.mode(file) != "delta":
            return "false"
        status = f'lower({self.col(file, "status")} COLLATE "C")'
        return (
            f"CASE {status} WHEN 'active' THEN false WHEN 'tobedeleted' THEN true "
            "WHEN 'inactive' THEN true END"
        )

    def length_checks(self, checks):
        return "".join(
            f" WHEN char_length({column}) > {limit} THEN {lit(rules.TOO_LONG.format(label, limit))}"
            for column, limit, label in checks
        )

    # --- 1. staging ----------------------------------------------------------------------
    def stage(self):
        for file, csv_file in self.files.items():
            table = f"s_{file}"
            columns = [f"c{n}" for n in range(len(csv_file.header))]
            names = ", ".join(columns)
            self.execute(f"DROP TABLE IF EXISTS {table}")
            self.execute(
                f"CREATE {self.table_kind} TABLE {table} ("
                # CACHE: the sequence itself is locked and logged once per 10,000 rows, not every
                # 32 (one session's values stay consecutive: `line` is still the line number).
                "line bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 2 CACHE 10000), "
                + ", ".join(f"{c} text" for c in columns)
                + ")"
            )
            try:
                # FREEZE: the rows are written as already visible to everyone, which the table,
                # new in this transaction and seen by no one else, allows; it loads measurably
                # faster, and later scans need not look up the inserting transaction per row.
                with self.cur.copy(
                    f"COPY {table} ({names}) FROM STDIN "
                    f"(FORMAT csv, ENCODING 'UTF8', FREEZE, FORCE_NOT_NULL ({names}))"
                ) as copy:
                    for chunk in csv_file.chunks():
                        copy.write(chunk)
            except psycopg.Error as exc:
                match = COPY_LINE.search(exc.diag.context or "")
                line = int(match.group(1)) + 1 if match else None
                message = (exc.diag.message_primary or str(exc)).strip()
                raise StructuralError(
                    f"unreadable CSV ({message})", file=csv_file.name, line=line
                ) from None
            rows = self.cur.rowcount
            if rows <= 0:
                raise StructuralError("the file has no data rows", file=csv_file.name, line=2)
            self.summary.rows += rows
            # The row count, so that joins on staged rows are planned for their real number (a
            # merge join of sorted millions instead of a hash join costs seconds). One column:
            # statistics of every text column cost more than they help here.
            self.execute(f"ANALYZE {table} (line)")

    # --- 2. validation -------------------------------------------------------------------
    def has_duplicates(self, table, sid="sid"):
        """Whether some non-blank `sid` of `table` appears twice.

        A unique index is tried first: a clean file, the usual case, then costs one parallel
        sorted build (a third of a hash aggregate over a million ids, which the planner, blind
        to how many ids there are, would spread over workers badly). Only when it fails is the
        file searched."""
        self.execute("SAVEPOINT roster_unique")
        try:
            self.execute(f"CREATE UNIQUE INDEX ON {table} ({sid}) WHERE {sid} <> ''")
        except psycopg.errors.UniqueViolation:
            self.execute("ROLLBACK TO SAVEPOINT roster_unique")
            found = True
        else:
            found = False
        # Not in a `finally`: after any other error the transaction is aborted, and that error,
        # not a failed RELEASE, is the one to report.
        self.execute("RELEASE SAVEPOINT roster_unique")
        return found

    def mark_duplicates(self, table):
        # Marking (an UPDATE joined to a hash aggregate) costs more than looking, and a clean
        # file has nothing to mark.
        if not self.has_duplicates(table):
            return
        first_on = rules.DUPLICATE.split("{}")
        self.execute(
            f"UPDATE {table} t SET error = {lit(first_on[0])} || d.first || {lit(first_on[1])} "
            f"FROM (SELECT sid, min(line) AS first FROM {table} WHERE sid <> '' "
            "GROUP BY sid HAVING count(*) > 1) d WHERE t.sid = d.sid AND t.line > d.first"
        )

    # The validating SELECTs end their derived tables with OFFSET 0: an optimisation fence, so
    # that each trimmed column is computed once, not again in every CASE branch that reads it.

    def validate_orgs(self):
        f = "orgs"
        self.execute("DROP TABLE IF EXISTS t_orgs")
        self.execute(
            f"""CREATE {self.table_kind} TABLE t_orgs AS
            SELECT *, CASE
                WHEN sid = '' THEN {lit(rules.MISSING_SOURCED_ID)}
                WHEN char_length(sid) > 255 THEN {lit(rules.SOURCED_ID_TOO_LONG)}
                WHEN del IS NULL THEN {lit(rules.BAD_STATUS)}
                WHEN del THEN NULL
                WHEN name = '' THEN {lit(rules.MISSING_NAME)}
                WHEN type NOT IN {in_list(rules.ORG_TYPES)} THEN {lit(rules.BAD_ORG_TYPE)}
                {self.length_checks([(c, n, label) for c, n, label in rules.ORG_LENGTHS[1:]])}
            END AS error
            FROM (SELECT s.line, {self.col(f, "sourcedId")} AS sid, {self.status_expr(f)} AS del,
                    {self.col(f, "name")} AS name, {self.col(f, "type")} AS type,
                    {self.col(f, "identifier")} AS identifier,
                    {self.col(f, "parentSourcedId")} AS parent_sourced_id
                  FROM s_orgs s OFFSET 0) x"""
        )
        self.mark_duplicates("t_orgs")

    def validate_roles(self):
        f = "roles"
        self.execute("DROP TABLE IF EXISTS t_roles")
        self.execute(
            f"""CREATE {self.table_kind} TABLE t_roles AS
            SELECT *, CASE
                WHEN sid = '' THEN {lit(rules.MISSING_SOURCED_ID)}
                WHEN user_sid = '' THEN {lit(rules.MISSING_USER)}
                WHEN del IS NULL THEN {lit(rules.BAD_STATUS)}
                WHEN del THEN NULL
                WHEN role NOT IN {in_list(rules.KNOWN_ROLES)} THEN {lit(rules.BAD_ROLE)}
            END AS error
            FROM (SELECT s.line, {self.col(f, "sourcedId")} AS sid,
                    {self.col(f, "userSourcedId")} AS user_sid, {self.status_expr(f)} AS del,
                    {self.col(f, "roleType")} AS role_type, {self.col(f, "role")} AS role,
                    {self.col(f, "orgSourcedId")} AS org
                  FROM s_roles s OFFSET 0) x"""
        )
        # One row per user: student if any student role; else the first guardian-type role
        # (primary rows first, then file order); the orgs of its student roles, in that order.
        guardian_roles = in_list(rules.GUARDIAN_ROLES)
        self.execute("DROP TABLE IF EXISTS t_roleinfo")
        self.execute(
            f"""CREATE {self.table_kind} TABLE t_roleinfo AS
            SELECT r.user_sid,
                bool_or(r.role = 'student') AS is_student,
                (array_agg(r.role ORDER BY r.role_type <> 'primary', r.line)
                    FILTER (WHERE r.role IN {guardian_roles}))[1] AS guardian_role,
                array_agg(r.org ORDER BY r.role_type <> 'primary', r.line)
                    FILTER (WHERE r.role = 'student') AS student_orgs
            FROM t_roles r
            WHERE r.error IS NULL AND NOT r.del
            GROUP BY r.user_sid"""
        )
        self.execute("ANALYZE t_roleinfo")

    def validate_users(self):
        f = "users"
        guardian_roles = in_list(rules.GUARDIAN_ROLES)
        email = f"btrim({self.raw(f, 'email')}, {WS})"  # as str.strip() for ASCII
        joins = ""
        if self.v12:
            roles_sent = self.mode("roles") != "absent"
            if roles_sent:
                joins += " LEFT JOIN t_roleinfo ri ON ri.user_sid = x.sid"
            fallback = self.mode("roles") != "bulk"
            if fallback:
                joins += (
                    " LEFT JOIN portal_student es ON es.sourced_id = x.sid"
                    " LEFT JOIN portal_guardian eg ON eg.sourced_id = x.sid"
                )
            kind = "CASE"
            role = "NULL::text"
            if roles_sent:
                kind += (
                    " WHEN ri.is_student THEN 'student'"
                    " WHEN ri.guardian_role IS NOT NULL THEN 'guardian'"
                    " WHEN ri.user_sid IS NOT NULL THEN 'other'"
                )
                role = "ri.guardian_role"
            if fallback:
                kind += (
                    " WHEN es.sourced_id IS NOT NULL THEN 'student'"
                    " WHEN eg.sourced_id IS NOT NULL THEN 'guardian'"
                )
                role = f"COALESCE({role}, eg.role)"
            kind += " END"
            role_error = f"WHEN kind IS NULL THEN {lit(rules.NO_ROLE)}"
            school_ref = ", " + self.col(f, "primaryOrgSourcedId") + " AS primary_org"
            student_school = "ri.student_orgs" if roles_sent else "NULL::text[]"
        else:
            kind = (
                "CASE WHEN x.role_raw = 'student' THEN 'student' "
                f"WHEN x.role_raw IN {guardian_roles} THEN 'guardian' "
                f"WHEN x.role_raw IN {in_list(rules.KNOWN_ROLES)} THEN 'other' END"
            )
            role = "x.role_raw"
            role_error = (
                f"WHEN role_raw NOT IN {in_list(rules.KNOWN_ROLES)} THEN {lit(rules.BAD_ROLE)}"
            )
            school_ref = ", " + self.col(f, "orgSourcedIds") + " AS org_ids"
            student_school = "NULL::text[]"
        to_validate = ""
        if self.has_digests:  # see match_unchanged
            to_validate = "WHERE s.line IN (SELECT line FROM t_same WHERE kind IS NULL)"
        person = self.length_checks(_person_columns())
        student = self.length_checks([("number", 64, "student number"), ("grade", 16, "grades")])
        guardian = self.length_checks([("phone", 64, "phone"), ("sms", 64, "sms")])
        self.execute("DROP TABLE IF EXISTS t_people")
        self.execute_parallel(
            f"""CREATE {self.table_kind} TABLE t_people AS
            SELECT *, CASE
                WHEN sid = '' THEN {lit(rules.MISSING_SOURCED_ID)}
                WHEN char_length(sid) > 255 THEN {lit(rules.SOURCED_ID_TOO_LONG)}
                WHEN del IS NULL THEN {lit(rules.BAD_STATUS)}
                WHEN del THEN NULL
                {role_error}
                WHEN kind = 'other' THEN NULL
                WHEN enabled IS NULL THEN {lit(rules.BAD_ENABLED)}
                WHEN given_name = '' THEN {lit(rules.MISSING_GIVEN)}
                WHEN family_name = '' THEN {lit(rules.MISSING_FAMILY)}
                {person}
                {_scoped(student, "student")}
                {_scoped(guardian, "guardian")}
            END AS error
            FROM (SELECT x.*, {kind} AS kind,
                    CASE WHEN x.email_raw IS NULL THEN lower(x.email COLLATE "C")
                    END AS email_normalised, {role} AS role, {student_school} AS student_orgs,
                    {self.digest_expr()} AS digest
                  FROM (SELECT s.line, {self.col(f, "sourcedId")} AS sid,
                        {self.status_expr(f)} AS del, {self.row_digest_sql()} AS row_digest,
                        {self.col(f, "role") if not self.v12 else "''"} AS role_raw,
                        CASE lower({self.col(f, "enabledUser")} COLLATE "C")
                            WHEN 'true' THEN true WHEN '' THEN true WHEN 'false' THEN false
                        END AS enabled,
                        {self.col(f, "givenName")} AS given_name,
                        {self.col(f, "familyName")} AS family_name,
                        {self.col(f, "middleName")} AS middle_name,
                        {self.col(f, "preferredGivenName")} AS preferred_given_name,
                        {self.col(f, "username")} AS username,
                        {email} AS email,
                        CASE WHEN octet_length({self.raw(f, "email")})
                                  <> char_length({self.raw(f, "email")})
                             THEN {self.raw(f, "email")} END AS email_raw,
                        {self.col(f, "agentSourcedIds")} AS agents,
                        {self.col(f, self.number_field)} AS number,
                        {self.col(f, "grades")} AS grade,
                        {self.col(f, "phone")} AS phone,
                        {self.col(f, "sms")} AS sms
                        {school_ref}
                      FROM s_users s {to_validate}
                      OFFSET 0) x {joins} OFFSET 0) y"""
        )
        self.mark_duplicates("t_people")
        self.execute("ANALYZE t_people (sid, kind, del, error)")

    def validate_demographics(self):
        f = "demographics"
        low, high = rules.BIRTH_YEARS
        # Every valid birthDate spelled out (YYYY-MM-DD from 1900 to 2100, 73,414 of them): one
        # hash probe per row checks the pattern, the range and the day of the month at once and
        # gives the date, where a regex and six substr/int casts per row cost several times it.
        self.execute("DROP TABLE IF EXISTS t_dates")
        self.execute(
            f"""CREATE {self.table_kind} TABLE t_dates AS
            SELECT to_char(day, 'YYYY-MM-DD') AS text, day
            FROM (SELECT make_date({low}, 1, 1) + n AS day FROM generate_series(0,
                  make_date({high}, 12, 31) - make_date({low}, 1, 1)) n) d"""
        )
        # Counted, so that the probe is planned as one (a hash join) and not as a sort of every
        # staged row for a merge join, which costs several times more.
        self.execute("ANALYZE t_dates")
        self.execute("DROP TABLE IF EXISTS t_demo")
        self.execute_parallel(
            f"""CREATE {self.table_kind} TABLE t_demo AS
            SELECT x.*, CASE WHEN NOT x.del THEN v.day END AS day, CASE
                WHEN sid = '' THEN {lit(rules.MISSING_SOURCED_ID)}
                WHEN char_length(sid) > 255 THEN {lit(rules.SOURCED_ID_TOO_LONG)}
                WHEN del IS NULL THEN {lit(rules.BAD_STATUS)}
                WHEN del THEN NULL
                WHEN birth = '' THEN NULL
                WHEN v.day IS NULL THEN {lit(rules.BAD_BIRTH_DATE)}
            END AS error
            FROM (SELECT s.line, {self.col(f, "sourcedId")} AS sid, {self.status_expr(f)} AS del,
                    {self.col(f, "birthDate")} AS birth
                  FROM s_demographics s OFFSET 0) x
            LEFT JOIN t_dates v ON v.text = x.birth"""
        )
        self.mark_duplicates("t_demo")
        self.execute("ANALYZE t_demo (sid, error)")

    def validate_orgs_and_roles(self):
        if "orgs" in self.files:
            self.validate_orgs()
        if "roles" in self.files:
            self.validate_roles()

    def validate_people(self):
        """users.csv and demographics.csv, except the rows match_unchanged() set aside."""
        if "users" in self.files:
            self.validate_users()
        if "demographics" in self.files:
            self.validate_demographics()

    # --- 2b. unchanged rows --------------------------------------------------------------
    def digest_context(self):
        """What, besides a person's own rows, decides what the import stores for them.

        The version, the modes and headers of the files (a delta row never matches a bulk one),
        the student-number column and the stored orgs (a student's school depends on which orgs
        exist as schools: call this after merge_orgs). Any change re-checks every row once.
        """
        orgs = self.scalar(
            "SELECT md5(coalesce(string_agg(sourced_id || '/' || type, ',' "
            "ORDER BY sourced_id), '')) FROM portal_organisation"
        )
        parts = [DIGEST_VERSION, self.manifest.version, self.number_field, orgs]
        for file in ("users", "demographics", "roles"):
            header = self.files[file].header if file in self.files else None
            parts.append((file, self.mode(file), header))
        return hashlib.md5(repr(parts).encode(), usedforsecurity=False).hexdigest()

    def match_unchanged(self):
        """Set aside the users.csv rows whose input is the one their stored row was merged
        from: same digest (digest_expr), still active. They need no validation and no merge;
        their links are rebuilt with everyone's (from t_same.agents), and their birth dates,
        which demographics.csv gives, are checked in update_birth_dates_only.

        t_same gets every row of a file matched this way: `kind` is the stored kind of a row set
        aside, NULL for a row to validate (so validation reads just those lines, without an
        anti-join against a million set-aside ones). A sourcedId sent twice never matches (the
        duplicate is a row error, found by validation). Only rows merged without a row error
        get a digest, so a row set aside is one validation would pass again.
        """
        self.execute("DROP TABLE IF EXISTS t_same")
        self.execute(
            f"CREATE {self.table_kind} TABLE t_same "
            '(line bigint, sid text COLLATE "C", agents text COLLATE "C", kind text)'
        )
        if "users" not in self.files:
            return
        self.ctx = self.digest_context()
        self.has_digests = self.scalar(
            "SELECT EXISTS (SELECT 1 FROM portal_student WHERE roster_digest <> '') "
            "OR EXISTS (SELECT 1 FROM portal_guardian WHERE roster_digest <> '')"
        )
        if not self.has_digests:
            return  # a first import, say: nothing to match
        f = "users"
        sid = self.col(f, "sourcedId")
        # Created from the query rather than inserted into: only then may its scan of the staged
        # rows (the digests) run on parallel workers.
        self.execute("DROP TABLE t_same")
        kind = "k.kind"
        if self.has_duplicates("s_users", sid=f"({self.col(f, 'sourcedId', alias='')})"):
            kind = (
                f"CASE WHEN x.sid NOT IN (SELECT {sid} FROM s_users s GROUP BY 1 "
                "HAVING count(*) > 1) THEN k.kind END"
            )
        # One hash join: the planner cannot estimate a join on a computed digest and would sort
        # both millions for a merge join instead (twice the time). OFFSET 0 computes each
        # digest once; inlined, the join would compute it again for every match.
        self.execute_parallel(
            f"""CREATE {self.table_kind} TABLE t_same AS
            SELECT x.line, x.sid, x.agents, {kind} AS kind
            FROM (SELECT s.line, {sid} AS sid, {self.raw(f, "agentSourcedIds")} AS agents,
                    {self.row_digest_sql()} AS row_digest
                  FROM s_users s OFFSET 0) x {self.roleinfo_join()}
            LEFT JOIN (SELECT sourced_id, roster_digest, 'student' AS kind FROM portal_student
                  WHERE active AND roster_digest <> ''
                  UNION ALL
                  SELECT sourced_id, roster_digest, 'guardian' FROM portal_guardian
                  WHERE active AND roster_digest <> '') k
              ON k.sourced_id = x.sid AND k.roster_digest = {self.digest_expr()}""",
            enable_mergejoin="off",
        )
        self.execute("ANALYZE t_same (sid, kind)")

    def row_digest_sql(self):
        """A 64-bit hash, seeded by digest_context(), of the users.csv values, as sent, that
        decide a person's row: sourcedId, status, every field merged, what kind and school come
        from. Not agentSourcedIds (links are rebuilt from everyone's each time),
        dateLastModified, password or metadata. Values as sent, untrimmed: a change in stray
        spaces only costs a comparison in full. PostgreSQL's own record hash, not md5 of the
        joined values: a third of the cost per row (md5() sets up a hash context per call), and
        a changed row shares its stored digest with odds of 2^-64."""
        headers = [
            "sourcedId", "status", "enabledUser", "givenName", "familyName", "middleName",
            "preferredGivenName", "username", "email", self.number_field, "grades", "phone",
            "sms", "primaryOrgSourcedId" if self.v12 else "role", "orgSourcedIds",
        ]  # fmt: skip
        values = ", ".join(self.raw("users", h) + "::text" for h in dict.fromkeys(headers))
        return f"hash_record_extended(ROW({values}), {self.seed()})::text"

    def seed(self):
        """digest_context() as the digest's hash seed: a new context changes every digest."""
        return int(self.ctx[:15], 16)

    def digest_expr(self, alias="x"):
        """The person's digest: the row digest, and (1.2) what roles.csv says of them."""
        if self.v12 and "roles" in self.files:
            return (
                f"hash_record_extended(ROW({alias}.row_digest, ri.is_student, ri.guardian_role, "
                f"ri.student_orgs), {self.seed()})::text"
            )
        return f"{alias}.row_digest"

    def roleinfo_join(self, alias="x"):
        if self.v12 and "roles" in self.files:
            return f" LEFT JOIN t_roleinfo ri ON ri.user_sid = {alias}.sid"
        return ""

    def same_count(self, kind):
        """Rows of a kind ('student', 'guardian') set aside as unchanged."""
        if self.same_counts is None:  # one pass for both kinds
            self.cur.execute("SELECT kind, count(*) FROM t_same GROUP BY kind")
            self.same_counts = dict(self.cur.fetchall())
        return self.same_counts.get(kind, 0)

    def error_query(self):
        parts = []
        if "orgs" in self.files:
            parts.append("SELECT 'orgs.csv' AS file, line, error, 'orgs' AS kind FROM t_orgs")
        if "users" in self.files:
            parts.append(
                "SELECT 'users.csv' AS file, line, error, CASE kind WHEN 'student' THEN "
                "'students' WHEN 'guardian' THEN 'guardians' END AS kind FROM t_people"
            )
        if "demographics" in self.files:
            parts.append(
                "SELECT 'demographics.csv' AS file, line, error, 'students' AS kind FROM t_demo"
            )
        if "roles" in self.files:
            parts.append("SELECT 'roles.csv' AS file, line, error, NULL AS kind FROM t_roles")
        return " UNION ALL ".join(f"({p} WHERE error IS NOT NULL)" for p in parts)

    def collect_errors(self):
        """Count the row errors per kind, keep the first ERRORS_KEPT; return the total."""
        query = self.error_query()
        if not query:
            return 0
        self.cur.execute(f"SELECT kind, count(*) FROM ({query}) e GROUP BY kind")
        total = 0
        for kind, count in self.cur.fetchall():
            total += count
            if kind:
                self.summary.counts[kind].skipped += count
        if not total:
            return 0  # a clean set: no second pass to list nothing
        self.cur.execute(
            f"SELECT file, line, error FROM ({query}) e ORDER BY file, line "
            f"LIMIT {rules.ERRORS_KEPT}"
        )
        self.summary.errors = [RowError(f, line, reason) for f, line, reason in self.cur]
        self.summary.error_count = total
        return total

    # --- 3. merge ------------------------------------------------------------------------
    def merge_orgs(self):
        if "orgs" not in self.files:
            return
        counts = self.summary.counts["orgs"]
        columns = ["name", "type", "identifier", "parent_sourced_id"]
        valid = "n.error IS NULL AND NOT n.del"
        counts.updated = self.execute(
            "UPDATE portal_organisation o SET "
            + ", ".join(f"{c} = n.{c}" for c in columns)
            + f", active = true, updated_at = %(ts)s FROM t_orgs n WHERE {valid} "
            f"AND o.sourced_id = n.sid AND ({', '.join('o.' + c for c in columns)}, o.active) "
            f"IS DISTINCT FROM ({', '.join('n.' + c for c in columns)}, true)",
            {"ts": self.ts},
        )
        counts.created = self.execute(
            f"INSERT INTO portal_organisation (sourced_id, active, created_at, updated_at, "
            f"{', '.join(columns)}) SELECT n.sid, true, %(ts)s, %(ts)s, "
            f"{', '.join('n.' + c for c in columns)} FROM t_orgs n WHERE {valid} AND NOT EXISTS "
            "(SELECT 1 FROM portal_organisation o WHERE o.sourced_id = n.sid)",
            {"ts": self.ts},
        )
        listed = self.scalar(f"SELECT count(*) FROM t_orgs n WHERE {valid}")
        counts.unchanged = listed - counts.created - counts.updated
        if self.mode("orgs") == "bulk":
            gone = "NOT EXISTS (SELECT 1 FROM t_orgs n WHERE n.sid = o.sourced_id)"
        else:
            gone = "o.sourced_id IN (SELECT sid FROM t_orgs WHERE del AND error IS NULL)"
        counts.deactivated = self.execute(
            f"UPDATE portal_organisation o SET active = false, updated_at = %(ts)s "
            f"WHERE o.active AND {gone}",
            {"ts": self.ts},
        )

    def fix_non_ascii_emails(self):
        """The few non-ASCII addresses: trimmed and normalised by the Python function itself."""
        self.cur.execute("SELECT line, email_raw FROM t_people WHERE email_raw IS NOT NULL")
        fixes = [(line, raw.strip(), normalise_email(raw)) for line, raw in self.cur.fetchall()]
        if not fixes:
            return
        self.execute("DROP TABLE IF EXISTS t_email_fix")
        self.execute(
            f"CREATE {self.table_kind} TABLE t_email_fix "
            "(line bigint, email text, email_normalised text)"
        )
        with self.cur.copy("COPY t_email_fix FROM STDIN") as copy:
            for row in fixes:
                copy.write_row(row)
        self.execute(
            "UPDATE t_people p SET email = f.email, email_normalised = f.email_normalised "
            "FROM t_email_fix f WHERE p.email_raw IS NOT NULL AND p.line = f.line"
        )

    def build_people(self):
        person = [c for c, _, _ in _person_columns()] + ["email_normalised"]
        common = ", ".join(f"p.{c}" for c in person)
        valid = "p.error IS NULL AND NOT p.del"
        # Birth date: from a valid demographics row; else, when demographics.csv is a bulk
        # snapshot, none; else (not sent, delta, or its row was skipped) the stored one.
        birth = "NULL::date"
        joins = ""
        if "demographics" in self.files:
            joins += " LEFT JOIN t_demo d ON d.sid = p.sid AND d.error IS NULL"
            has_errors = self.scalar("SELECT count(*) FROM t_demo WHERE error IS NOT NULL")
            keep = self.mode("demographics") != "bulk" or has_errors
            birth = "CASE WHEN d.sid IS NOT NULL THEN d.day"
            if keep:
                joins += " LEFT JOIN portal_student e ON e.sourced_id = p.sid"
                if self.mode("demographics") == "bulk":
                    joins += (
                        " LEFT JOIN (SELECT DISTINCT sid FROM t_demo WHERE error IS NOT NULL) de"
                        " ON de.sid = p.sid"
                    )
                    birth += " WHEN de.sid IS NULL THEN NULL"
                birth += " ELSE e.birth_date"
            birth += " END"
        else:
            joins += " LEFT JOIN portal_student e ON e.sourced_id = p.sid"
            birth = "e.birth_date"
        if self.v12:
            school = (
                "COALESCE((SELECT o.sourced_id FROM unnest(p.student_orgs) WITH ORDINALITY "
                "AS x(id, n) JOIN portal_organisation o ON o.sourced_id = x.id "
                "AND o.type = 'school' ORDER BY x.n LIMIT 1), "
                "(SELECT o.sourced_id FROM portal_organisation o "
                "WHERE o.sourced_id = p.primary_org AND o.type = 'school'))"
            )
        else:
            school = (
                "CASE WHEN strpos(p.org_ids, ',') = 0 THEN so.sourced_id ELSE "
                "(SELECT o.sourced_id FROM unnest(string_to_array(p.org_ids, ',')) "
                "WITH ORDINALITY AS x(id, n) JOIN portal_organisation o "
                "ON o.sourced_id = btrim(x.id) AND o.type = 'school' ORDER BY x.n LIMIT 1)"
                " END"
            )
            joins += (
                " LEFT JOIN portal_organisation so ON so.sourced_id = p.org_ids"
                " AND so.type = 'school'"
            )
        self.cur.execute(
            f"SELECT count(*) FILTER (WHERE p.kind = 'student'), count(*) FILTER "
            f"(WHERE p.kind = 'guardian'), count(*) FILTER (WHERE p.kind = 'other') "
            f"FROM t_people p WHERE {valid}"
        )
        self.incoming["students"], self.incoming["guardians"], self.summary.ignored_users = (
            self.cur.fetchone()
        )
        selects = {
            "students": f"""SELECT p.sid, {common}, p.enabled, p.number AS student_number,
                {birth} AS birth_date, p.grade, {school} AS school_id, p.digest
                FROM t_people p {joins} WHERE {valid} AND p.kind = 'student'""",
            "guardians": f"""SELECT p.sid, {common}, p.enabled, p.role, p.phone, p.sms, p.digest
                FROM t_people p WHERE {valid} AND p.kind = 'guardian'""",
        }
        for kind, select in selects.items():
            table = f"t_{kind}"
            self.execute(f"DROP TABLE IF EXISTS {table}")
            if not self.was_empty[kind]:
                self.execute(f"CREATE {self.table_kind} TABLE {table} AS {select}")
                self.execute(f"ANALYZE {table} (sid)")
                self.staged[kind] = table
            else:
                # Into an empty table (a first import) every row is an insert, read once:
                # straight from the query, not through a temp table written for it.
                self.staged[kind] = f"({select})"

    def merge_kind(self, kind, table, columns, extra_insert=""):
        counts = self.summary.counts[kind]
        params = {"ts": self.ts}
        staged = self.staged[kind]
        empty = self.was_empty[kind]
        if not empty:
            counts.updated = self.execute(
                f"UPDATE {table} o SET "
                + ", ".join(f"{c} = n.{c}" for c in columns)
                + ", active = true, updated_at = %(ts)s, roster_digest = n.digest "
                f"FROM {staged} n WHERE o.sourced_id = n.sid "
                f"AND ({', '.join('o.' + c for c in columns)}, o.active) "
                f"IS DISTINCT FROM ({', '.join('n.' + c for c in columns)}, true)",
                params,
            )
            # Same values from a different input (a new dateLastModified, say): remember the new
            # input; the row itself did not change, so neither does updated_at.
            self.execute(
                f"UPDATE {table} o SET roster_digest = n.digest FROM {staged} n "
                "WHERE o.sourced_id = n.sid AND o.roster_digest <> n.digest"
            )
        extra_columns = ", email_shared, unprovisioned_reason" if extra_insert else ""
        if empty and extra_insert:
            # Guardians into an empty table: everyone is active and in this file, so the
            # shared emails are known before the insert and flag_shared_emails has nothing left.
            self.execute("DROP TABLE IF EXISTS t_shared")
            self.execute_serial(
                f"CREATE {self.table_kind} TABLE t_shared AS SELECT email_normalised AS email "
                "FROM t_people WHERE error IS NULL AND NOT del AND kind = 'guardian' "
                "AND email_normalised <> '' GROUP BY email_normalised HAVING count(*) > 1"
            )
            extra_insert = ", n.email_normalised IN (SELECT email FROM t_shared), ''"
            self.shared_flagged = True
        # Into an empty table (a first import) a plain INSERT: no anti-join to probe.
        not_stored = (
            ""
            if empty
            else f"WHERE NOT EXISTS (SELECT 1 FROM {table} o WHERE o.sourced_id = n.sid)"
        )
        counts.created = self.execute(
            f"INSERT INTO {table} (sourced_id, active, created_at, updated_at, roster_digest, "
            f"{', '.join(columns)}{extra_columns}) SELECT n.sid, true, %(ts)s, %(ts)s, n.digest, "
            f"{', '.join('n.' + c for c in columns)}{extra_insert} FROM {staged} n {not_stored}",
            params,
        )
        listed = self.incoming[kind] + self.same_count(kind[:-1])
        counts.unchanged = listed - counts.created - counts.updated
        self.listed_stored[kind] = listed  # after the insert every listed row is stored

    def deactivate(self, kind, table, people_kind):
        if not self.active_before[kind]:
            return  # nobody to deactivate (a first import): skip the anti-join
        params = {"ts": self.ts}
        if self.mode("users") == "bulk" and self.listed_stored[kind] == self.scalar(
            f"SELECT count(*) FROM {table}"
        ):
            return  # every stored row of this kind is in the file: nobody is absent
        if self.mode("users") == "bulk":
            # Listed = a valid row of this kind, or any row in error (skipped, not gone).
            gone = (
                "NOT EXISTS (SELECT 1 FROM t_people p WHERE p.sid = o.sourced_id "
                f"AND (p.error IS NOT NULL OR p.kind = '{people_kind}')) "
                "AND NOT EXISTS (SELECT 1 FROM t_same m WHERE m.sid = o.sourced_id "
                f"AND m.kind = '{people_kind}')"
            )
        else:
            gone = "o.sourced_id IN (SELECT sid FROM t_people WHERE del AND error IS NULL)"
        self.summary.counts[kind].deactivated = self.execute(
            f"UPDATE {table} o SET active = false, updated_at = %(ts)s WHERE o.active AND {gone}",
            params,
        )

    def merge_people(self):
        if "users" not in self.files:
            self.update_birth_dates_only()
            return
        self.fix_non_ascii_emails()
        for kind, table in (("students", "portal_student"), ("guardians", "portal_guardian")):
            self.was_empty[kind] = not self.scalar(f"SELECT EXISTS (SELECT 1 FROM {table})")
        self.build_people()
        if self.is_bulk_load():
            self.restore = self.drop_secondary_structures(BULK_LOAD_TABLES)
        person = [c for c, _, _ in _person_columns()] + ["email_normalised", "enabled"]
        self.merge_kind(
            "students",
            "portal_student",
            [*person, "student_number", "birth_date", "grade", "school_id"],
        )
        self.merge_kind(
            "guardians",
            "portal_guardian",
            [*person, "role", "phone", "sms"],
            extra_insert=", false, ''",
        )
        self.update_birth_dates_only()
        self.deactivate("students", "portal_student", "student")
        self.deactivate("guardians", "portal_guardian", "guardian")

    def is_bulk_load(self):
        """A first import (or one that more than triples the roster) is loaded like a restore."""
        incoming = self.incoming["students"] + self.incoming["guardians"]
        if incoming < BULK_LOAD_MIN_ROWS:
            return False  # a nightly run: no need to count the stored rows
        existing = self.scalar(
            "SELECT (SELECT count(*) FROM portal_student) + (SELECT count(*) FROM portal_guardian)"
        )
        return incoming - existing >= BULK_LOAD_MIN_ROWS and existing * 3 < incoming

    def drop_secondary_structures(self, tables):
        """Drop secondary indexes, unique and foreign-key constraints; return what restores them.

        PostgreSQL's own advice for populating a database: maintaining every index row by row
        and queueing a deferred foreign-key check per inserted row costs several times more
        than building the indexes once and validating each foreign key with one join at the end.
        Primary keys stay (other apps' foreign keys point at them). This runs in the import's
        transaction, so a failure restores everything; the price is an exclusive lock on the
        roster tables until commit, which is why only a big load does it.
        """
        tables_sql = "ARRAY[" + ", ".join(f"{lit(t)}::regclass" for t in tables) + "]"
        self.cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
            f"FROM pg_constraint WHERE conrelid = ANY({tables_sql}) AND contype IN ('f', 'u') "
            "ORDER BY contype DESC, conname"
        )
        constraints = self.cur.fetchall()
        self.cur.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
            f"WHERE indrelid = ANY({tables_sql}) AND NOT indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid "
            "AND c.conrelid = i.indrelid) ORDER BY 1"
        )
        indexes = self.cur.fetchall()
        for table, name, _, _ in constraints:
            self.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            self.execute(f"DROP INDEX {name}")

        def restore():
            self.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                self.execute(definition)
            for table, name, definition, _ in constraints:  # unique ones first (ORDER BY)
                self.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            # Statistics for the rows just loaded, before autovacuum gets to them: the next
            # import's joins against these tables are planned for a million rows, not for none
            # (the keys it joins on suffice; autovacuum does the rest later).
            for table in tables:
                key = "guardian_id" if table == "portal_guardianstudent" else "sourced_id"
                self.execute(f"ANALYZE {table} ({key})")

        return restore

    def restore_secondary_structures(self):
        if self.restore is not None:
            self.restore()
            self.restore = None

    def listed(self, kind):
        """The valid rows of a kind merged from this users.csv (not those set aside)."""
        if self.staged[kind].startswith("t_"):
            return self.staged[kind]
        valid = f"error IS NULL AND NOT del AND kind = '{kind[:-1]}'"
        return f"(SELECT sid FROM t_people WHERE {valid}) AS {kind}"

    def update_birth_dates_only(self):
        """Birth dates for the students the merge did not write: those set aside as unchanged
        (demographics.csv is not in their digest) and those not in this users.csv (a delta)."""
        if "demographics" not in self.files:
            return
        counts = self.summary.counts["students"]
        birth = "d.day"  # NULL for a blank birthDate and for tobedeleted
        not_listed = ""
        if "users" in self.files:
            # As build_people: a valid row's date; else, from a bulk file without an error
            # row for them, none; else the stored one.
            no_rows = "false"
            if self.mode("demographics") == "bulk":
                no_rows = "NOT EXISTS (SELECT 1 FROM t_demo e WHERE e.sid = m.sid)"
            same = self.update_birth_dates(
                f"""SELECT m.sid, {birth} AS birth FROM t_same m
                LEFT JOIN t_demo d ON d.sid = m.sid AND d.error IS NULL
                WHERE m.kind = 'student' AND (d.sid IS NOT NULL OR {no_rows})"""
            )
            counts.updated += same
            counts.unchanged -= same
            if self.was_empty["students"]:
                return  # every stored student was just merged from this users.csv
            not_listed = (
                f"AND NOT EXISTS (SELECT 1 FROM {self.listed('students')} WHERE sid = d.sid) "
                "AND NOT EXISTS (SELECT 1 FROM t_same m WHERE m.sid = d.sid "
                "AND m.kind = 'student')"
            )
        counts.updated += self.update_birth_dates(
            f"SELECT d.sid, {birth} AS birth FROM t_demo d WHERE d.error IS NULL {not_listed}"
        )

    def update_birth_dates(self, dates):
        """Store the birth dates of `dates` (sid, birth) that differ; return how many did.

        An UPDATE never runs on parallel workers, and over half a million students its joins
        are most of its cost. So the few rows that differ (none, in an unchanged re-import) are
        found first, by a statement that can run on them, and only those are updated."""
        self.execute("DROP TABLE IF EXISTS t_births")
        differ = self.execute_parallel(
            f"""CREATE {self.table_kind} TABLE t_births AS
            SELECT x.sid, x.birth FROM ({dates}) x JOIN portal_student o ON o.sourced_id = x.sid
            WHERE o.birth_date IS DISTINCT FROM x.birth"""
        )
        if not differ:
            return 0
        return self.execute(
            "UPDATE portal_student o SET birth_date = x.birth, updated_at = %(ts)s "
            "FROM t_births x WHERE o.sourced_id = x.sid",
            {"ts": self.ts},
        )

    def merge_links(self):
        if "users" not in self.files:
            return
        counts = self.summary.counts["links"]
        agents = "btrim(a)"

        def people(kind):  # (sid, agents) of the valid people of a kind, set-aside rows too
            return (
                f"(SELECT sid, agents FROM t_people WHERE error IS NULL AND NOT del "
                f"AND kind = '{kind}' AND agents <> '' UNION ALL SELECT sid, agents FROM t_same "
                f"WHERE kind = '{kind}' AND agents <> '')"
            )

        self.execute("DROP TABLE IF EXISTS t_links")
        # enable_sort off: blind to how many of a million pairs are distinct, the planner would
        # sort them all for the DISTINCT; one hash of them costs much less.
        self.execute_parallel(
            # Each side's own person is known to be stored with its kind (just merged), so a
            # pair is valid when the agent named is of the other kind.
            f"""CREATE {self.table_kind} TABLE t_links AS
            SELECT DISTINCT x.s, x.g, x.ok FROM (
                SELECT p.sid AS s, a.id AS g, (gd.sourced_id IS NOT NULL) AS ok
                FROM {people("student")} p
                CROSS JOIN LATERAL (SELECT {agents} AS id
                                    FROM string_to_table(p.agents, ',') a) a
                LEFT JOIN portal_guardian gd ON gd.sourced_id = a.id
                WHERE a.id <> ''
                UNION ALL
                SELECT a.id, p.sid, (st.sourced_id IS NOT NULL)
                FROM {people("guardian")} p
                CROSS JOIN LATERAL (SELECT {agents} AS id
                                    FROM string_to_table(p.agents, ',') a) a
                LEFT JOIN portal_student st ON st.sourced_id = a.id
                WHERE a.id <> ''
            ) x""",
            enable_sort="off",
        )
        if not self.scalar("SELECT EXISTS (SELECT 1 FROM portal_guardianstudent)"):
            # No stored link (a first import): nothing to diff against or delete.
            counts.created = self.execute(
                "INSERT INTO portal_guardianstudent (guardian_id, student_id) "
                "SELECT g, s FROM t_links WHERE ok"
            )
        elif self.mode("users") == "bulk":
            self.execute("ANALYZE t_links (ok)")
            # The links of everyone in the file are replaced by what the file says. One full
            # join finds both the links to add and the stored links the file no longer gives.
            self.execute("DROP TABLE IF EXISTS t_link_diff")
            self.execute(
                f"""CREATE {self.table_kind} TABLE t_link_diff AS
                SELECT k.s, k.g, l.id, l.student_id, l.guardian_id
                FROM (SELECT s, g FROM t_links WHERE ok) k
                FULL JOIN portal_guardianstudent l ON l.student_id = k.s AND l.guardian_id = k.g
                WHERE k.s IS NULL OR l.id IS NULL"""
            )
            counts.deactivated = self.execute(
                f"""DELETE FROM portal_guardianstudent WHERE id IN (
                    SELECT id FROM t_link_diff WHERE s IS NULL
                      AND (student_id IN (SELECT sid FROM {self.listed("students")})
                           OR guardian_id IN (SELECT sid FROM {self.listed("guardians")})
                           OR student_id IN (SELECT sid FROM t_same WHERE kind = 'student')
                           OR guardian_id IN (SELECT sid FROM t_same WHERE kind = 'guardian')))"""
            )
            counts.created = self.execute(
                """INSERT INTO portal_guardianstudent (guardian_id, student_id)
                SELECT g, s FROM t_link_diff WHERE id IS NULL"""
            )
        else:
            self.execute("ANALYZE t_links (ok)")
            counts.deactivated = self.execute(
                """DELETE FROM portal_guardianstudent l
                WHERE l.student_id IN (SELECT sid FROM t_people WHERE del AND error IS NULL)
                   OR l.guardian_id IN (SELECT sid FROM t_people WHERE del AND error IS NULL)"""
            )
            counts.created = self.execute(
                """INSERT INTO portal_guardianstudent (guardian_id, student_id)
                SELECT k.g, k.s FROM t_links k WHERE k.ok AND NOT EXISTS (
                    SELECT 1 FROM portal_guardianstudent l
                    WHERE l.guardian_id = k.g AND l.student_id = k.s)"""
            )
        self.cur.execute(
            "SELECT count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok) FROM t_links"
        )
        ok, skipped = self.cur.fetchone()
        counts.unchanged = ok - counts.created
        counts.skipped = skipped

    def flag_shared_emails(self):
        """email_shared = another active guardian has the same non-empty normalised email.

        Only the import writes a guardian's email or active flag, and it leaves the flags right
        after every run: a run that wrote no guardian has nothing to recompute."""
        guardians = self.summary.counts["guardians"]
        if self.shared_flagged or not (
            guardians.created or guardians.updated or guardians.deactivated
        ):
            return
        self.execute("DROP TABLE IF EXISTS t_shared")
        self.execute(
            f"CREATE {self.table_kind} TABLE t_shared AS SELECT email_normalised AS email "
            "FROM portal_guardian WHERE active AND email_normalised <> '' "
            "GROUP BY email_normalised HAVING count(*) > 1"
        )
        params = {"ts": self.ts}
        self.execute(
            "UPDATE portal_guardian SET email_shared = true, updated_at = %(ts)s WHERE "
            "NOT email_shared AND active AND email_normalised IN (SELECT email FROM t_shared)",
            params,
        )
        self.execute(
            "UPDATE portal_guardian SET email_shared = false, updated_at = %(ts)s WHERE "
            "email_shared AND NOT (active AND email_normalised IN (SELECT email FROM t_shared))",
            params,
        )

    def drop_staging(self):
        if self.schema is not None:
            self.execute(f"DROP SCHEMA {self.schema} CASCADE")
            self.schema = None
            return
        tables = [f"s_{f}" for f in self.files] + [
            "t_orgs", "t_roles", "t_roleinfo", "t_people", "t_demo", "t_dates", "t_email_fix",
            "t_students", "t_guardians", "t_links", "t_link_diff", "t_shared", "t_births",
            "t_same",
        ]  # fmt: skip
        self.execute("DROP TABLE IF EXISTS " + ", ".join(tables))


def _person_columns():
    """(t_people column, max length, label) of the Person fields, in rules.PERSON_LENGTHS order."""
    return rules.PERSON_LENGTHS


def _scoped(checks_sql, kind):
    """Length checks that apply to one kind only."""
    return checks_sql.replace(" WHEN ", f" WHEN kind = '{kind}' AND ")
