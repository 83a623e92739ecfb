"""Keep the stored indexes equal to the schema's: build new ones from the
documents already there, drop removed ones.

The store remembers which indexes it holds (partition `m:indexes`, one item
per table: `{index: fields}`), so a schema that adds an index to a table with
documents gets it built before any query can use it, and an index whose
fields changed is rebuilt (its old entries would sort wrongly).

Building is done in batches, each one transaction that checks the version of
every document it indexes and puts its entry: a concurrent write to one of
them fails the batch, which is re-read and retried, so no entry is ever
stale. Writers switch to the new schema before building starts, so
documents written meanwhile are indexed by their own commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from runtime.store.port import Check, Delete, Key, Put, Store, TransactionConflict, scan_all

from . import layout
from .indexes import TableIndexes

__all__ = ["IndexChanges", "build_index", "clear_index", "plan_index_changes", "record_indexes"]

META = "m:indexes"
_BATCH = 45  # 2 items per document (check + entry), under DynamoDB's 100


class IndexChanges:
    def __init__(self) -> None:
        self.build: list[tuple[str, str]] = []
        """(table, index) to build: new, or fields changed."""
        self.drop: list[tuple[str, str]] = []
        """(table, index) whose entries go: removed, or fields changed."""
        self.tables: dict[str, tuple[dict[str, list[str]], int]] = {}
        """table -> (wanted indexes, stored meta version) for every table that changes."""

    def __bool__(self) -> bool:
        return bool(self.build or self.drop)


Definitions = dict[str, list[str]]
"""{index name: its fields} of one table."""


def changed_definitions(
    store: Store, meta: str, wanted: dict[str, Definitions]
) -> list[tuple[str, Definitions, Definitions, int]]:
    """(table, stored definitions, wanted ones, stored meta version) for every
    table whose definitions under partition `meta` differ from `wanted`
    (indexes here; search indexes in `search_build.py`)."""
    stored = {
        item.key[1].decode(): (json.loads(item.value), item.version)
        for item in scan_all(store, meta)
    }
    out = []
    for table in sorted(set(stored) | set(wanted)):
        old, version = stored.get(table, ({}, 0))
        new = wanted.get(table, {})
        if old != new:
            out.append((table, old, new, version))
    return out


def record_definitions(store: Store, meta: str, tables: dict[str, tuple[Definitions, int]]) -> None:
    """Store each table's definitions, if no one changed them since they were read."""
    for table, (wanted, version) in tables.items():
        key = (meta, table.encode())
        store.transact([Put(key, json.dumps(wanted, sort_keys=True).encode(), expect=version)])


def plan_index_changes(store: Store, wanted: dict[str, Definitions]) -> IndexChanges:
    changes = IndexChanges()
    for table, old, new, version in changed_definitions(store, META, wanted):
        changes.tables[table] = (new, version)
        for name, fields in new.items():
            if old.get(name) != fields:
                changes.build.append((table, name))
                if name in old:
                    changes.drop.append((table, name))
        changes.drop += [(table, name) for name in old if name not in new]
    return changes


def clear_index(store: Store, table: str, index: str) -> int:
    """Delete every entry of one index; returns how many."""
    partition = layout.index_partition(table, index)
    removed = 0
    while True:
        page = store.scan(partition, b"", None, limit=90)
        if not page:
            return removed
        store.transact([Delete(item.key) for item in page])
        removed += len(page)


def table_id_pages(store: Store, table: str, size: int) -> Iterator[list[str]]:
    """The ids of a table's documents in creation order, `size` at a time
    (read from its `by_creation_time` entries)."""
    source = layout.index_partition(table, "by_creation_time")
    lo = b""
    while page := store.scan(source, lo, None, limit=size):
        yield [item.value.decode() for item in page]
        lo = page[-1].key[1] + b"\x00"


def build_index(
    store: Store,
    indexes: TableIndexes,
    index: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Put the entry of every document of the table; returns how many."""
    spec = indexes.by_name[index]
    built = 0
    for ids in table_id_pages(store, indexes.table, _BATCH):
        while True:
            keys: list[Key] = [layout.doc_key(i) for i in ids]
            ops: list[Check | Put] = []
            for doc_id, item in zip(ids, store.get(keys), strict=True):
                if item is None:
                    continue  # deleted since the scan: nothing to index
                doc = layout.decode_document_body(item.value)
                ops.append(Check(layout.doc_key(doc_id), item.version))
                ops.append(Put(spec.key(doc), doc_id.encode()))
            try:
                if ops:
                    store.transact(ops)
                break
            except TransactionConflict:
                continue  # a document moved: read the batch again
        built += len(ops) // 2
        if progress is not None:
            progress(built)
    return built


def record_indexes(store: Store, changes: IndexChanges) -> None:
    record_definitions(store, META, changes.tables)
