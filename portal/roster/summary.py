"""What an import did: counts per kind, the skipped rows, and the errors that stop a run."""

from dataclasses import dataclass, field

from portal.roster.rules import ERROR_SHARE

KINDS = ("orgs", "students", "guardians", "links")
ACTIONS = ("created", "updated", "deactivated", "unchanged", "skipped")


@dataclass(frozen=True)
class RowError:
    """A row skipped for a reason; `line` is the record's line, the header being line 1."""

    file: str
    line: int
    reason: str

    def __str__(self):
        return f"{self.file}, line {self.line}: {self.reason}"


@dataclass
class KindCounts:
    created: int = 0
    updated: int = 0  # changed, including people who reappear (reactivated)
    # active -> inactive (absent from a bulk file, or `tobedeleted`); for links: removed
    deactivated: int = 0
    unchanged: int = 0
    skipped: int = 0  # rows in error (links: pairs naming no student/guardian we know)


@dataclass
class ImportSummary:
    version: str = ""
    modes: dict = field(default_factory=dict)  # file name -> bulk / delta / absent
    counts: dict = field(default_factory=lambda: {kind: KindCounts() for kind in KINDS})
    rows: int = 0  # data rows read, every file
    ignored_users: int = 0  # users whose role is none of ours (teachers, aides, ...)
    errors: list = field(default_factory=list)  # RowError, file then line order (capped)
    error_count: int = 0
    changed_at: object = None  # the updated_at stamped on every row this import wrote
    seconds: float = 0.0

    def __getitem__(self, kind):
        return self.counts[kind]

    def lines(self):
        """The human-readable report the command prints."""
        out = [f"OneRoster {self.version}: " + ", ".join(f"{k} {v}" for k, v in self.modes.items())]
        out.append(f"{'':10}" + "".join(f"{a:>12}" for a in ACTIONS))
        for kind in KINDS:
            counts = self.counts[kind]
            out.append(f"{kind:10}" + "".join(f"{getattr(counts, a):>12}" for a in ACTIONS))
        if self.ignored_users:
            out.append(f"{self.ignored_users} users with other roles ignored")
        if self.error_count:
            out.append(f"{self.error_count} rows skipped:")
            out.extend(f"  {error}" for error in self.errors)
            if self.error_count > len(self.errors):
                out.append(f"  ... and {self.error_count - len(self.errors)} more")
        return out


class ImportStopped(Exception):
    """The import applied nothing. `file` and `line` name where, when there is a where."""

    def __init__(self, message, *, file=None, line=None):
        super().__init__(message)
        self.file = file
        self.line = line
        self.message = message

    def __str__(self):
        if self.file and self.line:
            return f"{self.file}, line {self.line}: {self.message}"
        if self.file:
            return f"{self.file}: {self.message}"
        return self.message


class StructuralError(ImportStopped):
    """Missing manifest or file, missing column, unreadable CSV, empty file."""


class TooManyRowErrors(ImportStopped):
    """More than 1% of the rows are in error: the export is probably broken."""

    def __init__(self, message, *, errors):
        first = errors[0] if errors else None
        super().__init__(message, file=first and first.file, line=first and first.line)
        self.errors = errors

    def __str__(self):
        shown = "\n".join(f"  {error}" for error in self.errors[:20])
        return f"{self.message}\n{shown}" if shown else self.message


class SafetyStop(ImportStopped):
    """The run would deactivate more than ROSTER_MAX_DEACTIVATE_SHARE of active people."""


def check_row_errors(summary, error_count):
    """Stop the run when more than ERROR_SHARE of its rows are in error (shared by both writers)."""
    if error_count and error_count > ERROR_SHARE * summary.rows:
        raise TooManyRowErrors(
            f"{error_count} of {summary.rows} rows are in error, more than "
            f"{ERROR_SHARE:.0%}: the export looks broken, nothing was imported.",
            errors=summary.errors,
        )
