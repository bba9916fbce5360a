"""Roster indexes nothing uses, dropped: each cost the 1M-user import a full index build.

- guardianstudent.guardian gets no index of its own: the unique (guardian, student) index
  serves every lookup by guardian.
- The `_like` (varchar_pattern_ops) twins Django adds on PostgreSQL for indexed CharFields: they
  serve only LIKE 'prefix%' queries, and no query filters these columns with LIKE, startswith or
  an anchored regex (admin searches use icontains, which no btree serves).
"""

import django.db.models.deletion
from django.db import migrations, models

LIKE_INDEXES = {
    "portal_organisation_sourced_id_cb588912_like": ("portal_organisation", "sourced_id"),
    "portal_student_sourced_id_3a2dfa3a_like": ("portal_student", "sourced_id"),
    "portal_student_email_normalised_e3400ca9_like": ("portal_student", "email_normalised"),
    "portal_student_school_id_e21ee7d5_like": ("portal_student", "school_id"),
    "portal_student_student_number_1ef0a3b8_like": ("portal_student", "student_number"),
    "portal_guardian_sourced_id_a7722fa2_like": ("portal_guardian", "sourced_id"),
    "portal_guardian_email_normalised_73756173_like": ("portal_guardian", "email_normalised"),
    "portal_guardianstudent_student_id_ecda66c3_like": ("portal_guardianstudent", "student_id"),
}


def drop_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL gets these twins
    for name in LIKE_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, column) in LIKE_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_roster_digest"),
    ]

    operations = [
        migrations.AlterField(
            model_name="guardianstudent",
            name="guardian",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="links",
                to="portal.guardian",
            ),
        ),
        migrations.RunPython(drop_like_indexes, create_like_indexes),
    ]
