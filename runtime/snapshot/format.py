"""The snapshot format: what `export` writes and `import` reads.

A snapshot is a zip with one folder per table:

    accounts/documents.jsonl      one document per line, convex_encoded_json,
    messages/documents.jsonl      `_id` and `_creationTime` included
    _tables/documents.jsonl       {"name": "accounts", "id": 1} per table
    README.md

Lines are convex_encoded_json, so int64 and bytes survive the round trip
(`{"$integer": ...}`, `{"$bytes": ...}`); a plain JSON number reads as a
float64, as from any Convex client. A `.jsonl` file of the same lines can be
imported into one table.

Reading streams: a line is read up to IMPORT_LINE_BYTES and refused past it
(naming its line) before more is read, and the lines of one import add up to
at most IMPORT_BYTES once uncompressed, so a small zip that inflates to a
huge line or to many lines is refused with memory bounded by the caps.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

from runtime.database.documents import check_document
from runtime.database.errors import InvalidDocumentError
from runtime.errors import PlatformError
from runtime.limits import DOCUMENT_BYTES, IMPORT_BYTES, IMPORT_LINE_BYTES
from runtime.values import (
    ClientJsonError,
    check_table_name,
    dumps,
    is_id_for,
    loads_client_value,
    make_id,
)

__all__ = [
    "ImportDocument",
    "ImportFormat",
    "LineReader",
    "SnapshotError",
    "TableImport",
    "check_file",
    "iter_jsonl",
    "parse_import",
    "parse_jsonl",
    "read_zip_tables",
    "write_snapshot_meta",
]

ImportFormat = Literal["jsonl", "zip"]

DOCUMENTS = "documents.jsonl"
TABLES_FOLDER = "_tables"
STORAGE_FOLDER = "_storage"
"""Files' metadata and bytes (`files.py`), not a table of the app."""

README = """This is a pyconvex snapshot: one folder per table, each with
documents.jsonl (one document per line, convex_encoded_json: int64 values are
{"$integer": base64 little-endian}, bytes {"$bytes": base64}). Import it with
`python -m runtime import FILE.zip` (every table) or `--table T` (one table).
An export made with --include-files also holds the files, as Convex's do:
_storage/documents.jsonl (their metadata) and each file's bytes as
_storage/<storage id><extension>; importing the whole zip restores them.
"""


class SnapshotError(PlatformError):
    code = "IMPORT_INVALID"


@dataclass(frozen=True)
class ImportDocument:
    line: int
    """1-based line number in its file (for error messages)."""
    document: dict[str, Any]
    """User fields, plus `_id` / `_creationTime` when the line kept them."""

    @property
    def id(self) -> str | None:
        value = self.document.get("_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TableImport:
    """One table's documents of an import: checked and counted once when
    parsed, then read again from their source (never all held in memory) by
    each pass over `documents()`: the import's checks, then its writes."""

    table: str
    source: str
    """Where the lines came from, for messages: `file.jsonl` or `zip:table/documents.jsonl`."""
    count: int
    """How many documents it holds."""
    lines: Callable[[], Iterable[bytes]] = field(repr=False)
    """Opens the lines afresh. Passes run one after the other (a file source
    is re-read from its start)."""
    system: bool = False
    """A platform table (`_storage`, from a snapshot with files): written as
    the platform writes it, not checked against the app's schema."""
    reader: Callable[[Iterable[bytes], str, str], Iterator[ImportDocument]] | None = field(
        default=None, repr=False
    )
    """Parses the lines (None: `iter_jsonl`)."""

    def documents(self) -> Iterator[ImportDocument]:
        """The documents, parsed and checked again as they are read."""
        return (self.reader or iter_jsonl)(self.lines(), self.table, self.source)


class LineReader:
    """Lines of the files of one import, each at most IMPORT_LINE_BYTES and
    all together at most IMPORT_BYTES (uncompressed), read with bounded
    memory: `readline` is given a limit, so a longer line is refused after
    reading just past the cap."""

    def __init__(self, line_bytes: int = IMPORT_LINE_BYTES, total_bytes: int = IMPORT_BYTES):
        self.line_bytes = line_bytes
        self.total_bytes = total_bytes
        self.read = 0

    def lines(self, file: IO[bytes], source: str) -> Iterator[bytes]:
        number = 0
        while line := file.readline(self.line_bytes + 1):
            number += 1
            self.read += len(line)
            if len(line) > self.line_bytes:
                raise SnapshotError(
                    f"{source} line {number}: the line is longer than {self.line_bytes:,} bytes "
                    "(IMPORT_LINE_BYTES), so it cannot hold a document under the "
                    f"{DOCUMENT_BYTES:,}-byte limit; the import is refused",
                    line=number,
                )
            if self.read > self.total_bytes:
                raise SnapshotError(
                    f"{source} line {number}: the import's lines add up to more than "
                    f"{self.total_bytes:,} bytes uncompressed (IMPORT_BYTES); split it into "
                    "several imports",
                    line=number,
                )
            yield line


def parse_jsonl(lines: Iterable[bytes], table: str, source: str) -> TableImport:
    """Parse and check every line of `lines` (a list, or anything that can be
    iterated again); the first bad one raises SnapshotError naming its line.
    Blank lines are skipped."""
    return _counted(table, source, lambda: lines)


def _counted(table: str, source: str, lines: Callable[[], Iterable[bytes]]) -> TableImport:
    """A TableImport whose documents were read once to check and count them."""
    count = sum(1 for _ in iter_jsonl(lines(), table, source))
    return TableImport(table, source, count, lines)


def iter_jsonl(lines: Iterable[bytes], table: str, source: str) -> Iterator[ImportDocument]:
    """The documents of `lines`, checked one by one as they are read (only
    the ids seen so far are kept, to refuse a repeated `_id`).

    The checks need no database: JSON syntax, Convex values, one object per
    line, `_id` of `table` with a `_creationTime`, no repeated `_id`, the
    document rules (field names, nesting, sizes: `check_document`) and the
    1 MiB document limit. Schema, index keys and existing ids are checked by
    `importer.check_import`."""
    check_table_name(table)
    seen: dict[str, int] = {}
    overhead = _system_fields_bytes(table)
    for number, raw in enumerate(lines, start=1):
        where = f"{source} line {number}"
        if len(raw) > IMPORT_LINE_BYTES:
            raise SnapshotError(
                f"{where}: the line is longer than {IMPORT_LINE_BYTES:,} bytes (IMPORT_LINE_BYTES)",
                line=number,
            )
        text = raw.strip()
        if not text:
            continue
        try:
            doc = loads_client_value(text)
        except ClientJsonError as e:
            raise SnapshotError(f"{where}: not a JSON document: {e}", line=number) from None
        if not isinstance(doc, dict):
            raise SnapshotError(f"{where}: a line must be one JSON object", line=number)
        _check_system_fields(doc, table, where, number)
        user = {k: x for k, x in doc.items() if k not in ("_id", "_creationTime")}
        try:
            check_document(user)
        except InvalidDocumentError as e:
            raise SnapshotError(f"{where}: {e}", line=number) from None
        size = len(table) + 1 + len(dumps(doc)) + (0 if "_id" in doc else overhead)
        if size > DOCUMENT_BYTES:
            raise SnapshotError(
                f"{where}: the document takes {size:,} bytes, over the {DOCUMENT_BYTES:,}-byte "
                "document limit (DOCUMENT_BYTES)",
                line=number,
            )
        doc_id = doc.get("_id")
        if isinstance(doc_id, str):
            if doc_id in seen:
                raise SnapshotError(
                    f"{where}: _id {doc_id} repeats line {seen[doc_id]}", line=number
                )
            seen[doc_id] = number
        yield ImportDocument(number, doc)


def _system_fields_bytes(table: str) -> int:
    """What `_id` and `_creationTime` add to a stored document (an upper bound)."""
    fields = {"_id": make_id(table, bytes(16)), "_creationTime": 1234567890123.4567}
    return len(dumps(fields))


def _check_system_fields(doc: dict[str, Any], table: str, where: str, number: int) -> None:
    if "_id" not in doc:
        doc.pop("_creationTime", None)  # a new document gets a new creation time
        return
    doc_id = doc["_id"]
    if not isinstance(doc_id, str) or not is_id_for(table, doc_id):
        raise SnapshotError(
            f'{where}: _id {doc_id!r} is not an id of table "{table}" (ids belong to their '
            "table; remove the _id fields to import these documents with new ids)",
            line=number,
        )
    created = doc.get("_creationTime")
    if type(created) is not float or not created > 0:
        raise SnapshotError(
            f"{where}: _creationTime must be a positive number (ms since the epoch) "
            f"when _id is given, got {created!r}",
            line=number,
        )


def _open_zip(data: bytes | IO[bytes] | Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except zipfile.BadZipFile as e:
        raise SnapshotError(f"not a zip file: {e}") from None


def _zip_tables(archive: zipfile.ZipFile, only: str | None) -> dict[str, str]:
    """Table name -> its documents.jsonl member, sorted by table name."""
    found: dict[str, str] = {}
    for name in archive.namelist():
        path = PurePosixPath(name)
        if (
            len(path.parts) == 2
            and path.name == DOCUMENTS
            and path.parts[0] not in (TABLES_FOLDER, STORAGE_FOLDER)
        ):
            found[path.parts[0]] = name
    if only is not None:
        if only not in found:
            have = ", ".join(sorted(found)) or "none"
            raise SnapshotError(f'the zip has no table "{only}" (its tables: {have})')
        found = {only: found[only]}
    if not found and f"{STORAGE_FOLDER}/{DOCUMENTS}" not in archive.namelist():
        raise SnapshotError("the zip holds no <table>/documents.jsonl")
    return dict(sorted(found.items()))


def read_zip_tables(data: bytes | IO[bytes], only: str | None = None) -> list[TableImport]:
    """The tables of a snapshot zip (or just `only`), parsed and checked,
    streaming: their documents are read again from `data` when imported, so
    a file `data` must stay open until then."""
    with _open_zip(_rewound(data)) as archive:
        members = _zip_tables(archive, only)
    reader = LineReader()  # the first pass: one cap over every table's lines
    tables = []
    for table, name in members.items():
        source = f"zip:{name}"
        documents = iter_jsonl(_member_lines(data, name, source, reader), table, source)
        count = sum(1 for _ in documents)
        again = functools.partial(_member_lines, data, name, source, None)
        tables.append(TableImport(table, source, count, again))
    return tables


def _member_lines(
    data: bytes | IO[bytes], name: str, source: str, reader: LineReader | None
) -> Iterator[bytes]:
    with _open_zip(_rewound(data)) as archive, archive.open(name) as member:
        yield from (reader or LineReader()).lines(member, source)


def _rewound(data: bytes | IO[bytes]) -> bytes | IO[bytes]:
    if not isinstance(data, bytes):
        data.seek(0)
    return data


def parse_import(
    data: bytes | IO[bytes], fmt: ImportFormat, table: str | None
) -> list[TableImport]:
    """An uploaded import file (its bytes, or a binary file positioned at its
    start), parsed and checked: a snapshot zip (every table, or only
    `table`) or the .jsonl lines of `table`."""
    if fmt == "zip":
        return read_zip_tables(data, table)
    if table is None:
        raise SnapshotError("a .jsonl import needs a table")
    file = io.BytesIO(data) if isinstance(data, bytes) else data

    def lines() -> Iterator[bytes]:
        file.seek(0)
        return LineReader().lines(file, "the file")

    return [_counted(table, "the file", lines)]


def check_file(
    path: Path,
    fmt: ImportFormat,
    table: str | None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Check an import file without a database, streaming (no document is
    kept): the checks of `parse_import`, with the same messages. Returns the
    number of documents per table. `progress(done, total)` counts bytes of
    the (uncompressed) lines, called about every MiB and at the end."""
    report = progress or (lambda done, total: None)
    counts: dict[str, int] = {}
    done = reported = 0

    def counted(lines: Iterable[bytes], total: int) -> Iterator[bytes]:
        nonlocal done, reported
        for line in lines:
            done += len(line)
            if done - reported >= 1 << 20:
                reported = done
                report(done, total)
            yield line
        report(done, total)

    reader = LineReader()
    if fmt == "jsonl":
        if table is None:
            raise SnapshotError("a .jsonl import needs a table")
        with path.open("rb") as file:
            lines = counted(reader.lines(file, path.name), path.stat().st_size)
            counts[table] = sum(1 for _ in iter_jsonl(lines, table, path.name))
        return counts
    with _open_zip(path) as archive:
        members = _zip_tables(archive, table)
        total = sum(archive.getinfo(name).file_size for name in members.values())
        for name_of_table, name in members.items():
            source = f"zip:{name}"
            with archive.open(name) as member:
                lines = counted(reader.lines(member, source), total)
                counts[name_of_table] = sum(1 for _ in iter_jsonl(lines, name_of_table, source))
    return counts


def document_line(document: dict[str, Any]) -> bytes:
    return dumps(document) + b"\n"


def write_snapshot_meta(archive: zipfile.ZipFile, tables: Iterator[str] | list[str]) -> None:
    lines = [json.dumps({"name": t, "id": i}) for i, t in enumerate(tables, start=1)]
    archive.writestr(f"{TABLES_FOLDER}/{DOCUMENTS}", "".join(line + "\n" for line in lines))
    archive.writestr("README.md", README)
