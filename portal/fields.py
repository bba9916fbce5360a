"""Model fields of the SIS mirror."""

from django.db import models


class ByteOrderCharField(models.CharField):
    """A string compared byte for byte: on PostgreSQL its column uses the "C" collation.

    For values with no language (ids, normalised email addresses, student numbers), which are
    matched for equality and never sorted for people to read. Sorting them by a locale's rules,
    as the database default does, is several times slower: it rules out the abbreviated keys that
    make a million-row sort or index build cheap, which the roster import does on every first
    load. Foreign keys to such a field take its collation (Django copies it). SQLite (the demo)
    already compares bytes and has no collation of that name.
    """

    def db_parameters(self, connection):
        parameters = super().db_parameters(connection)
        if connection.vendor == "postgresql" and not self.db_collation:
            parameters["collation"] = "C"
        return parameters


class SourcedIdField(ByteOrderCharField):
    """A SIS `sourcedId`. The importer stages ids in the same collation
    (portal.roster.postgres), so that comparing them with these columns stays byte order."""
