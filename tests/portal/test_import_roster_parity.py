"""Both write paths (PostgreSQL COPY + SQL, and the plain ORM path SQLite uses) agree exactly.

The same synthetic district — with bad rows, a second night's changes, 1.1 and 1.2 — goes
through each path into an empty roster; every stored value, link, count and row error must match.
"""

import pytest

from portal.models import Guardian, GuardianStudent, Organisation, Student
from portal.roster.importer import import_roster
from portal.roster.synthetic import write_roster

pytestmark = pytest.mark.django_db

# roster_digest is the PostgreSQL path's memo of unchanged input (the plain path keeps none).
EXCLUDE = {"created_at", "updated_at", "roster_digest"}


def state():
    def rows(model):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in EXCLUDE]
        return sorted(model.objects.values_list(*fields))

    return {
        "orgs": rows(Organisation),
        "students": rows(Student),
        "guardians": rows(Guardian),
        "links": sorted(GuardianStudent.objects.values_list("guardian_id", "student_id")),
    }


def clear():
    GuardianStudent.objects.all().delete()
    Student.objects.all().delete()
    Guardian.objects.all().delete()
    Organisation.objects.all().delete()


def damage(folder):
    """Three bad rows (under 1%) and a non-ASCII, padded address."""
    users = folder / "users.csv"
    lines = users.read_text(encoding="utf-8-sig").splitlines()
    lines[5] = lines[5].replace(",true,", ",yes,", 1).replace(",TRUE,", ",yes,", 1)
    lines.append("stu-x1,,,true,org-school-001,principle,9,,Al,Bo,,9,,,,,,,x")
    zoe = " \uff3a\uff2f\uff25@Example.com "  # full-width ZOE, padded
    lines.append(f'gdn-x2,,,true,org-school-001,parent,,,Zoë,Ñúñez,,,"{zoe}",,,,,,x')
    users.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(folder / "demographics.csv", "a", encoding="utf-8") as handle:
        handle.write("stu-00000003,,,2013-13-01,male,,,,,,,,,,,\n")


def run(path, writer, **kwargs):
    summary = import_roster(path, writer=writer, **kwargs)
    return (
        {k: vars(v) for k, v in summary.counts.items()},
        [str(e) for e in summary.errors],
        summary.rows,
        summary.ignored_users,
    )


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_postgres_and_plain_paths_store_and_report_the_same(tmp_path, version):
    first = write_roster(tmp_path / "night1", students=250, seed=11, version=version)
    if version == "1.1":
        damage(first)
    second = write_roster(tmp_path / "night2", students=230, seed=12, version=version)

    results = {}
    for writer in ("postgres", "plain"):
        clear()
        reports = [run(first, writer)]
        after_first = state()
        reports.append(run(second, writer, allow_mass_deactivation=True))
        reports.append(run(second, writer))
        results[writer] = (after_first, state(), reports)

    pg, plain = results["postgres"], results["plain"]
    assert pg[0] == plain[0]
    assert pg[1] == plain[1]
    assert pg[2] == plain[2]
    # The comparison means something: there were links, changes and (1.1) errors.
    assert len(pg[0]["links"]) > 300
    assert pg[2][1][0]["students"]["deactivated"] > 0
    if version == "1.1":
        assert [e.split(": ")[1] for e in pg[2][0][1]] == [
            "duplicate sourcedId (first on line 4)",
            "enabledUser must be true or false",
            "unknown role",
        ]
        zoe = Guardian.objects.get(pk="gdn-x2")
        assert zoe.email_normalised == "zoe@example.com"
        assert zoe.email == "\uff3a\uff2f\uff25@Example.com"


def test_both_paths_accept_and_refuse_the_same_birth_dates(tmp_path):
    # The PostgreSQL path checks a birthDate against every valid date spelled out; the plain
    # path parses it. Edges of the pattern, the year range and the day of the month:
    dates = {
        "stu-00000001": ("2012-02-29", True),  # a leap day
        "stu-00000002": ("2013-02-29", False),  # not a leap year
        "stu-00000003": ("1899-12-31", False),  # before the range
        "stu-00000004": ("2100-12-31", True),  # its last day
        "stu-00000005": ("2012-1-05", False),  # not zero-padded
        "stu-00000006": ("\uff12\uff10\uff11\uff12-01-01", False),  # full-width digits
    }
    folder = write_roster(tmp_path / "set", students=400, seed=5)
    demographics = folder / "demographics.csv"
    lines = demographics.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        sourced_id = line.split(",", 1)[0]
        if sourced_id in dates:
            fields = line.split(",")
            fields[3] = dates[sourced_id][0]
            lines[n] = ",".join(fields)
    demographics.write_text("\n".join(lines) + "\n", encoding="utf-8")

    results = {}
    for writer in ("postgres", "plain"):
        clear()
        report = run(folder, writer)
        births = dict(Student.objects.filter(pk__in=dates).values_list("pk", "birth_date"))
        results[writer] = (report, births)
    assert results["postgres"] == results["plain"]
    report, births = results["postgres"]
    refused = [sid for sid, (_, valid) in dates.items() if not valid]
    assert [e.split(": ")[1] for e in report[1]] == ["birthDate is not a YYYY-MM-DD date"] * 4
    assert str(births["stu-00000001"]) == "2012-02-29"
    assert str(births["stu-00000004"]) == "2100-12-31"
    assert all(births[sid] is None for sid in refused)
