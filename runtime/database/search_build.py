"""Keep the search engine's indexes equal to the schema's search indexes:
build new ones from the documents already stored, drop removed ones.

The store remembers which search indexes it holds (partition `m:search`, one
item per table: `{name: [search field, filter fields...]}`), like
`backfill.py` does for indexes. A search index's engine name includes its
fields (`SearchIndexSpec.index_key`), so a redefined one is a new index,
built afresh, and the old one is dropped.

Building reads the table in creation order in batches:
- a transactional engine (SQLite FTS5): each batch is one store commit that
  checks the version of every document it indexes, with its `SearchWrite`s;
  a concurrent write to one of them fails the batch, which is read again;
- an engine fed from the stream (OpenSearch): each batch is applied at
  version 1, below every commit timestamp, so an entry the stream delivers
  for a newer write is never overwritten by the build.
Writers take up the new schema before the build starts, so documents written
meanwhile are indexed by their own commits (or stream records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.errors import SchemaError
from runtime.schema import SchemaDefinition
from runtime.search.port import SearchEngine, SearchEntry
from runtime.store.port import Check, Put, SearchWrite, Store, TransactionConflict
from runtime.store.port import search_write as search_write_op

from . import layout
from .backfill import changed_definitions, record_definitions, table_id_pages
from .search import SearchIndexSpec, search_specs

__all__ = ["SearchChanges", "build_search_index", "plan_search_changes", "record_search_indexes"]

META = "m:search"
_BATCH = 45

Wanted = dict[str, dict[str, list[str]]]


def wanted_search_indexes(schema: SchemaDefinition | None) -> Wanted:
    """{table: {name: [search field, *filter fields]}} the schema declares."""
    if schema is None:
        return {}
    out: Wanted = {}
    for table in schema.tables:
        specs = search_specs(schema, table)
        if specs:
            out[table] = {s.name: [s.search_field, *s.filter_fields] for s in specs}
    return out


def _spec(table: str, name: str, fields: list[str]) -> SearchIndexSpec:
    return SearchIndexSpec(table, name, fields[0], tuple(fields[1:]))


@dataclass
class SearchChanges:
    build: list[SearchIndexSpec] = field(default_factory=list)
    drop: list[SearchIndexSpec] = field(default_factory=list)
    tables: dict[str, tuple[dict[str, list[str]], int]] = field(default_factory=dict)
    """table -> (wanted search indexes, stored meta version), for each table that changes."""

    def __bool__(self) -> bool:
        return bool(self.build or self.drop)


def plan_search_changes(store: Store, wanted: Wanted) -> SearchChanges:
    changes = SearchChanges()
    for table, old, new, version in changed_definitions(store, META, wanted):
        changes.tables[table] = (new, version)
        for name, fields in new.items():
            if old.get(name) != fields:
                changes.build.append(_spec(table, name, fields))
        for name, fields in old.items():
            if new.get(name) != fields:
                changes.drop.append(_spec(table, name, fields))
    return changes


def engine_of(store: Store, changes: SearchChanges) -> SearchEngine | None:
    """The store's search engine; a schema that adds search indexes to a store
    without one is refused, saying what to configure."""
    engine: SearchEngine | None = getattr(store, "search", None)
    if engine is None and changes.build:
        names = ", ".join(f"{s.table}.{s.name}" for s in changes.build)
        raise SchemaError(
            f"the schema declares search indexes ({names}) but this deployment has no search "
            "engine. On AWS, set the stack's OpenSearchEndpoint parameter to an OpenSearch "
            "domain's endpoint (sam deploy --parameter-overrides OpenSearchEndpoint=https://...), "
            "or remove the search indexes."
        )
    return engine


def build_search_index(
    store: Store,
    engine: SearchEngine,
    spec: SearchIndexSpec,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Index every stored document of the table; returns how many were read."""
    engine.create_index(spec.index_key)
    done = 0
    for ids in table_id_pages(store, spec.table, _BATCH):
        while True:
            items = store.get([layout.doc_key(i) for i in ids])
            entries: list[SearchEntry] = []
            checks: list[Check | Put | SearchWrite] = []
            for doc_id, item in zip(ids, items, strict=True):
                if item is None:
                    continue  # deleted since the scan
                doc = layout.decode_document_body(item.value)
                entry = spec.entry(doc_id, doc, 1)
                if entry.text is None:
                    continue
                entries.append(entry)
                checks.append(Check(layout.doc_key(doc_id), item.version))
            if not entries:
                break
            if not engine.transactional:
                engine.apply(entries)
                break
            try:
                store.transact([*checks, *(search_write_op(e) for e in entries)])
                break
            except TransactionConflict:
                continue  # a document moved: read the batch again
        done += len(ids)
        if progress is not None:
            progress(done)
    return done


def record_search_indexes(store: Store, changes: SearchChanges) -> None:
    record_definitions(store, META, changes.tables)
