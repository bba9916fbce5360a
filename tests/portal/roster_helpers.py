"""Small spec-exact OneRoster sets written by the tests themselves (1.1 and 1.2, bulk or delta)."""

import csv
import zipfile
from pathlib import Path

from portal.roster.synthetic import (
    DEMOGRAPHICS,
    MANIFEST_FILES_11,
    MANIFEST_FILES_12,
    ORGS,
    ROLES,
    USERS_11,
    USERS_12,
)

DEFAULT_ORGS = [
    {"sourcedId": "d1", "name": "Unified School District", "type": "district"},
    {"sourcedId": "sch1", "name": "Lincoln Elementary", "type": "school", "parentSourcedId": "d1"},
    {"sourcedId": "sch2", "name": "Roosevelt Middle", "type": "school", "parentSourcedId": "d1"},
]


def student(sid, number, given="Ana", family="García-López", **extra):
    return {
        "sourcedId": sid,
        "enabledUser": "true",
        "orgSourcedIds": "sch1",
        "role": "student",
        "username": number,
        "identifier": number,
        "givenName": given,
        "familyName": family,
        "grades": "05",
        **extra,
    }


def guardian(sid, email, given="Rosa", family="García-López", role="parent", **extra):
    return {
        "sourcedId": sid,
        "enabledUser": "true",
        "orgSourcedIds": "sch1",
        "role": role,
        "givenName": given,
        "familyName": family,
        "email": email,
        "phone": "(408) 555-0101",
        **extra,
    }


def write_set(
    folder,
    *,
    version="1.1",
    users=None,
    demographics=None,
    orgs=DEFAULT_ORGS,
    mode="bulk",
    modes=None,
    bom=("users",),
    zip=False,
    drop_columns=(),
    roles=None,
):
    """Write manifest + files; users are given in 1.1 terms and converted for 1.2.

    `modes` overrides the manifest per file (e.g. {"orgs": "absent"}); a file whose rows are None
    is declared absent. `drop_columns` removes header columns (to test missing columns).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    v12 = version == "1.2"
    modes = dict(modes or {})
    files = {"orgs": orgs, "users": users, "demographics": demographics}
    if v12 and users is not None:
        if roles is None:
            roles = [
                {
                    "sourcedId": f"r-{u['sourcedId']}",
                    "status": u.get("status", ""),
                    "dateLastModified": u.get("dateLastModified", ""),
                    "userSourcedId": u["sourcedId"],
                    "roleType": "primary",
                    "role": u.get("role", ""),
                    "orgSourcedId": u.get("orgSourcedIds", "").split(",")[0],
                }
                for u in users
            ]
        files["roles"] = roles
        users = [
            {**u, "primaryOrgSourcedId": u.get("orgSourcedIds", "").split(",")[0]} for u in users
        ]
        files["users"] = users
    headers = {
        "orgs": ORGS,
        "users": USERS_12 if v12 else USERS_11,
        "demographics": DEMOGRAPHICS,
        "roles": ROLES,
    }
    names = MANIFEST_FILES_12 if v12 else MANIFEST_FILES_11
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["propertyName", "value"])
        out.writerow(["manifest.version", "1.0"])
        out.writerow(["oneroster.version", version])
        for name in names:
            declared = modes.get(name, mode if files.get(name) is not None else "absent")
            out.writerow([f"file.{name}", declared])
        out.writerow(["source.systemName", "Test SIS"])
    for name, rows in files.items():
        if rows is None:
            continue
        header = [c for c in headers[name] if c not in drop_columns]
        if name == "users":
            header = [*header, "metadata.sis.personID"]
        encoding = "utf-8-sig" if name in bom else "utf-8"
        with open(folder / f"{name}.csv", "w", newline="", encoding=encoding) as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(header)
            for row in rows:
                if mode == "delta" and not row.get("status"):
                    row = {**row, "status": "active", "dateLastModified": "2026-01-01T00:00:00Z"}
                out.writerow([row.get(column, "") for column in header])
    if zip:
        archive_path = folder.with_suffix(".zip")
        with zipfile.ZipFile(archive_path, "w") as archive:
            for file in sorted(folder.iterdir()):
                archive.write(file, arcname=file.name)
        return archive_path
    return folder
