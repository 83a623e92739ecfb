"""Files in snapshots, laid out as Convex lays them out:

    _storage/documents.jsonl   one line per file, plain JSON as Convex writes
                               it: {"_id", "_creationTime", "sha256", "size",
                               "contentType"?} (Convex's "internalId" is read
                               and ignored)
    _storage/<id><.ext>        the file's bytes, stored uncompressed; the
                               extension is a guess from the content type, for
                               people browsing the zip (import reads the id up
                               to the first ".")

Export writes them only when asked (`--include-files`), as Convex does:
without it a snapshot holds no `_storage` at all, neither documents nor bytes,
so ids of files kept in documents name nothing after an import elsewhere.

Import is all or nothing, in this order:
1. checks, before anything is written: every line (`_id` a storage id, a
   positive `_creationTime`, a SHA-256, a size), every file has its line and
   every line its file, whose size in the zip is its `size`; the mode's rules
   (`importer.check_import`), and for `--replace` a file that is already here
   under the same id must have the same bytes (ids name their bytes);
2. the blobs, each streamed from the zip into the blob store under
   `key_of(id)` while its SHA-256 and size are computed, and compared with
   its line: a mismatch removes the blobs written so far and refuses the
   import;
3. the documents, the app's tables and `_storage`, by `importer.apply_import`
   (undone if it fails; then the blobs written are removed too);
4. with `--replace`, the blobs of the replaced files that the import did not
   bring back are removed, after their documents' deletes committed.
A file that is here already with the same id and bytes keeps its blob.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from runtime.database import Database
from runtime.files.port import b64_sha256
from runtime.files.storage import STORAGE_TABLE, FileStorage, key_of
from runtime.limits import BLOB_READ_CHUNK, FILE_BYTES, IMPORT_ARCHIVE_BYTES
from runtime.values import ClientJsonError, is_id_for, loads_client_value

from .export import table_pages
from .format import (
    DOCUMENTS,
    STORAGE_FOLDER,
    ImportDocument,
    LineReader,
    SnapshotError,
    TableImport,
    _open_zip,
    _rewound,
)
from .importer import ImportMode, ImportReport, Progress, apply_import

__all__ = [
    "FileEntry",
    "FilesImport",
    "check_files",
    "import_with_files",
    "iter_storage_lines",
    "metadata_line",
    "read_zip_files",
    "storage_pages",
    "write_files",
]

_LINES = f"{STORAGE_FOLDER}/{DOCUMENTS}"
_FIELDS = {"_id", "_creationTime", "sha256", "size", "contentType", "internalId"}


def metadata_line(doc: dict[str, Any]) -> dict[str, Any]:
    """A `_storage` document as a line of `_storage/documents.jsonl`."""
    line = {
        "_id": doc["_id"],
        "_creationTime": doc["_creationTime"],
        "sha256": doc["sha256"],
        "size": int(doc["size"]),
    }
    if isinstance(doc.get("contentType"), str):
        line["contentType"] = doc["contentType"]
    return line


def member_name(storage_id: str, content_type: str | None) -> str:
    ext = mimetypes.guess_extension(content_type.split(";")[0].strip()) if content_type else None
    return f"{STORAGE_FOLDER}/{storage_id}{ext or ''}"


def storage_pages(db: Database, size: int = 500) -> Iterator[list[dict[str, Any]]]:
    """The metadata lines of every file, a page (one consistent read) at a time."""
    for page in table_pages(db, STORAGE_TABLE, size, system=True):
        yield [metadata_line(doc) for doc in page]


# ---- export -----------------------------------------------------------------


def write_files(
    archive: zipfile.ZipFile,
    pages: Iterable[Sequence[dict[str, Any]]],
    open_blob: Callable[[dict[str, Any]], BinaryIO | None],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every file of `pages` (metadata lines) with its bytes, streamed
    from `open_blob(line)`; the number written. A file whose bytes are gone
    (deleted since its page was read) is left out with its line, so the zip
    never holds a line without its bytes. Bytes that do not match their line
    fail the export. `progress(files, bytes)` after each file."""
    report = progress or (lambda files, done: None)
    count = done = 0
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as lines:
        for page in pages:
            for line in page:
                stream = open_blob(line)
                if stream is None:
                    continue
                with stream:
                    _write_blob(archive, line, stream)
                lines.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                count += 1
                done += int(line["size"])
                report(count, done)
        lines.seek(0)
        with archive.open(_LINES, "w") as out:
            while chunk := lines.read(BLOB_READ_CHUNK):
                out.write(chunk)
    return count


def _write_blob(archive: zipfile.ZipFile, line: dict[str, Any], stream: BinaryIO) -> None:
    info = zipfile.ZipInfo(member_name(line["_id"], line.get("contentType")))
    info.compress_type = zipfile.ZIP_STORED  # files are mostly compressed already
    info.file_size = int(line["size"])  # so the zip uses zip64 when it must
    digest, size = hashlib.sha256(), 0
    with archive.open(info, "w") as out:
        while chunk := stream.read(BLOB_READ_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            if size > info.file_size:
                break
    if size != info.file_size or b64_sha256(digest.digest()) != line["sha256"]:
        raise SnapshotError(
            f"file {line['_id']}: its stored bytes do not match its metadata (size "
            f"{line['size']}, sha256 {line['sha256']}); the blob store is damaged, the "
            "export is abandoned"
        )


# ---- import -----------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    storage_id: str
    size: int
    sha256: str
    member: str
    line: int
    content_type: str | None


@dataclass(frozen=True)
class FilesImport:
    """The files of a snapshot zip, checked: `table` reads the `_storage`
    documents again from the zip; `files` names each one's bytes."""

    table: TableImport
    files: list[FileEntry]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def iter_storage_lines(lines: Iterable[bytes], table: str, source: str) -> Iterator[ImportDocument]:
    """The `_storage` documents of `_storage/documents.jsonl`, each checked."""
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        where = f"{source} line {number}"
        try:
            line = loads_client_value(text)
        except ClientJsonError as e:
            raise SnapshotError(f"{where}: not a JSON object: {e}", line=number) from None
        doc = _storage_document(line, where, number)
        if doc["_id"] in seen:
            raise SnapshotError(f"{where}: _id {doc['_id']} repeats", line=number)
        seen.add(doc["_id"])
        yield ImportDocument(number, doc)


def _storage_document(line: object, where: str, number: int) -> dict[str, Any]:
    def bad(why: str) -> SnapshotError:
        return SnapshotError(f"{where}: {why}", line=number)

    if not isinstance(line, dict):
        raise bad("a line must be one JSON object")
    if extra := sorted(set(line) - _FIELDS):
        raise bad(f"unknown fields {extra} (a file's line has {sorted(_FIELDS)})")
    storage_id, created = line.get("_id"), line.get("_creationTime")
    if not is_id_for(STORAGE_TABLE, storage_id):
        raise bad(f"_id {storage_id!r} is not a storage id (an id of _storage)")
    if not isinstance(created, float | int) or isinstance(created, bool) or not created > 0:
        raise bad(f"_creationTime must be a positive number, got {created!r}")
    sha = line.get("sha256")
    try:
        ok = isinstance(sha, str) and len(base64.b64decode(sha, validate=True)) == 32
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise bad(f"sha256 must be the base64 of a SHA-256 digest, got {sha!r}")
    size = line.get("size")
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= FILE_BYTES:
        raise bad(f"size must be a whole number of bytes up to {FILE_BYTES:,}, got {size!r}")
    doc: dict[str, Any] = {"_id": storage_id, "_creationTime": float(created)}
    doc |= {"sha256": sha, "size": float(size)}  # a float64, as ctx.storage writes it
    content_type = line.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise bad(f"contentType must be a string, got {content_type!r}")
    if content_type:
        doc["contentType"] = content_type
    return doc


def read_zip_files(data: bytes | IO[bytes] | Path) -> FilesImport | None:
    """The files of a snapshot zip, checked against their lines (sizes as
    the zip states them; the bytes are checked as they are imported), or
    None when it carries none. A file `data` must stay open until the import
    is over."""
    with _open_zip(_source(data)) as archive:
        infos = {i.filename: i for i in archive.infolist()}
    members: dict[str, zipfile.ZipInfo] = {}
    for name, info in infos.items():
        path = PurePosixPath(name)
        if len(path.parts) == 2 and path.parts[0] == STORAGE_FOLDER and name != _LINES:
            if info.is_dir():
                continue
            storage_id = path.name.split(".", 1)[0]
            if not is_id_for(STORAGE_TABLE, storage_id):
                raise SnapshotError(f"zip:{name}: the name does not start with a storage id")
            if storage_id in members:
                raise SnapshotError(f"zip:{name}: a second file for {storage_id}")
            members[storage_id] = info
    if _LINES not in infos:
        if members:
            raise SnapshotError(f"the zip holds files but no {_LINES} (their metadata)")
        return None
    source = f"zip:{_LINES}"

    def again() -> Iterator[bytes]:
        with _open_zip(_source(data)) as archive, archive.open(_LINES) as member:
            yield from LineReader().lines(member, source)

    files, total = [], 0
    for d in iter_storage_lines(again(), STORAGE_TABLE, source):
        storage_id = d.document["_id"]
        got = members.pop(storage_id) if storage_id in members else None
        if got is None:
            raise SnapshotError(
                f"{source} line {d.line}: the zip holds no bytes for file {d.document['_id']} "
                f"({STORAGE_FOLDER}/<id>)",
                line=d.line,
            )
        size = d.document["size"]
        if got.file_size != size:
            raise SnapshotError(
                f"zip:{got.filename}: holds {got.file_size:,} bytes, its line "
                f"{d.line} says {size:,}",
                line=d.line,
            )
        total += size
        if total > IMPORT_ARCHIVE_BYTES:
            raise SnapshotError(
                f"the zip's files add up to more than {IMPORT_ARCHIVE_BYTES:,} bytes "
                "(IMPORT_ARCHIVE_BYTES); import them in several snapshots"
            )
        files.append(
            FileEntry(
                storage_id,
                size,
                d.document["sha256"],
                got.filename,
                d.line,
                d.document.get("contentType"),
            )
        )
    if members:
        name = next(iter(members.values())).filename
        raise SnapshotError(f"zip:{name}: a file with no line in {_LINES}")
    table = TableImport(STORAGE_TABLE, source, len(files), again, True, iter_storage_lines)
    return FilesImport(table, files)


def _source(data: bytes | IO[bytes] | Path) -> bytes | IO[bytes] | Path:
    return data if isinstance(data, bytes | Path) else _rewound(data)


def check_files(db: Database, found: FilesImport, mode: ImportMode) -> None:
    """For `replace`: a file already here under an imported id must have
    the same bytes (its blob is kept). (`check_import` checks the rest.)"""
    if mode != "replace":
        return
    wanted = {f.storage_id: f for f in found.files}
    for page in table_pages(db, STORAGE_TABLE, system=True):
        for doc in page:
            f = wanted.get(doc["_id"])
            if f is not None and (doc["sha256"], doc["size"]) != (f.sha256, f.size):
                raise SnapshotError(
                    f"zip:{f.member}: file {f.storage_id} is here already with other bytes "
                    "(an id names its bytes); remove the file here first, or import into "
                    "another backend",
                    line=f.line,
                )


def import_with_files(
    db: Database,
    storage: FileStorage,
    data: bytes | IO[bytes],
    tables: Sequence[TableImport],
    found: FilesImport,
    mode: ImportMode,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the files' blobs, then every document (after `check_import`
    and `check_files`); all or nothing (see the module's docstring)."""
    report = progress or (lambda phase, done, total: None)
    before: set[str] = set()
    if mode == "replace":
        for page in table_pages(db, STORAGE_TABLE, system=True):
            before.update(doc["_id"] for doc in page)
    written: list[str] = []
    try:
        _put_blobs(storage, data, found, before, written, report)
        result = apply_import(db, [*tables, found.table], mode, report)
    except BaseException:
        storage.remove_blobs(written)
        raise
    kept = {f.storage_id for f in found.files}
    storage.remove_blobs(key_of(i) for i in sorted(before - kept))
    return result


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(BLOB_READ_CHUNK):
        yield chunk


def _put_blobs(
    storage: FileStorage,
    data: bytes | IO[bytes],
    found: FilesImport,
    skip: set[str],
    written: list[str],
    report: Progress,
) -> None:
    total, done = found.total_bytes, 0
    report("files", 0, total)
    with _open_zip(_rewound(data)) as archive:
        for f in found.files:
            if f.storage_id in skip:  # here already, with these bytes (check_files)
                done += f.size
                continue
            key = key_of(f.storage_id)
            written.append(key)
            try:
                with archive.open(f.member) as member:
                    info = storage.blobs.put(key, _chunks(member), f.content_type)
            except zipfile.BadZipFile as e:
                raise SnapshotError(f"zip:{f.member}: the zip is damaged ({e})") from None
            if (info.size, info.sha256) != (f.size, f.sha256):
                raise SnapshotError(
                    f"zip:{f.member}: the file's bytes do not match its line {f.line} in "
                    f"{_LINES} (sha256 {info.sha256}, {info.size:,} bytes; the line says "
                    f"{f.sha256}, {f.size:,} bytes); the import is refused and nothing was "
                    "kept",
                    line=f.line,
                )
            done += f.size
            report("files", done, total)
