"""Reading a OneRoster CSV set: the folder or .zip, the manifest, the headers, the bytes.

Everything structural is checked here, before a row is merged: the manifest exists and names a
mode for each file we read; a file it declares `bulk`/`delta` exists; the header carries the
required columns (by name: the order is not trusted, extension `metadata.*` columns and unknown
columns are simply not read) with no duplicates. Any failure is a `StructuralError` naming the
file and line, and the import applies nothing.

Two ways to read a data file, one per write path:

- `CsvFile.chunks()` yields the raw UTF-8 bytes after the header (BOM and header removed) in
  1 MiB pieces, for PostgreSQL's COPY: Python never looks at a row, which is what makes a
  million-row import fast, and memory stays flat whatever the file size.
- `CsvFile.rows()` yields `(line, values)` through Python's csv module, for the plain path.

Line numbers count CSV records with the header as line 1 (the physical line when no quoted field
spans lines), which is also how COPY counts: both paths report the same line.
"""

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from portal.roster import rules
from portal.roster.summary import StructuralError

CHUNK = 1 << 20
BOM = codecs.BOM_UTF8
MODES = ("bulk", "delta", "absent")


class RosterSource:
    """A OneRoster set in a folder or a .zip (files in its root, names case-sensitive)."""

    def __init__(self, path):
        self.path = Path(path)
        self._zip = None
        if self.path.is_dir():
            return
        if self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self._names = {info.filename for info in self._zip.infolist()}
            return
        raise StructuralError("no such folder or .zip file", file=str(path))

    def has(self, name):
        if self._zip is not None:
            return name in self._names
        return (self.path / name).is_file()

    def open(self, name):
        if self._zip is not None:
            return self._zip.open(name)
        return open(self.path / name, "rb")  # the caller closes it

    def close(self):
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class Manifest:
    version: str
    modes: dict = field(default_factory=dict)  # "users" -> bulk / delta / absent

    def mode(self, file):
        return self.modes.get(file, "absent")


def read_manifest(source):
    """Parse manifest.csv; check that every file it declares bulk/delta is there."""
    name = "manifest.csv"
    if not source.has(name):
        raise StructuralError("manifest.csv is missing: this is not a OneRoster CSV set", file=name)
    with source.open(name) as stream:
        rows = _csv_rows(stream, name)
        header = next(rows, None)
        if header is None:
            raise StructuralError("the file is empty", file=name, line=1)
        if [h.strip() for h in header[1][:2]] != ["propertyName", "value"]:
            raise StructuralError("the header must be propertyName,value", file=name, line=1)
        properties = {}
        for line, values in rows:
            if len(values) >= 2:
                properties[values[0].strip()] = (values[1].strip(), line)
    version = properties.get("oneroster.version", ("", 0))[0]
    manifest = Manifest(version=version)
    for file in rules.FILES:
        mode, line = properties.get(f"file.{file}", ("absent", 0))
        mode = mode.lower()
        if mode not in MODES:
            raise StructuralError(
                f"file.{file} must be bulk, delta or absent, not {mode!r}", file=name, line=line
            )
        if file == "roles" and version == "1.1":
            mode = "absent"  # roles.csv is a 1.2 file
        if mode != "absent" and not source.has(f"{file}.csv"):
            raise StructuralError(
                f"declares {file}.csv as {mode}, but {file}.csv is missing", file=name, line=line
            )
        manifest.modes[file] = mode
    if manifest.version not in {"1.1", "1.2"}:
        manifest.version = _infer_version(source, manifest)
    return manifest


def _infer_version(source, manifest):
    """A manifest without a (known) oneroster.version: 1.1 users.csv has a role column."""
    if manifest.mode("roles") != "absent":
        return "1.2"
    if manifest.mode("users") == "absent":
        return "1.1"
    with source.open("users.csv") as stream:
        header, _ = _read_header(stream, "users.csv")
    return "1.1" if "role" in header else "1.2"


class CsvFile:
    """One data file, its header checked; read it once with chunks() or rows()."""

    def __init__(self, source, file, *, required):
        self.file = file
        self.name = f"{file}.csv"
        self.source = source
        with source.open(self.name) as stream:
            self.header, _ = _read_header(stream, self.name)
        missing = [column for column in required if column not in self.header]
        if missing:
            raise StructuralError(
                "missing required column"
                + ("s " if len(missing) > 1 else " ")
                + ", ".join(missing),
                file=self.name,
                line=1,
            )
        self.index = {column: position for position, column in enumerate(self.header)}

    def chunks(self):
        """The bytes after the header, in pieces, for COPY."""
        with self.source.open(self.name) as stream:
            _, rest = _read_header(stream, self.name)
            if rest:
                yield rest
            while chunk := stream.read(CHUNK):
                yield chunk

    def rows(self):
        """(line, values) for every data record; a malformed record is a StructuralError."""
        width = len(self.header)
        seen = False
        with self.source.open(self.name) as stream:
            rows = _csv_rows(stream, self.name)
            next(rows)
            for line, values in rows:
                if len(values) != width:
                    raise StructuralError(
                        f"{len(values)} fields where the header has {width}",
                        file=self.name,
                        line=line,
                    )
                seen = True
                yield line, values
        if not seen:
            raise StructuralError("the file has no data rows", file=self.name, line=2)


def _read_header(stream, name):
    """(column names, the bytes already read past the header line)."""
    buffer = b""
    while b"\n" not in buffer:
        chunk = stream.read(64 * 1024)
        if not chunk:
            break
        buffer += chunk
    if buffer.startswith(BOM):
        buffer = buffer[len(BOM) :]
    if not buffer.strip():
        raise StructuralError("the file is empty", file=name, line=1)
    head, _, rest = buffer.partition(b"\n")
    try:
        text = head.decode("utf-8").rstrip("\r")
        header = next(csv.reader([text], strict=True))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise StructuralError(f"unreadable header ({exc})", file=name, line=1) from None
    header = [column.strip() for column in header]
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise StructuralError(
            "duplicate column " + ", ".join(duplicates), file=name, line=1
        ) from None
    return header, rest


def _csv_rows(stream, name):
    """(line, values) from a binary stream, BOM tolerated; bad CSV or UTF-8 names the line."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    line = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise StructuralError(f"unreadable CSV ({exc})", file=name, line=line + 1) from None
        line += 1
        if not values:
            raise StructuralError("empty line", file=name, line=line)
        yield line, values
