"""Writing snapshots: the zip `export` produces (format in `format.py`).

`SnapshotWriter` writes the zip from pages of documents, wherever they come
from: the CLI feeds it the pages it fetches over HTTP, `export_database`
the pages it reads from a `Database` directly (the AWS shell can use that).

An export reads table by table and page by page, each page one consistent
read; it is not a point-in-time snapshot across pages or tables (a write
that lands during the export may be in it or not, and a mutation that
touches two tables may be seen half).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from runtime.database import Database, Transaction
from runtime.files.storage import FileStorage, key_of

from .format import DOCUMENTS, document_line, write_snapshot_meta

__all__ = ["SnapshotWriter", "export_database", "table_pages", "user_tables"]

_PAGE = 500


def table_pages(
    db: Database, table: str, size: int = _PAGE, *, system: bool = False
) -> Iterator[list[dict[str, Any]]]:
    """A table's documents in creation order, a page (one consistent read) at
    a time. `system`: a platform table (`_storage`)."""
    cursor: str | None = None
    while True:

        def read(tx: Transaction, c: str | None = cursor) -> Any:
            return tx.query(table, system=system).paginate({"numItems": size, "cursor": c})

        page = db.query(read).value
        yield page["page"]
        if page["isDone"]:
            return
        cursor = page["continueCursor"]


class SnapshotWriter:
    """Write a snapshot zip to `path`: `add_table` for every table, then
    `close` (or use it as a context manager). The zip is written to
    `<path>.partial` and renamed into place by `close`, so an export that
    fails or is interrupted leaves no partial zip behind; `abort` removes
    the partial file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.tables: list[str] = []
        self.counts: dict[str, int] = {}
        self.files = 0
        """How many files `add_files` wrote."""
        self._archive: zipfile.ZipFile | None = zipfile.ZipFile(
            self.partial, "w", zipfile.ZIP_DEFLATED
        )

    def add_table(
        self,
        table: str,
        pages: Iterable[Sequence[dict[str, Any]]],
        *,
        encoded: bool = False,
    ) -> int:
        """Write `table/documents.jsonl` from `pages` of documents (system
        fields included); the number of documents written. `encoded`: the
        documents are already convex_encoded_json objects (as the export
        route sends them), written as they are."""
        if self._archive is None:
            raise ValueError("the snapshot is closed")
        if table in self.counts:
            raise ValueError(f'table "{table}" is already in the snapshot')
        self.tables.append(table)
        self.counts[table] = 0
        with self._archive.open(f"{table}/{DOCUMENTS}", "w") as out:
            for page in pages:
                for doc in page:
                    out.write(_encoded_line(doc) if encoded else document_line(doc))
                self.counts[table] += len(page)
        return self.counts[table]

    def add_files(
        self,
        pages: Iterable[Sequence[dict[str, Any]]],
        open_blob: Callable[[dict[str, Any]], BinaryIO | None],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Write the files of `pages` (their `_storage/documents.jsonl` lines)
        with their bytes from `open_blob(line)` (`files.write_files`)."""
        from .files import write_files

        if self._archive is None:
            raise ValueError("the snapshot is closed")
        self.files = write_files(self._archive, pages, open_blob, progress)
        return self.files

    def close(self) -> None:
        """Write `_tables/documents.jsonl` and README.md and move the zip into place."""
        if self._archive is None:
            return
        archive, self._archive = self._archive, None
        try:
            with archive:
                write_snapshot_meta(archive, self.tables)
            os.replace(self.partial, self.path)
        finally:
            self.partial.unlink(missing_ok=True)

    def abort(self) -> None:
        if self._archive is not None:
            archive, self._archive = self._archive, None
            archive.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _encoded_line(encoded: dict[str, Any]) -> bytes:
    # The same text `dumps` gives for the decoded document.
    text = json.dumps(encoded, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def user_tables(db: Database) -> list[str]:
    """The app's tables: what an export writes as `<table>/documents.jsonl`
    (the platform's, `_storage` and the like, are not tables of the app)."""
    return [t for t in db.tables() if not t.startswith("_")]


def export_database(
    db: Database,
    path: Path,
    progress: Callable[[str, int], None] | None = None,
    *,
    page_size: int = _PAGE,
    files: FileStorage | None = None,
) -> dict[str, int]:
    """Export every table of the app (`user_tables`) to the zip at `path`;
    the number of documents per table. `files`: also write every file, as
    Convex's `--include-file-storage` (`files.py`). `progress(table,
    documents so far)` is called after every page. Not a point-in-time
    snapshot (see above)."""
    report = progress or (lambda table, done: None)
    with SnapshotWriter(path) as writer:
        if files is not None:
            from .files import storage_pages

            def open_blob(line: dict[str, Any], fs: FileStorage = files) -> BinaryIO | None:
                return fs.blobs.open(key_of(line["_id"]))

            writer.add_files(storage_pages(db, page_size), open_blob)
        for table in user_tables(db):

            def pages(t: str = table) -> Iterator[list[dict[str, Any]]]:
                done = 0
                for page in table_pages(db, t, page_size):
                    done += len(page)
                    report(t, done)
                    yield page

            writer.add_table(table, pages())
        return dict(writer.counts)
