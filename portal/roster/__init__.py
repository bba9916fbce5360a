"""The SIS roster: reading OneRoster CSV sets and mirroring them into the database.

See `portal.roster.importer` for the design of the import.
"""
