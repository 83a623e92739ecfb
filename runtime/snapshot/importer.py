"""Import documents into tables, all or nothing.

1. `check_import` reads nothing but the target tables' sizes (and, for
   append, whether kept ids already exist) and validates every document
   against the schema, so a bad document fails the import, naming its line,
   before anything is written.
2. `apply_import` writes in batches, each one mutation (a batch shrinks when
   it would pass the transaction caps). If a batch fails, the batches already
   written are undone: inserted documents are deleted and, for `replace`,
   the documents it deleted are restored with their ids. The originals are
   kept in memory while the import runs.

Not covered: the server dying mid-import (a partial import stays), and
writes by other mutations to the same tables while the import runs (they
are not isolated from it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runtime.database import Database, Transaction
from runtime.database.errors import TransactionTooLargeError
from runtime.errors import PlatformError
from runtime.limits import LimitExceeded

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


class ImportFailed(PlatformError):
    code = "IMPORT_FAILED"


@dataclass
class ImportReport:
    imported: dict[str, int]
    deleted: dict[str, int]


def table_pages(db: Database, table: str, size: int = _PAGE) -> Iterator[list[dict[str, Any]]]:
    """A table's documents in creation order, a page (one consistent read) at a time."""
    cursor: str | None = None
    while True:

        def read(tx: Transaction, c: str | None = cursor) -> Any:
            return tx.query(table).paginate({"numItems": size, "cursor": c})

        page = db.query(read).value
        yield page["page"]
        if page["is_done"]:
            return
        cursor = page["continue_cursor"]


def check_import(db: Database, tables: Sequence[TableImport], mode: ImportMode) -> None:
    """Raise SnapshotError for anything that would fail the import."""
    schema = db.schema
    for t in tables:
        if schema is not None and schema.strict_table_name_types and schema.table(t.table) is None:
            raise SnapshotError(
                f'table "{t.table}" is not in the schema; add it to functions/schema.py first'
            )
        for d in t.documents:
            user = {k: x for k, x in d.document.items() if k not in ("_id", "_creationTime")}
            try:
                if schema is not None:
                    schema.validate_document(t.table, user)
            except PlatformError as e:
                raise SnapshotError(
                    f"{t.source} line {d.line}: does not match the schema: {e}", line=d.line
                ) from None
        if mode == "create":
            existing = sum(len(p) for p in table_pages(db, t.table))
            if existing:
                raise SnapshotError(
                    f'table "{t.table}" already has {existing} documents: pass --append to '
                    "add to them or --replace to replace them"
                )
        if mode == "append":
            ids = [d.id for d in t.documents if d.id is not None]
            for start in range(0, len(ids), _PAGE):
                chunk = ids[start : start + _PAGE]

                def present(tx: Transaction, c: list[str] = chunk) -> list[str]:
                    return [i for i in c if tx.get(i) is not None]

                found = db.query(present).value
                if found:
                    line = next(d.line for d in t.documents if d.id == found[0])
                    raise SnapshotError(
                        f"{t.source} line {line}: a document with _id {found[0]} "
                        "already exists (use --replace, or remove the _id fields)",
                        line=line,
                    )


def _in_batches(
    db: Database,
    items: Sequence[Any],
    write: Callable[[Transaction, Any], Any],
    progress: Callable[[int], None],
    results: list[Any] | None = None,
) -> list[Any]:
    """Apply `write` to every item, a batch per mutation, halving a batch
    that is too big for one transaction. What `write` returned is appended
    to `results` batch by batch, as each commits (so a caller that catches
    a failure knows what was written)."""
    results = [] if results is None else results
    size = _BATCH
    start = 0
    while start < len(items):
        batch = items[start : start + size]

        def body(tx: Transaction, b: Sequence[Any] = batch) -> list[Any]:
            return [write(tx, x) for x in b]

        try:
            out = db.mutation(body).value
        except (TransactionTooLargeError, LimitExceeded):
            if size == 1:
                raise
            size = max(1, size // 2)
            continue
        results.extend(out)
        start += len(batch)
        progress(len(batch))
    return results


def apply_import(
    db: Database,
    tables: Sequence[TableImport],
    mode: ImportMode,
    progress: Progress | None = None,
    *,
    fail_after: int | None = None,
) -> ImportReport:
    """Write the documents (after `check_import`). `fail_after`: for tests,
    raise after that many documents were written, to exercise the undo."""
    report = progress or (lambda phase, done, total: None)
    deleted: dict[str, list[dict[str, Any]]] = {}
    inserted: list[str] = []
    total = sum(len(t.documents) for t in tables)
    written = 0
    try:
        if mode == "replace":
            for t in tables:
                deleted[t.table] = [d for page in table_pages(db, t.table) for d in page]
            doomed = [(t, d["_id"]) for t, docs in deleted.items() for d in docs]
            done = 0

            def deleted_some(n: int) -> None:
                nonlocal done
                done += n
                report("deleting", done, len(doomed))

            _in_batches(db, doomed, lambda tx, item: tx.delete(item[1]), deleted_some)

        def wrote(n: int) -> None:
            nonlocal written
            written += n
            report("writing", written, total)
            if fail_after is not None and written >= fail_after:
                raise ImportFailed(f"injected failure after {written} documents")

        for t in tables:

            def put(tx: Transaction, d: ImportDocument, table: str = t.table) -> str:
                if d.id is not None:
                    return tx.restore(table, d.document)
                return tx.insert(table, d.document)

            _in_batches(db, t.documents, put, wrote, inserted)
    except BaseException as e:
        _undo(db, inserted, deleted, report)
        if isinstance(e, ImportFailed):
            raise
        raise ImportFailed(
            f"the import failed while writing and was undone ({written} of {total} documents "
            f"had been written): {e}"
        ) from e
    return ImportReport(
        {t.table: len(t.documents) for t in tables},
        {table: len(docs) for table, docs in deleted.items()},
    )


def _undo(
    db: Database,
    inserted: list[str],
    deleted: dict[str, list[dict[str, Any]]],
    report: Progress,
) -> None:
    def gone(tx: Transaction, doc_id: str) -> None:
        if tx.get(doc_id) is not None:
            tx.delete(doc_id)

    total = len(inserted) + sum(len(d) for d in deleted.values())
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        report("undoing", done, total)

    _in_batches(db, inserted, gone, step)
    originals = [(table, doc) for table, docs in deleted.items() for doc in docs]
    _in_batches(db, originals, lambda tx, item: tx.restore(item[0], item[1]), step)
