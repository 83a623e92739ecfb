"""The database with a search engine, as the search conformance suite drives it.

Embedded: a SQLite store, whose commits write the FTS5 index. The AWS harness:
a DynamoDB store with the OpenSearch adapter (against the local
OpenSearch-compatible server), fed from the store's change feed by the same
code the stream Lambda runs; `catch_up` delivers what was committed, as the
stream would, and `engine_lagging` holds delivery back to show that results
never depend on the engine being current.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from runtime.database import Database
from runtime.schema import SchemaDefinition
from runtime.store.port import Store

T = TypeVar("T")


class SearchDb:
    def __init__(
        self,
        make_store: Callable[[], Store],
        schema: SchemaDefinition,
        *,
        embedded: bool,
        feed: Callable[[Database, str | None], str | None] | None = None,
    ) -> None:
        self._make_store = make_store
        self.embedded = embedded
        self._feed = feed
        self._position: str | None = None
        self._lagging = False
        self.db = self.fresh(schema)
        self.db.set_schema(schema)

    def fresh(self, schema: SchemaDefinition) -> Database:
        """A database on a new, empty store (this object follows it)."""
        self.db = Database(self._make_store(), schema)
        self._position = None
        return self.db

    def catch_up(self) -> None:
        """Deliver every committed write to the engine (no-op when embedded)."""
        if self._feed is not None and not self._lagging:
            self._position = self._feed(self.db, self._position)

    @contextlib.contextmanager
    def engine_lagging(self) -> Iterator[None]:
        self._lagging = True
        try:
            yield
        finally:
            self._lagging = False
            self.catch_up()

    def mutation(self, fn: Callable[[Any], T]) -> T:
        value = self.db.mutation(fn).value
        self.catch_up()
        return value

    def query(self, fn: Callable[[Any], T]) -> T:
        return self.db.query(fn).value


def harness_feed(db: Database, after: str | None) -> str | None:
    """Deliver the store's committed writes to its engine, as the stream Lambda
    does: each change's search entries at its commit timestamp. Returns the
    feed position reached."""
    from runtime.database.search import change_entries

    engine = db.store.search  # type: ignore[attr-defined]
    while True:
        batch = db.store.read_changes(after, 1000)
        entries = [e for c in batch.changes for e in change_entries(c, db.table_indexes)]
        if entries:
            engine.apply(entries)
        if not batch.changes:
            return batch.position
        after = batch.position
