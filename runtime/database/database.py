"""The transaction runner: serializable mutations and consistent queries.

`Database.mutation(fn)` runs `fn(db)` against the live store, buffering
writes, then commits them in one `Store.transact` that also checks the read
set. On a conflict the function is re-run from scratch (it is deterministic)
with jittered exponential backoff, up to `OCC_MAX_ATTEMPTS`; then
`OccConflictError` names what was contended. `Database.query(fn)` runs
read-only and validates its read set afterwards (every version it relied on is
re-read), re-running when anything moved, so a result is always one snapshot.

A function that raises is not trusted blindly either: if its read set has
moved, the error may come from an inconsistent view, so it is re-run; only an
error raised from a consistent view reaches the caller.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from runtime.limits import OCC_MAX_ATTEMPTS
from runtime.schema import SchemaDefinition
from runtime.store.port import Key, Put, Store, TransactionConflict, scan_all
from runtime.values import table_tag

from . import backfill, layout, schema_check, search_build
from .commit import CommitPlan, plan_commit
from .errors import OccConflictError, TransactionTooLargeError
from .indexes import TableIndexes
from .readwrite import ReadSet, WriteSet
from .transaction import Transaction

__all__ = ["Database", "Outcome"]

T = TypeVar("T")

log = logging.getLogger("runtime.database")


class _Stale:
    """The marker of an attempt whose reads moved under it."""


_STALE = _Stale()


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    value: T
    ts: int | None
    """Commit timestamp (ns) of a mutation that wrote; None when nothing was written."""
    reads: ReadSet
    attempts: int
    plan: CommitPlan | None
    journal: list[str | None] | None = None
    """A query's paginate end cursors (for live queries; see pagination.py)."""
    writes: WriteSet | None = None
    """What a mutation that wrote committed (live queries find what it touched)."""


class Database:
    def __init__(
        self,
        store: Store,
        schema: SchemaDefinition | None = None,
        *,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_attempts: int = OCC_MAX_ATTEMPTS,
        backoff_base: float = 0.002,
        backoff_cap: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        jitter: random.Random | None = None,
    ) -> None:
        self.store = store
        self._schema = schema
        self._clock = clock
        self._random_bytes = random_bytes
        self.max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._jitter = jitter or random.Random()
        self._lock = threading.Lock()
        self._indexes: dict[str, TableIndexes] = {}
        self._gate = threading.Condition()
        self._active = 0
        self._closed = False
        self._local = threading.local()
        self._known_tables: set[str] | None = None
        self._tag_names: dict[bytes, str] = {}
        self.conflicts = 0
        """Conflicts seen (each one cost a re-run); read by benchmarks."""

    @property
    def schema(self) -> SchemaDefinition | None:
        return self._schema

    def set_schema(
        self,
        schema: SchemaDefinition | None,
        progress: Callable[[str, str, int], None] | None = None,
    ) -> None:
        """Put `schema` in force and make the stored indexes match it.

        The constructor only adopts its schema; this is the schema push (the
        dev server's reload, a deploy): it must not run from a process with
        an older schema than the store's, or it would drop newer indexes.

        Mutations are paused while the entries of removed or redefined
        indexes are deleted and the schema is switched; new indexes are then
        built from the documents already stored (see `backfill.py`; search
        indexes: `search_build.py`, in the store's search engine) while
        mutations run again. Until an index is built, queries on it fail with
        INVALID_QUERY (they would miss documents). `progress(table, index,
        documents_done)` reports long builds.

        First, the stored documents are checked against the new schema's
        validators: if any fails, SchemaError names them and nothing changes.
        (A document written with the old schema between that check and the
        switch is not re-checked.)"""
        schema_json = _schema_bytes(schema)
        stored = self.store.get([_SCHEMA_KEY])[0]
        if schema is not None and (stored is None or stored.value != schema_json):
            schema_check.check_documents(self.store, schema)
        wanted = (
            {t: {n: list(f) for n, f in d.indexes.items()} for t, d in schema.tables.items()}
            if schema is not None
            else {}
        )
        changes = backfill.plan_index_changes(self.store, wanted)
        building = {(t, n) for t, n in changes.build}
        searches = search_build.plan_search_changes(
            self.store, search_build.wanted_search_indexes(schema)
        )
        engine = search_build.engine_of(self.store, searches)
        building |= {(s.table, s.name) for s in searches.build}
        with self._exclusive():
            if engine is not None:
                for spec in searches.drop:
                    engine.drop_index(spec.index_key)
            for table, index in changes.drop:
                old = self._indexes.get(table)
                if old is not None:
                    old.unready[index] = "it is being rebuilt"
                backfill.clear_index(self.store, table, index)
            # Before the builds: from here on, a process still on the old
            # schema cannot commit a write to these tables without taking
            # up their new indexes (see `layout.index_set_value`).
            for table in sorted(set(wanted) | set(changes.tables)):
                _put_index_set(self.store, table, wanted.get(table, {}))
            self._schema = schema
            self._indexes = {}
            for table, index in building:
                self.table_indexes(table).unready[index] = "it is being built"
        for table, index in changes.build:
            tix = self.table_indexes(table)
            try:
                report = functools.partial(progress, table, index) if progress else None
                backfill.build_index(self.store, tix, index, report)
            except Exception as e:
                tix.unready[index] = f"building it failed: {e}"
                raise
            del tix.unready[index]
        for spec in searches.build:
            assert engine is not None
            tix = self.table_indexes(spec.table)
            try:
                report = functools.partial(progress, spec.table, spec.name) if progress else None
                search_build.build_search_index(self.store, engine, spec, report)
            except Exception as e:
                tix.unready[spec.name] = f"building it failed: {e}"
                raise
            tix.unready.pop(spec.name, None)
        if changes:
            backfill.record_indexes(self.store, changes)
        if searches:
            search_build.record_search_indexes(self.store, searches)
        if stored is None or stored.value != schema_json:
            self.store.transact([Put(_SCHEMA_KEY, schema_json)])

    def adopt_schema(self, schema: SchemaDefinition | None) -> None:
        """Serve `schema` without pushing it (a Lambda after a deploy pushed
        it): nothing in the store changes. Indexes the store has not built
        for it stay unqueryable, with a message that says to push."""
        wanted = (
            {t: {n: list(f) for n, f in d.indexes.items()} for t, d in schema.tables.items()}
            if schema is not None
            else {}
        )
        pending = backfill.plan_index_changes(self.store, wanted).build
        pending += [
            (spec.table, spec.name)
            for spec in search_build.plan_search_changes(
                self.store, search_build.wanted_search_indexes(schema)
            ).build
        ]
        with self._lock:
            self._schema = schema
            self._indexes = {}
            for table, index in pending:
                self.table_indexes(table).unready[index] = (
                    "the schema with this index was not pushed yet (deploy pushes it)"
                )

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Wait for running mutations to finish and hold new ones back."""
        with self._gate:
            self._closed = True
            while self._active:
                self._gate.wait()
        try:
            yield
        finally:
            with self._gate:
                self._closed = False
                self._gate.notify_all()

    def _running(self) -> _Running:
        return _Running(self)

    def view(self, store: Store) -> Database:
        """This database read through another view of its store (a snapshot):
        same schema, same index state. For queries only."""
        other = Database(
            store,
            self._schema,
            clock=self._clock,
            random_bytes=self._random_bytes,
            max_attempts=self.max_attempts,
        )
        other._indexes = self._indexes
        return other

    def table_indexes(self, table: str) -> TableIndexes:
        tix = self._indexes.get(table)
        if tix is None:
            tix = TableIndexes(self._schema, table)
            self._adopt_index_set(tix)
            self._indexes[table] = tix
        return tix

    def _adopt_index_set(self, tix: TableIndexes) -> bool:
        """Take up the index set in force for `tix`'s table (what its shards
        hold, written by the last schema push) if it is not the one this
        process maintains. Returns whether anything changed."""
        (item,) = self.store.get([layout.table_shard_keys(tix.table)[0]])
        value = item.value if item is not None else b""
        if value == tix.shard_value:
            return False
        taken = tix.adopt(layout.parse_index_set(value), value)
        if taken:
            log.warning(
                'table "%s": maintaining indexes %s of a newer schema in force '
                "(this process runs an older one; redeploy it)",
                tix.table,
                ", ".join(taken),
            )
        return True

    def _transaction(self, read_only: bool) -> Transaction:
        return Transaction(
            self.store,
            self._schema,
            self.table_indexes,
            now_ms=self._clock() * 1000.0,
            random_bytes=self._random_bytes,
            read_only=read_only,
            table_of_tag=self._table_of_tag,
        )

    def _table_of_tag(self, tag: bytes) -> str | None:
        """The table whose ids carry `tag`: a schema table, or one that has
        had documents (as this process last read the table registry)."""
        if self._schema is not None:
            name = self._schema.table_of_tag(tag)
            if name is not None:
                return name
        known = self._known()
        if len(self._tag_names) != len(known):
            self._tag_names = {table_tag(t): t for t in known}
        return self._tag_names.get(tag)

    def _known(self) -> set[str]:
        if self._known_tables is None:
            self._known_tables = {it.key[1].decode() for it in scan_all(self.store, _TABLES)}
        return self._known_tables

    def _backoff(self, attempt: int) -> None:
        delay = min(self._backoff_cap, self._backoff_base * (2**attempt))
        self._sleep(self._jitter.uniform(0, delay))

    def still_valid(self, reads: ReadSet) -> bool:
        """Whether every version in the read set is still current, read
        through `Store.versions` (why that makes a query's result one
        snapshot: `commit.py`, "Validating a read-only transaction")."""
        keys = list(reads.versions)
        if not keys:
            return True
        try:
            current = self.store.versions(keys)
        except TransactionConflict:
            return False  # writes kept landing on these keys: re-run
        return all(v == reads.versions[k] for k, v in zip(keys, current, strict=True))

    def _run(self, tx: Transaction, fn: Callable[[Transaction], T]) -> T | _Stale:
        """`fn(tx)`; an error it raises reaches the caller only if it was raised
        from a consistent view, else the attempt is stale and must be re-run."""
        try:
            return fn(tx)
        except Exception:
            if self._reads_current(tx):
                raise
            return _STALE

    def _reads_current(self, tx: Transaction) -> bool:
        tx.record_point_reads()
        return self.still_valid(tx.reads)

    def query(
        self,
        fn: Callable[[Transaction], T],
        *,
        journal: list[str | None] | None = None,
        validate: bool = True,
    ) -> Outcome[T]:
        """Run `fn` read-only; the result reflects one consistent snapshot.
        `journal`: the end cursors of an earlier run's paginate calls.
        `validate=False`: a value is returned without its final check; the
        caller must show `still_valid(outcome.reads)` before trusting it (the
        stored sync checks once, after filing the read set, not twice)."""
        for attempt in range(self.max_attempts):
            tx = self._transaction(read_only=True)
            tx.journal_in = journal
            value = self._run(tx, fn)
            if not isinstance(value, _Stale):
                if not validate:
                    tx.record_point_reads()
                if not validate or self._reads_current(tx):
                    out = tx.journal_out or None
                    return Outcome(value, None, tx.reads, attempt + 1, None, out)
            self._note_conflict(attempt)
        raise OccConflictError(
            f"a query's reads kept changing under it for {self.max_attempts} attempts; "
            "narrow its index range or read less per call",
            attempts=self.max_attempts,
        )

    def mutation(self, fn: Callable[[Transaction], T]) -> Outcome[T]:
        """Run `fn` as a serializable transaction, re-running it on conflict."""
        with self._running():
            return self._mutation(fn)

    def _mutation(self, fn: Callable[[Transaction], T]) -> Outcome[T]:
        last: TransactionConflict | None = None
        tables: set[str] = set()
        for attempt in range(self.max_attempts):
            tx = self._transaction(read_only=False)
            value = self._run(tx, fn)
            if isinstance(value, _Stale):
                self._note_conflict(attempt)
                continue
            if not tx.writes:
                if self._reads_current(tx):
                    return Outcome(value, None, tx.reads, attempt + 1, None)
                self._note_conflict(attempt)
                continue
            if not tx.record_point_reads(compact=True):
                self._note_conflict(attempt)
                continue
            try:
                plan = plan_commit(
                    tx.reads,
                    tx.writes,
                    self.table_indexes,
                    max_items=self.store.max_transaction_items,
                )
            except TransactionTooLargeError:
                # Planned from what this attempt read: if that moved, the
                # size came from a stale view and a re-run may fit.
                if self.still_valid(tx.reads):
                    raise
                self._note_conflict(attempt)
                continue
            self._register_tables(tx)
            try:
                result = self.store.transact(plan.ops)
            except TransactionConflict as conflict:
                last = conflict
                tables = {w.table for w in tx.writes.writes.values()}
                if any(self._adopt_index_set(self.table_indexes(t)) for t in sorted(tables)):
                    continue  # a newer schema is in force: re-run under its indexes
                self._note_conflict(attempt)
                continue
            return Outcome(value, result.ts, tx.reads, attempt + 1, plan, writes=tx.writes)
        raise OccConflictError(
            _describe_conflict(last, tables, self.max_attempts),
            attempts=self.max_attempts,
            tables=sorted(tables),
        )

    def tables(self) -> list[str]:
        """Every table that ever had a document written, and the schema's."""
        names = {it.key[1].decode() for it in scan_all(self.store, _TABLES)}
        if self._schema is not None:
            names |= set(self._schema.tables)
        return sorted(names)

    def _register_tables(self, tx: Transaction) -> None:
        """Record tables receiving their first documents (in `m:tables`), in a
        write of its own before the commit: a registered table that stays
        empty is harmless, and the commit's item count is untouched."""
        new = {w.table for w in tx.writes.writes.values() if w.new is not None}
        new -= self._known()
        if new:
            self.store.transact([Put((_TABLES, t.encode()), b"") for t in sorted(new)])
            self._known().update(new)

    def _note_conflict(self, attempt: int) -> None:
        with self._lock:
            self.conflicts += 1
        if attempt + 1 < self.max_attempts:
            self._backoff(attempt)


class _Running:
    """A mutation in progress (`Database._running`): counted so that a schema
    push can wait for none to run; nested calls pass a closed gate. A class,
    not a generator: every mutation enters it."""

    __slots__ = ("_db", "_nested")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._nested = 0

    def __enter__(self) -> None:
        db = self._db
        nested = self._nested = getattr(db._local, "depth", 0)
        with db._gate:
            while db._closed and not nested:
                db._gate.wait()
            db._active += 1
        db._local.depth = nested + 1

    def __exit__(self, *exc: object) -> None:
        db = self._db
        db._local.depth = self._nested
        with db._gate:
            db._active -= 1
            if db._closed or db._active == 0:
                db._gate.notify_all()


_TABLES = "m:tables"
"""One item per table that has had documents: what export enumerates."""

_SCHEMA_KEY: Key = ("m:schema", b"")
"""The schema last put in force (its JSON), so an unchanged schema is not
checked against every document again (each dev server start, each reload)."""


def _put_index_set(store: Store, table: str, indexes: dict[str, list[str]]) -> None:
    """Write the index set in force into every shard of `table` (one
    transaction), unless they hold it already."""
    value = layout.index_set_value(indexes)
    keys = layout.table_shard_keys(table)
    if all((it.value if it else b"") == value for it in store.get(keys)):
        return
    store.transact([Put(k, value) for k in keys])


def _schema_bytes(schema: SchemaDefinition | None) -> bytes:
    if schema is None:
        return b"null"
    return json.dumps(schema.to_json(), sort_keys=True, separators=(",", ":")).encode()


def _describe_key(key: Key) -> str:
    pk = key[0]
    doc_id = layout.id_from_doc_key(key)
    if doc_id is not None:
        return f"document {doc_id}"
    if pk.startswith("v:"):
        return f'table "{pk[2:]}"'
    if pk.startswith("f:"):
        table, _, fld = pk[2:].partition(":")
        return f'table "{table}" (index range on field "{fld}")'
    return pk


def _describe_conflict(last: TransactionConflict | None, tables: set[str], attempts: int) -> str:
    what = ""
    if last is not None and last.keys:
        what = ", ".join(sorted({_describe_key(k) for k in last.keys}))
    elif tables:
        what = ", ".join(f'table "{t}"' for t in sorted(tables))
    return (
        f"this mutation conflicted with concurrent writes on every one of {attempts} attempts"
        + (f"; contended: {what}" if what else "")
        + ". Reduce contention: spread writes over more documents (e.g. shard a counter), "
        "or read narrower index ranges so fewer writes overlap."
    )
