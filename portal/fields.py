"""Model fields of the SIS mirror."""

from django.db import models


class SourcedIdField(models.CharField):
    """A SIS `sourcedId`, or a reference to one: an opaque string compared byte for byte.

    On PostgreSQL its column uses the "C" collation. Ids have no language, and sorting them by a
    locale's rules (as the database default does) is several times slower: it rules out the
    abbreviated keys that make a million-row sort or index build cheap, which the roster import
    does on every first load. Foreign keys to it take the same collation (Django copies it). The
    importer's staged ids are compared to these columns, so portal.roster.postgres stages them
    in "C" too. SQLite (the demo) already compares bytes and has no collation of that name.
    """

    def db_parameters(self, connection):
        parameters = super().db_parameters(connection)
        if connection.vendor == "postgresql" and not self.db_collation:
            parameters["collation"] = "C"
        return parameters
