"""Provisioning's PostgreSQL write path: accounts and welcome rows by INSERT ... SELECT.

Building a Django model instance and binding its thirty-odd columns costs about 0.1 ms per
account, and 100k guardians plus their children are 200k accounts: too slow for the nightly
target (SPEC §8: 100k guardians in under 30 s). Here the database builds the rows itself:

- parents: Python computes only what SQL cannot (usernames, ASCII-folded from the names) and
  sends them as one JSON parameter; one statement inserts the accounts (joined to their
  guardians) and, from its RETURNING rows, their welcome emails into the outbox;
- students: one INSERT ... SELECT for every eligible student, the student number as username.

Column lists come from the models, so a field added later gets its Python default (or `now`
for auto_now fields) without touching this file. Unusable passwords are "!" + 40 random hex
characters from gen_random_uuid() (PostgreSQL's strong random source): the same form as
Django's set_unusable_password(), and no hashing.
"""

import json

from django.db import connection

from portal.models import User
from recovery.models import OutboundEmail

_RANDOM_UNUSABLE_HASH = (
    "'!' || replace(gen_random_uuid()::text, '-', '') "
    "|| left(replace(gen_random_uuid()::text, '-', ''), 8)"
)


def _insert_select(model, *, expressions, source, source_params, now, returning="id"):
    """(sql, params): INSERT INTO model (every column) SELECT <expressions or defaults> <source>.

    `expressions` maps field names to SQL over `source`, or to (SQL, [parameters]); every other
    column gets its Python default (auto_now / auto_now_add ones get `now`) as a parameter.
    """
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        expression = expressions.get(field.name)
        # A bare parameter is cast to the column's type: in a SELECT list it has none.
        typed = f"%s::{field.cast_db_type(connection)}"
        if expression is None:
            stamped = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            values.append(typed)
            params.append(
                field.get_db_prep_save(now if stamped else field.get_default(), connection)
            )
        elif isinstance(expression, tuple):
            values.append(typed if expression[0] == "%s" else expression[0])
            params.extend(expression[1])
        else:
            values.append(expression)
    table = connection.ops.quote_name(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} {source} RETURNING {returning}"
    )
    return sql, [*params, *source_params]


def insert_parent_accounts(*, guardian_ids, usernames, now, welcome):
    """Parent accounts for these guardians with these usernames, and each one's welcome email.

    One statement: the accounts are inserted in a CTE and the outbox rows (what
    recovery.emails.queue_email would write, `welcome` giving kind, stream, token_purpose and
    language) are selected from it. The pairs travel as one JSON parameter: binding thousands
    of array elements one by one costs more than the insert. Returns the outbox row ids.
    """
    pairs = json.dumps([{"g": g, "u": u} for g, u in zip(guardian_ids, usernames, strict=True)])
    users_sql, users_params = _insert_select(
        User,
        expressions={
            "password": _RANDOM_UNUSABLE_HASH,
            "username": "n.u",
            "first_name": "left(coalesce(nullif(g.preferred_given_name, ''), g.given_name), 150)",
            "last_name": "left(g.family_name, 150)",
            "email": "g.email",
            "role": ("%s", [User.Role.PARENT.value]),
            "guardian": "g.sourced_id",
            "provisioned_at": ("%s", [now]),
            "date_joined": ("%s", [now]),
            "welcome_sent_to": "g.email",
        },
        source=(
            "FROM jsonb_to_recordset(%s::jsonb) AS n(g text, u text) "
            "JOIN portal_guardian g ON g.sourced_id = n.g ORDER BY n.g"
        ),
        source_params=[pairs],
        now=now,
        returning="id, email, username, language",
    )
    emails_sql, emails_params = _insert_select(
        OutboundEmail,
        expressions={
            "kind": ("%s", [welcome["kind"]]),
            "to_address": "u.email",
            "user": "u.id",
            "token_purpose": ("%s", [welcome["token_purpose"]]),
            "context": "jsonb_build_object('username', u.username)",
            "language": ("coalesce(nullif(u.language, ''), %s)", [welcome["language"]]),
            "stream": ("%s", [str(welcome["stream"])]),
        },
        source="FROM new_users u WHERE u.email <> '' ORDER BY u.id",
        source_params=[],
        now=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new_users AS ({users_sql}) {emails_sql}", [*users_params, *emails_params]
        )
        return [row[0] for row in cursor.fetchall()]


def insert_student_accounts(*, now, on_default):
    """Accounts for active, enabled students with an unused student number; return how many.

    Two students with one number: the first by SIS id gets it, the other is left for the report.
    """
    sql, params = _insert_select(
        User,
        expressions={
            "password": _RANDOM_UNUSABLE_HASH,
            "username": "s.number",
            "first_name": "left(coalesce(nullif(s.preferred_given_name, ''), s.given_name), 150)",
            "last_name": "left(s.family_name, 150)",
            "email": "s.email",
            "role": ("%s", [User.Role.STUDENT.value]),
            "student": "s.sourced_id",
            "provisioned_at": ("%s", [now]),
            "date_joined": ("%s", [now]),
            "must_change_password": "true",
            "default_password_active": ("%s", [on_default]),
            "default_password_since": ("%s", [now if on_default else None]),
        },
        source=(
            "FROM (SELECT DISTINCT ON (btrim(st.student_number)) st.*, "
            "btrim(st.student_number) AS number FROM portal_student st "
            "WHERE st.active AND st.enabled AND btrim(st.student_number) <> '' "
            "AND NOT EXISTS (SELECT 1 FROM portal_user a WHERE a.student_id = st.sourced_id) "
            "ORDER BY btrim(st.student_number), st.sourced_id) s "
            "WHERE NOT EXISTS (SELECT 1 FROM portal_user t WHERE t.username = s.number)"
        ),
        source_params=[],
        now=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
