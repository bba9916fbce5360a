"""Byte-order columns (portal.fields): ids and normalised values in "C", names in the default."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

BYTE_ORDER = {
    ("portal_organisation", "sourced_id"),
    ("portal_organisation", "parent_sourced_id"),
    ("portal_student", "sourced_id"),
    ("portal_student", "school_id"),
    ("portal_student", "email_normalised"),
    ("portal_student", "student_number"),
    ("portal_guardian", "sourced_id"),
    ("portal_guardian", "email_normalised"),
    ("portal_guardianstudent", "guardian_id"),
    ("portal_guardianstudent", "student_id"),
    ("portal_user", "guardian_id"),
    ("portal_user", "student_id"),
    ("recovery_manualrequest", "school_id"),
    ("recovery_staffprofile_schools", "organisation_id"),
}


def test_ids_and_normalised_values_sort_in_byte_order_and_names_do_not():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name, c.collation_name "
            "FROM information_schema.columns c "
            "WHERE c.table_schema = current_schema() AND c.table_name = ANY(%s) "
            "AND c.data_type IN ('character varying', 'text')",
            [sorted({table for table, _ in BYTE_ORDER})],
        )
        collations = {(table, column): collation for table, column, collation in cursor}
    assert {key for key, collation in collations.items() if collation == "C"} == BYTE_ORDER
    # Names are read by people: they keep the database's language rules.
    assert collations[("portal_student", "family_name")] is None
    assert collations[("portal_guardian", "given_name")] is None
