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
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from runtime.errors import PlatformError
from runtime.values import InvalidValueError, check_table_name, dumps, is_id_for, loads

__all__ = [
    "ImportDocument",
    "SnapshotError",
    "TableImport",
    "parse_jsonl",
    "read_zip_tables",
    "write_snapshot_meta",
]

DOCUMENTS = "documents.jsonl"
TABLES_FOLDER = "_tables"

README = """This is a pyconvex snapshot: one folder per table, each with
documents.jsonl (one document per line, convex_encoded_json: int64 values are
{"$integer": base64 little-endian}, bytes {"$bytes": base64}). Import it with
`python -m runtime import FILE.zip` (every table) or `--table T` (one table).
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


@dataclass
class TableImport:
    table: str
    source: str
    """Where the lines came from, for messages: `file.jsonl` or `zip:table/documents.jsonl`."""
    documents: list[ImportDocument] = field(default_factory=list)


def parse_jsonl(lines: Iterable[bytes], table: str, source: str) -> TableImport:
    """Parse and check every line; the first bad one raises SnapshotError
    naming its line. Blank lines are skipped."""
    check_table_name(table)
    out = TableImport(table, source)
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        where = f"{source} line {number}"
        try:
            doc = loads(text)
        except (UnicodeDecodeError, ValueError, InvalidValueError) as e:
            raise SnapshotError(f"{where}: not a JSON document: {e}", line=number) from None
        if not isinstance(doc, dict):
            raise SnapshotError(f"{where}: a line must be one JSON object", line=number)
        _check_system_fields(doc, table, where, number)
        doc_id = doc.get("_id")
        if isinstance(doc_id, str):
            if doc_id in seen:
                raise SnapshotError(
                    f"{where}: _id {doc_id} repeats line {seen[doc_id]}", line=number
                )
            seen[doc_id] = number
        out.documents.append(ImportDocument(number, doc))
    return out


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


def read_zip_tables(data: bytes | IO[bytes], only: str | None = None) -> list[TableImport]:
    """The tables of a snapshot zip (or just `only`), parsed and checked."""
    try:
        archive = zipfile.ZipFile(data if not isinstance(data, bytes) else io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise SnapshotError(f"not a zip file: {e}") from None
    with archive:
        found: dict[str, str] = {}
        for name in archive.namelist():
            path = PurePosixPath(name)
            if len(path.parts) == 2 and path.name == DOCUMENTS and path.parts[0] != TABLES_FOLDER:
                found[path.parts[0]] = name
        if only is not None:
            if only not in found:
                have = ", ".join(sorted(found)) or "none"
                raise SnapshotError(f'the zip has no table "{only}" (its tables: {have})')
            found = {only: found[only]}
        if not found:
            raise SnapshotError("the zip holds no <table>/documents.jsonl")
        tables = []
        for table, name in sorted(found.items()):
            with archive.open(name) as f:
                tables.append(parse_jsonl(f, table, f"zip:{name}"))
        return tables


def document_line(document: dict[str, Any]) -> bytes:
    return dumps(document) + b"\n"


def write_snapshot_meta(archive: zipfile.ZipFile, tables: Iterator[str] | list[str]) -> None:
    lines = [json.dumps({"name": t, "id": i}) for i, t in enumerate(tables, start=1)]
    archive.writestr(f"{TABLES_FOLDER}/{DOCUMENTS}", "".join(line + "\n" for line in lines))
    archive.writestr("README.md", README)
