"""Import documents into tables, all or nothing.

1. `check_import` reads nothing but the target tables' sizes (and, for
   append, whether kept ids already exist) and validates every document
   against the schema and the table's index key limits, so a bad document
   fails the import, naming its line, before anything is written (the
   checks that need no database were done by `format.parse_jsonl`).
2. `apply_import` writes in batches, each one mutation (a batch shrinks when
   it would pass the transaction caps). If a batch fails, the batches already
   written are undone: inserted documents are deleted and, for `replace`,
   the documents it deleted are restored with their ids and creation times.
   The originals and the inserted ids are kept in temporary files (in
   memory up to `spill_bytes`) while the import runs.

Both passes stream: documents are read again from their source (the
uploaded file) for the checks and for the writes, never all held at once.

Not covered: the server dying mid-import (a partial import stays: the
originals of a `replace` are in a temporary file that dies with it), and
writes by other mutations to the same tables while the import runs (they
are not isolated from it).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

from runtime.database import Database, Transaction
from runtime.database.errors import TransactionTooLargeError
from runtime.errors import PlatformError
from runtime.files.storage import STORAGE_TABLE, key_of
from runtime.limits import LimitExceeded
from runtime.values import dumps, is_id_for, loads, make_id

from .export import table_pages
from .format import ImportDocument, SnapshotError, TableImport

__all__ = [
    "ImportFailed",
    "ImportMode",
    "ImportReport",
    "apply_import",
    "check_import",
    "table_pages",
]

ImportMode = Literal["create", "append", "replace"]
"""create (the default): the table must be empty; append: add; replace: delete first."""

Progress = Callable[[str, int, int], None]
"""(phase, done, total): phase is "deleting", "writing" or "undoing"."""

_PAGE = 500
_BATCH = 16
_SPILL_BYTES = 8 << 20


class ImportFailed(PlatformError):
    code = "IMPORT_FAILED"


@dataclass
class ImportReport:
    imported: dict[str, int]
    deleted: dict[str, int]


def check_import(db: Database, tables: Sequence[TableImport], mode: ImportMode) -> None:
    """Raise SnapshotError for anything that would fail the import."""
    schema = db.schema
    for t in tables:
        if t.system:  # the platform's own table (`_storage`): no schema, no user indexes
            pass
        elif (
            schema is not None and schema.strict_table_name_types and schema.table(t.table) is None
        ):
            raise SnapshotError(
                f'table "{t.table}" is not in the schema; add it to functions/schema.py first'
            )
        specs = db.table_indexes(t.table).specs
        placeholder = make_id(t.table, bytes(16))
        for d in [] if t.system else t.documents():
            user = {k: x for k, x in d.document.items() if k not in ("_id", "_creationTime")}
            try:
                if schema is not None:
                    schema.validate_document(t.table, user)
            except PlatformError as e:
                raise SnapshotError(
                    f"{t.source} line {d.line}: does not match the schema: {e}", line=d.line
                ) from None
            # The index keys the write will compute (NaN in an indexed field,
            # an index key over INDEX_KEY_BYTES).
            stored = {"_id": placeholder, "_creationTime": 1.0, **d.document}
            try:
                for spec in specs:
                    spec.key(stored)
            except PlatformError as e:
                raise SnapshotError(f"{t.source} line {d.line}: {e}", line=d.line) from None
        if mode == "create":
            # Counted up to a page: refusing needs no full scan.
            def head(
                tx: Transaction, name: str = t.table, system: bool = t.system
            ) -> list[dict[str, Any]]:
                docs: list[dict[str, Any]] = tx.query(name, system=system).take(_PAGE + 1)
                return docs

            first = db.query(head).value
            if first:
                existing = f"{_PAGE}+" if len(first) > _PAGE else str(len(first))
                raise SnapshotError(
                    f'table "{t.table}" already has {existing} documents: pass --append to '
                    "add to them or --replace to replace them"
                )
        if mode == "append":
            kept = ((d.id, d.line) for d in t.documents() if d.id is not None)
            while chunk := dict(itertools.islice(kept, _PAGE)):
                ids = list(chunk)

                def present(tx: Transaction, c: list[str] = ids) -> list[str]:
                    return [i for i in c if tx.get(i) is not None]

                found = db.query(present).value
                if found:
                    line = chunk[found[0]]
                    raise SnapshotError(
                        f"{t.source} line {line}: a document with _id {found[0]} "
                        "already exists (use --replace, or remove the _id fields)",
                        line=line,
                    )


def _in_batches(
    db: Database,
    items: Iterable[Any],
    write: Callable[[Transaction, Any], Any],
    progress: Callable[[int], None],
    done: Callable[[list[Any]], None] | None = None,
) -> None:
    """Apply `write` to every item (read as needed: `items` may stream), a
    batch per mutation, halving a batch that is too big for one transaction.
    `done` gets what `write` returned, batch by batch, as each commits (so a
    caller that catches a failure knows what was written)."""
    source = iter(items)
    pending: list[Any] = []
    size = _BATCH
    while True:
        pending += itertools.islice(source, max(0, size - len(pending)))
        if not pending:
            return
        batch = pending[:size]

        def body(tx: Transaction, b: Sequence[Any] = batch) -> list[Any]:
            return [write(tx, x) for x in b]

        try:
            out = db.mutation(body).value
        except (TransactionTooLargeError, LimitExceeded):
            if size == 1:
                raise
            size = max(1, size // 2)
            continue
        if done is not None:
            done(out)
        del pending[: len(batch)]
        progress(len(batch))


class _Spilled:
    """Values kept for a possible undo (the ids an import inserted, the
    documents a `replace` deleted): one convex_encoded_json line each in a
    temporary file that stays in memory up to `spill_bytes`."""

    def __init__(self, spill_bytes: int) -> None:
        # max_size 0 would mean "never spill": spill_bytes 0 spills at once.
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=max(1, spill_bytes))  # noqa: SIM115 - closed by close()
        self.kept = 0

    def keep(self, value: Any) -> None:
        self.file.write(dumps(value) + b"\n")
        self.kept += 1

    def chunks(self, size: int) -> Iterator[list[Any]]:
        """The kept values, `size` at a time, in the order kept."""
        self.file.seek(0)
        chunk: list[Any] = []
        for line in self.file:
            chunk.append(loads(line))
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        self.file.seek(0, 2)

    def close(self) -> None:
        self.file.close()


def _delete_if_present(tx: Transaction, doc_id: str) -> None:
    if tx.get(doc_id) is not None:
        if is_id_for(STORAGE_TABLE, doc_id):
            tx.system_delete(doc_id)
        else:
            tx.delete(doc_id)


def _restore(tx: Transaction, table: str, doc: dict[str, Any]) -> str:
    """Insert `doc` keeping its `_id` and `_creationTime`, as the platform
    writes its own tables (`_storage`) or as `ctx.db` writes the app's."""
    if not table.startswith("_"):
        return tx.restore(table, doc)
    random16 = bytes.fromhex(key_of(doc["_id"], "import"))
    fields = {k: x for k, x in doc.items() if k not in ("_id", "_creationTime")}
    return tx.system_insert(table, fields, random16, creation_time=doc["_creationTime"])


def _restore_if_absent(tx: Transaction, item: Any) -> None:
    table, doc = item
    if tx.get(doc["_id"]) is None:
        _restore(tx, table, doc)


def apply_import(
    db: Database,
    tables: Sequence[TableImport],
    mode: ImportMode,
    progress: Progress | None = None,
    *,
    fail_after: int | None = None,
    spill_bytes: int = _SPILL_BYTES,
) -> ImportReport:
    """Write the documents (after `check_import`). `fail_after`: for tests,
    raise after that many documents were written, to exercise the undo.
    `spill_bytes`: how much of the originals a `replace` keeps in memory
    before spilling them to a temporary file."""
    report = progress or (lambda phase, done, total: None)
    originals, inserted = _Spilled(spill_bytes), _Spilled(spill_bytes)
    try:
        return _apply(db, tables, mode, report, originals, inserted, fail_after)
    finally:
        originals.close()
        inserted.close()


def _apply(
    db: Database,
    tables: Sequence[TableImport],
    mode: ImportMode,
    report: Progress,
    originals: _Spilled,
    inserted: _Spilled,
    fail_after: int | None,
) -> ImportReport:
    total = sum(t.count for t in tables)
    written = 0
    deleted: dict[str, int] = {}
    try:
        if mode == "replace":
            for t in tables:
                deleted.setdefault(t.table, 0)
                for page in table_pages(db, t.table, system=t.system):
                    for doc in page:
                        originals.keep([t.table, doc])
                        deleted[t.table] += 1
            doomed = originals.kept
            done = 0

            def deleted_some(n: int) -> None:
                nonlocal done
                done += n
                report("deleting", done, doomed)

            for chunk in originals.chunks(_PAGE):
                ids = [doc["_id"] for _, doc in chunk]
                _in_batches(db, ids, _delete_if_present, deleted_some)

        def wrote_ids(ids: list[Any]) -> None:
            for doc_id in ids:
                inserted.keep(doc_id)

        def wrote(n: int) -> None:
            nonlocal written
            written += n
            report("writing", written, total)
            if fail_after is not None and written >= fail_after:
                raise ImportFailed(f"injected failure after {written} documents")

        for t in tables:

            def put(tx: Transaction, d: ImportDocument, table: str = t.table) -> str:
                if d.id is not None:
                    return _restore(tx, table, d.document)
                return tx.insert(table, d.document)

            _in_batches(db, t.documents(), put, wrote, wrote_ids)
    except BaseException as e:
        try:
            _undo(db, inserted, originals, report)
        except Exception as undo_error:
            raise ImportFailed(
                f"the import failed ({e}) and undoing it failed too ({undo_error}): the "
                f"tables may hold part of the import ({written} of {total} documents had "
                "been written)"
            ) from e
        if isinstance(e, ImportFailed):
            raise
        raise ImportFailed(
            f"the import failed while writing and was undone ({written} of {total} documents "
            f"had been written): {e}"
        ) from e
    return ImportReport({t.table: t.count for t in tables}, deleted)


def _undo(db: Database, inserted: _Spilled, originals: _Spilled, report: Progress) -> None:
    """Delete what was inserted, then restore the originals a `replace` deleted
    (those still present, when the deleting did not finish, stay as they are)."""
    total = inserted.kept + originals.kept
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        report("undoing", done, total)

    for chunk in inserted.chunks(_PAGE):
        _in_batches(db, chunk, _delete_if_present, step)
    for chunk in originals.chunks(_PAGE):
        _in_batches(db, chunk, _restore_if_absent, step)
