"""The OneRoster import on PostgreSQL: what it stores, what it refuses, what it reports."""

import os
import subprocess
import sys
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from portal.models import Guardian, GuardianStudent, Organisation, Student
from portal.normalisation import normalise_email
from portal.roster.importer import import_roster
from portal.roster.signals import roster_imported
from portal.roster.summary import SafetyStop, StructuralError, TooManyRowErrors
from portal.roster.synthetic import write_roster
from tests.portal.roster_helpers import guardian, student, write_set

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def family(version="1.1"):
    """Two siblings; one parent linked from the students' side, one from her own side, a relative
    linked from both sides, a disabled guardian, and a teacher (ignored)."""
    users = [
        student("s1", "100001", agentSourcedIds="g1,g3", password="AG030912"),
        student("s2", "100002", given="Minh", family="Nguyễn", orgSourcedIds="d1,sch2"),
        guardian("g1", " Rosa.Garcia@Example.com "),
        guardian(
            "g2",
            "tuan.nguyen@example.net",
            given="Tuấn",
            family="Nguyễn",
            role="guardian",
            agentSourcedIds="s1,s2",
        ),
        guardian("g3", "", given="Đức", family="Đặng", role="relative", agentSourcedIds="s1"),
        guardian("g4", "off@example.org", given="Ñoño", family="Ñúñez", enabledUser="FALSE"),
        {**guardian("t1", "teacher@example.org"), "role": "teacher"},
    ]
    demographics = [
        {"sourcedId": "s1", "birthDate": "2012-03-09"},
        {"sourcedId": "s2", "birthDate": ""},
    ]
    return {"version": version, "users": users, "demographics": demographics}


def links():
    return set(GuardianStudent.objects.values_list("guardian_id", "student_id"))


def snapshot():
    return (
        sorted(Student.objects.values_list("sourced_id", "active", "updated_at")),
        sorted(Guardian.objects.values_list("sourced_id", "active", "email_shared", "updated_at")),
        sorted(Organisation.objects.values_list("sourced_id", "active", "updated_at")),
        sorted(links()),
    )


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("as_zip", [False, True])
def test_bulk_import_stores_people_schools_birth_dates_and_links_from_both_sides(
    tmp_path, version, as_zip
):
    path = write_set(tmp_path / "set", zip=as_zip, **family(version))

    summary = import_roster(path)

    s1, s2 = Student.objects.get(pk="s1"), Student.objects.get(pk="s2")
    assert (s1.student_number, s1.given_name, s1.family_name) == ("100001", "Ana", "García-López")
    assert s1.birth_date == date(2012, 3, 9) and s2.birth_date is None
    assert s1.school_id == "sch1"
    assert s2.school_id == ("sch2" if version == "1.1" else None)  # 1.2: primary org is d1
    assert s1.grade == "05" and s1.enabled and s1.active
    g1, g3, g4 = (Guardian.objects.get(pk=pk) for pk in ("g1", "g3", "g4"))
    assert g1.email == "Rosa.Garcia@Example.com"
    assert g1.email_normalised == "rosa.garcia@example.com"
    assert g3.role == "relative" and g3.email == ""
    assert g4.enabled is False and g4.active is True
    assert not Guardian.objects.filter(pk="t1").exists()
    assert not Student.objects.filter(pk="t1").exists()
    assert links() == {("g1", "s1"), ("g3", "s1"), ("g2", "s1"), ("g2", "s2")}
    # The password column is never stored anywhere.
    assert "AG030912" not in str(list(Student.objects.values()))
    assert summary.ignored_users == 1
    assert (summary["students"].created, summary["guardians"].created) == (2, 4)
    assert summary["links"].created == 4
    assert summary["orgs"].created == 3
    assert summary.error_count == 0


def test_second_school_in_org_list_is_found_in_1_1(tmp_path):
    import_roster(write_set(tmp_path / "a", **family("1.1")))
    assert Student.objects.get(pk="s2").school_id == "sch2"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_unchanged_reimport_changes_nothing_and_counts_everything_unchanged(tmp_path, version):
    path = write_roster(tmp_path / "r", students=150, seed=3, version=version)
    first = import_roster(path)
    before = snapshot()

    second = import_roster(path)

    assert snapshot() == before
    for kind in ("orgs", "students", "guardians", "links"):
        assert second[kind].created == second[kind].updated == second[kind].deactivated == 0
        assert second[kind].unchanged == first[kind].created > 0


def test_1_1_and_1_2_exports_of_the_same_district_import_the_same(tmp_path):
    import_roster(write_roster(tmp_path / "a", students=120, seed=5, version="1.1"))
    summary = import_roster(write_roster(tmp_path / "b", students=120, seed=5, version="1.2"))
    for kind in ("students", "guardians", "links"):
        assert summary[kind].created == summary[kind].updated == 0


def test_bom_on_every_file_and_crlf_line_ends_are_read(tmp_path):
    folder = write_set(tmp_path / "s", bom=("users", "orgs", "demographics"), **family())
    for name in ("users.csv", "demographics.csv"):
        file = folder / name
        file.write_bytes(file.read_bytes().replace(b"\n", b"\r\n"))
    import_roster(folder)
    assert Student.objects.get(pk="s1").birth_date == date(2012, 3, 9)
    assert Guardian.objects.filter(active=True).count() == 4


def test_shared_emails_are_flagged_also_when_they_differ_only_in_case(tmp_path):
    users = [
        student("s1", "1", agentSourcedIds="g1,g2,g3"),
        guardian("g1", "family@example.com"),
        guardian("g2", "Family@Example.COM"),
        guardian("g3", "own@example.com"),
        guardian("g4", ""),
        guardian("g5", ""),
    ]
    import_roster(write_set(tmp_path / "a", users=users))
    shared = set(Guardian.objects.filter(email_shared=True).values_list("pk", flat=True))
    assert shared == {"g1", "g2"}

    # g2 leaves the district: g1's address is then hers alone.
    import_roster(
        write_set(tmp_path / "b", users=[u for u in users if u["sourcedId"] != "g2"]),
        allow_mass_deactivation=True,
    )
    assert not Guardian.objects.filter(email_shared=True).exists()
    assert Guardian.objects.get(pk="g2").active is False


def test_absent_people_are_deactivated_and_reactivated_when_they_reappear(tmp_path):
    many = [student(f"s{n}", str(n)) for n in range(30)] + [guardian("g1", "a@example.com")]
    many[0]["agentSourcedIds"] = "g1"
    import_roster(write_set(tmp_path / "a", users=many))

    summary = import_roster(write_set(tmp_path / "b", users=many[1:]))

    assert Student.objects.get(pk="s0").active is False
    assert summary["students"].deactivated == 1 and summary["students"].unchanged == 29
    assert links() == set()  # g1 is in the file and no longer lists anyone
    assert summary["links"].deactivated == 1

    summary = import_roster(write_set(tmp_path / "c", users=many))
    assert Student.objects.get(pk="s0").active is True
    assert summary["students"].updated == 1 and summary["students"].deactivated == 0
    assert links() == {("g1", "s0")}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_delta_adds_links_updates_people_and_honours_tobedeleted(tmp_path, version):
    import_roster(write_set(tmp_path / "a", **family(version)))
    delta_users = [
        {**student("s3", "100003", agentSourcedIds="g1")},
        {**guardian("g1", "rosa.new@example.com")},
        {**student("s2", "100002"), "status": "tobedeleted"},
    ]
    summary = import_roster(
        write_set(
            tmp_path / "b",
            version=version,
            users=delta_users,
            demographics=[{"sourcedId": "s1", "birthDate": "2012-03-10"}],
            orgs=None,
            mode="delta",
        ),
        allow_mass_deactivation=True,
    )

    assert Student.objects.get(pk="s2").active is False
    assert Student.objects.get(pk="s1").birth_date == date(2012, 3, 10)
    assert Student.objects.get(pk="s3").active is True
    assert Guardian.objects.get(pk="g1").email_normalised == "rosa.new@example.com"
    # Not listed in the delta: untouched, links kept; s2's links are gone.
    assert Guardian.objects.get(pk="g2").active is True
    assert links() == {("g1", "s1"), ("g3", "s1"), ("g2", "s1"), ("g1", "s3")}
    assert summary["students"].deactivated == 1
    assert summary["students"].created == 1
    assert summary["links"].created == 1 and summary["links"].deactivated == 1


def test_1_2_delta_without_roles_keeps_the_kind_of_known_people(tmp_path):
    import_roster(write_set(tmp_path / "a", **family("1.2")))
    write_set(
        tmp_path / "b",
        version="1.2",
        users=[guardian("g2", "changed@example.net", given="Tuấn", family="Nguyễn")],
        orgs=None,
        mode="delta",
    )
    (tmp_path / "b" / "roles.csv").unlink()
    manifest = tmp_path / "b" / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("file.roles,delta", "file.roles,absent"))

    import_roster(tmp_path / "b")

    g2 = Guardian.objects.get(pk="g2")
    assert (g2.email, g2.role) == ("changed@example.net", "guardian")


def test_safety_stop_changes_nothing_and_the_override_applies(tmp_path):
    people = [student(f"s{n}", str(n)) for n in range(20)]
    import_roster(write_set(tmp_path / "a", users=people))
    before = snapshot()
    truncated = write_set(tmp_path / "b", users=people[:15])

    with pytest.raises(SafetyStop) as stopped:
        import_roster(truncated)
    assert "5 of 20 active students" in str(stopped.value)
    assert "--allow-mass-deactivation" in str(stopped.value)
    assert snapshot() == before

    with pytest.raises(CommandError, match="5 of 20 active students"):
        call_command("import_roster", str(truncated), stdout=StringIO())
    assert snapshot() == before

    out = StringIO()
    call_command("import_roster", str(truncated), "--allow-mass-deactivation", stdout=out)
    assert Student.objects.filter(active=False).count() == 5
    assert "elapsed_seconds=" in out.getvalue()


def test_share_below_the_limit_deactivates_without_the_flag(tmp_path, settings):
    settings.ROSTER_MAX_DEACTIVATE_SHARE = 0.30
    people = [student(f"s{n}", str(n)) for n in range(20)]
    import_roster(write_set(tmp_path / "a", users=people))
    import_roster(write_set(tmp_path / "b", users=people[:15]))
    assert Student.objects.filter(active=False).count() == 5


def _break(folder, name, content):
    (folder / name).write_bytes(content)
    return folder


@pytest.mark.parametrize(
    ("damage", "file", "line"),
    [
        ("missing_manifest", "manifest.csv", None),
        ("missing_file", "manifest.csv", "line"),
        ("missing_column", "users.csv", "line 1"),
        ("broken_quoting", "users.csv", "unterminated CSV quoted field"),
        ("empty_file", "demographics.csv", "line 1"),
        ("header_only", "demographics.csv", "line 2"),
        ("wrong_field_count", "users.csv", "line 2"),
    ],
)
def test_malformed_sets_apply_nothing_and_name_file_and_line(tmp_path, damage, file, line):
    import_roster(write_set(tmp_path / "first", **family()))
    before = snapshot()
    data = family()
    data["users"] = [{**u, "givenName": u["givenName"] + "X"} for u in data["users"]]
    folder = write_set(
        tmp_path / "bad", drop_columns=("familyName",) if damage == "missing_column" else (), **data
    )
    if damage == "missing_manifest":
        (folder / "manifest.csv").unlink()
    elif damage == "missing_file":
        (folder / "demographics.csv").unlink()
    elif damage == "broken_quoting":
        text = (folder / "users.csv").read_text(encoding="utf-8-sig").splitlines()
        text[2] = text[2].replace("Minh", '"Minh', 1)
        (folder / "users.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    elif damage == "empty_file":
        _break(folder, "demographics.csv", b"")
    elif damage == "header_only":
        header = (folder / "demographics.csv").read_bytes().splitlines()[0]
        _break(folder, "demographics.csv", header + b"\n")
    elif damage == "wrong_field_count":
        lines = (folder / "users.csv").read_bytes().splitlines()
        lines[1] += b",extra"
        _break(folder, "users.csv", b"\n".join(lines) + b"\n")

    with pytest.raises(CommandError) as failed:
        call_command("import_roster", str(folder), stdout=StringIO())

    message = str(failed.value)
    assert file in message
    if line:
        assert line in message
    assert "nothing was applied" in message
    assert snapshot() == before
    assert isinstance(failed.value.__cause__, StructuralError)


def test_missing_file_error_names_the_missing_file(tmp_path):
    folder = write_set(tmp_path / "a", **family())
    (folder / "users.csv").unlink()
    with pytest.raises(StructuralError, match=r"manifest.csv, line \d+: .*users.csv is missing"):
        import_roster(folder)


def test_command_exits_non_zero_on_a_structural_error(tmp_path):
    folder = write_set(tmp_path / "a", **family())
    (folder / "manifest.csv").unlink()
    env = {**os.environ, "DATABASE_URL": _database_url()}
    result = subprocess.run(
        [sys.executable, "manage.py", "import_roster", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "manifest.csv" in result.stderr


def _database_url():
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _synthetic_with_bad_rows(tmp_path, bad_users):
    folder = write_roster(tmp_path / "r", students=300, seed=7)
    users = folder / "users.csv"
    lines = users.read_text(encoding="utf-8-sig").splitlines()
    width = len(lines[0].split(","))
    bad = [
        "," * (width - 1),  # no sourcedId at all
        "stu-bad-role,,,true,org-school-001,principle,9,,Al,Bo,,9,,,,,,,x",
    ] + [
        f"stu-dup-{n},,,maybe,org-school-001,student,9,,Al,Bo,,9,,,,,,,x" for n in range(bad_users)
    ]
    users.write_text("\n".join([*lines, *bad]) + "\n", encoding="utf-8")
    demographics = folder / "demographics.csv"
    with open(demographics, "a", encoding="utf-8") as handle:
        handle.write("stu-99999999,,,2012-02-30,male,,,,,,,,,,,\n")
    return folder, len(lines) + 1


def test_bad_rows_are_skipped_and_reported_with_file_and_line(tmp_path):
    folder, first_bad_line = _synthetic_with_bad_rows(tmp_path, bad_users=1)
    out = StringIO()
    call_command("import_roster", str(folder), stdout=out)
    report = out.getvalue()
    assert f"users.csv, line {first_bad_line}: missing sourcedId" in report
    assert f"users.csv, line {first_bad_line + 1}: unknown role" in report
    assert f"users.csv, line {first_bad_line + 2}: enabledUser must be true or false" in report
    assert "birthDate is not a YYYY-MM-DD date" in report
    assert Student.objects.count() == 300  # every good row is in
    assert not Student.objects.filter(pk__startswith="stu-dup").exists()


def test_more_than_one_percent_bad_rows_aborts_and_applies_nothing(tmp_path):
    folder, _ = _synthetic_with_bad_rows(tmp_path, bad_users=20)
    with pytest.raises(TooManyRowErrors, match="more than 1%"):
        import_roster(folder)
    assert not Student.objects.exists() and not Organisation.objects.exists()


def test_duplicate_sourced_id_is_a_row_error_naming_the_first_line(tmp_path):
    folder = write_roster(tmp_path / "r", students=200, seed=8)
    users = folder / "users.csv"
    lines = users.read_text(encoding="utf-8-sig").splitlines()
    users.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    summary = import_roster(folder)
    assert [str(e) for e in summary.errors] == [
        f"users.csv, line {len(lines) + 1}: duplicate sourcedId (first on line 2)"
    ]


def test_signal_fires_inside_the_import_transaction_with_the_summary(tmp_path):
    seen = []

    def receiver(sender, summary, **kwargs):
        seen.append((summary, connection.in_atomic_block, Student.objects.count()))

    roster_imported.connect(receiver)
    try:
        summary = import_roster(write_set(tmp_path / "a", **family()))
    finally:
        roster_imported.disconnect(receiver)
    assert len(seen) == 1
    received, in_transaction, students = seen[0]
    assert received is summary and in_transaction and students == 2
    assert Student.objects.filter(updated_at=summary.changed_at).count() == 2


def test_email_normalisation_in_sql_equals_the_python_function(tmp_path):
    emails = [
        "Straße@Example.de",
        "oﬁce@example.com",
        "\uff21\uff22\uff23@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # full-width
        "\u212aelvin@example.com",  # Kelvin sign
        "İstanbul@example.com.tr",
        "  MiXeD@Example.ORG\t",
        "\u00a0nbsp@example.com\u3000",
        "plain@example.com",
        "x" * 300 + "@example.com",
    ]
    users = [student("s1", "1")] + [guardian(f"g{n}", e) for n, e in enumerate(emails)]
    import_roster(write_set(tmp_path / "a", users=users))
    for n, sent in enumerate(emails):
        g = Guardian.objects.get(pk=f"g{n}")
        assert g.email == sent.strip()
        assert g.email_normalised == normalise_email(sent), sent


def test_student_number_can_come_from_username(tmp_path, settings):
    settings.STUDENT_NUMBER_FIELD = "username"
    users = [student("s1", "unused", username="777001", identifier="STATE-9")]
    import_roster(write_set(tmp_path / "a", users=users))
    assert Student.objects.get(pk="s1").student_number == "777001"


def test_orgs_absent_from_a_bulk_file_are_deactivated(tmp_path):
    import_roster(write_set(tmp_path / "a", **family()))
    data = family()
    data["orgs"] = [
        {"sourcedId": "d1", "name": "USD", "type": "district"},
        {"sourcedId": "sch1", "name": "Lincoln Elementary", "type": "school"},
    ]
    summary = import_roster(write_set(tmp_path / "b", **data))
    assert Organisation.objects.get(pk="sch2").active is False
    assert summary["orgs"].deactivated == 1 and summary["orgs"].updated == 2


def _schema():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid::regclass::text LIKE 'portal_%%' ORDER BY 1"
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text LIKE 'portal_%%' ORDER BY 1"
        )
        return indexes, cursor.fetchall()


def test_a_big_first_import_rebuilds_every_index_and_constraint_it_set_aside(tmp_path, monkeypatch):
    from portal.roster import postgres

    monkeypatch.setattr(postgres, "BULK_LOAD_MIN_ROWS", 100)
    before = _schema()
    summary = import_roster(write_roster(tmp_path / "r", students=150, seed=9))
    assert _schema() == before
    assert summary["links"].created == GuardianStudent.objects.count() > 150
    # The constraints are live again: a link to nobody is refused.
    with pytest.raises(Exception, match="foreign key"), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "INSERT INTO portal_guardianstudent (guardian_id, student_id) VALUES ('x', 'y')"
        )


def test_1_2_role_rows_in_error_and_users_without_a_role_are_reported(tmp_path):
    folder = write_roster(tmp_path / "r", students=200, seed=10, version="1.2")
    roles = folder / "roles.csv"
    role_lines = roles.read_text(encoding="utf-8").splitlines()
    roles.write_text(
        "\n".join([*role_lines, "role-x,,,stu-00000001,primary,headmaster,,,org-school-001,"])
        + "\n",
        encoding="utf-8",
    )
    users = folder / "users.csv"
    user_lines = users.read_text(encoding="utf-8-sig").splitlines()
    orphan = ["stu-orphan", "", "", "true", "9", "", "Al", "Bo", "", "9"] + [""] * 13 + ["x"]
    users.write_text("\n".join([*user_lines, ",".join(orphan)]) + "\n", encoding="utf-8")

    summary = import_roster(folder)

    assert [str(e) for e in summary.errors] == [
        f"roles.csv, line {len(role_lines) + 1}: unknown role",
        f"users.csv, line {len(user_lines) + 1}: no role for this user (roles.csv)",
    ]
    assert Student.objects.get(pk="stu-00000001").active  # its valid student role still counts
    assert not Student.objects.filter(pk="stu-orphan").exists()


# --- Unchanged rows are set aside by their digest (postgres.match_unchanged) -----------------


def digests():
    return {
        **dict(Student.objects.values_list("sourced_id", "roster_digest")),
        **dict(Guardian.objects.values_list("sourced_id", "roster_digest")),
    }


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_reimport_writes_exactly_the_changed_rows_and_unchanged_ones_keep_their_stamp(
    tmp_path, version
):
    base = family(version)
    import_roster(write_set(tmp_path / "a", **base))
    assert all(digests().values())
    stamps = dict(Student.objects.values_list("sourced_id", "updated_at"))
    changed = {**base, "users": [dict(u) for u in base["users"]]}
    changed["users"][0]["givenName"] = "Anita"  # s1
    changed["users"][2]["dateLastModified"] = "2026-11-28"  # g1: same values, new input
    changed["demographics"] = [{"sourcedId": "s2", "birthDate": "2013-01-02"}]  # s1 loses its

    summary = import_roster(write_set(tmp_path / "b", **changed))

    s1, s2 = Student.objects.get(pk="s1"), Student.objects.get(pk="s2")
    assert (s1.given_name, s1.birth_date, s2.birth_date) == ("Anita", None, date(2013, 1, 2))
    assert s1.updated_at == s2.updated_at == summary.changed_at != stamps["s1"]
    assert summary["students"].updated == 2 and summary["students"].unchanged == 0
    assert summary["guardians"].updated == 0 and summary["guardians"].unchanged == 4
    assert Guardian.objects.get(pk="g1").updated_at != summary.changed_at
    assert links() == {("g1", "s1"), ("g3", "s1"), ("g2", "s1"), ("g2", "s2")}
    # The next identical run finds every row unchanged, g1 by the digest of its new input.
    again = import_roster(write_set(tmp_path / "c", **changed))
    assert again["students"].unchanged == 2 and again["guardians"].unchanged == 4
    assert again["students"].updated == again["guardians"].updated == 0


def test_a_set_aside_student_still_gets_the_birth_date_a_demographics_delta_changed(tmp_path):
    path = write_set(tmp_path / "a", **family())
    import_roster(path)
    import_roster(
        write_set(
            tmp_path / "b",
            users=None,
            orgs=None,
            demographics=[{"sourcedId": "s1", "birthDate": "2011-01-01"}],
            mode="delta",
        )
    )
    assert Student.objects.get(pk="s1").birth_date == date(2011, 1, 1)

    summary = import_roster(path)  # users.csv as before: s1 is set aside, its birth date is not

    assert Student.objects.get(pk="s1").birth_date == date(2012, 3, 9)
    assert summary["students"].updated == 1 and summary["students"].unchanged == 1


def test_a_duplicate_of_an_unchanged_row_is_still_reported(tmp_path):
    base = family()
    base["users"] += [student(f"x{n}", str(n)) for n in range(120)]  # one error stays under 1%
    import_roster(write_set(tmp_path / "a", **base))
    users = [*base["users"], base["users"][0]]  # s1 twice, identical

    summary = import_roster(write_set(tmp_path / "b", **{**base, "users": users}))

    assert [str(e) for e in summary.errors] == [
        f"users.csv, line {len(users) + 1}: duplicate sourcedId (first on line 2)"
    ]
    assert summary["students"].unchanged == 122 and summary["students"].skipped == 1


def test_changed_context_or_plain_path_writes_make_every_row_compared_again(tmp_path, settings):
    path = write_set(tmp_path / "a", **family())
    import_roster(path)
    first = digests()
    settings.STUDENT_NUMBER_FIELD = "username"  # the same files now mean other values
    summary = import_roster(path)
    assert summary["students"].unchanged == 2  # compared in full: the values happen to agree
    assert set(digests().values()).isdisjoint(first.values())

    import_roster(path, writer="plain")
    assert set(digests().values()) == {""}  # the plain path keeps no digests
    summary = import_roster(path)
    assert summary["students"].unchanged == 2 and all(digests().values())


def _staging_schemas():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'roster\\_import\\_%' "
            "UNION ALL SELECT relname FROM pg_class WHERE relname IN ('s_users', 't_people')"
        )
        return [name for (name,) in cursor.fetchall()]


def _roster_state():
    return (
        sorted(Student.objects.values_list("sourced_id", "school_id", "birth_date", "active")),
        sorted(Guardian.objects.values_list("sourced_id", "email_normalised", "email_shared")),
        sorted(links()),
    )


def test_staging_leaves_nothing_behind_after_an_import_or_a_failed_one(tmp_path):
    import_roster(write_roster(tmp_path / "good", students=50, seed=3))
    assert _staging_schemas() == []
    with pytest.raises(TooManyRowErrors):
        import_roster(_synthetic_with_bad_rows(tmp_path / "bad", bad_users=20)[0])
    assert _staging_schemas() == []


def test_staging_falls_back_to_temp_tables_when_no_schema_can_be_made(tmp_path):
    """A database role without CREATE on the database cannot make the staging schema; the
    import then stages in TEMP tables and stores exactly the same roster."""
    folder = write_roster(tmp_path / "r", students=120, seed=5)
    import_roster(folder)
    expected = _roster_state()
    _clear_roster()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'roster_import_' || pg_backend_pid()")
        (taken,) = cursor.fetchone()
        cursor.execute(f"CREATE SCHEMA {taken}")  # the name this import would use

    summary = import_roster(folder)

    assert summary["students"].created == len(expected[0])
    assert _roster_state() == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", [taken])
        assert cursor.fetchone() == (0,)  # nothing was staged there


def test_parallel_workers_read_the_staged_rows_of_the_open_transaction(tmp_path):
    """Staged tables are written and read inside the import's transaction; PostgreSQL runs
    every statement it can on a parallel worker here, and the roster stored is the same."""
    folder = write_roster(tmp_path / "r", students=120, seed=6)
    import_roster(folder)
    expected = _roster_state()
    again = import_roster(folder)
    _clear_roster()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        name = (
            "debug_parallel_query"
            if int(cursor.fetchone()[0]) >= 160000
            else ("force_parallel_mode")
        )
        cursor.execute(f"SET {name} = on")
    try:
        import_roster(folder)
        assert _roster_state() == expected
        assert import_roster(folder)["students"].unchanged == again["students"].unchanged
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"RESET {name}")


def _clear_roster():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the imports' deferred checks, now
        cursor.execute(
            "TRUNCATE portal_guardianstudent, portal_student, portal_guardian, "
            "portal_organisation CASCADE"
        )
