"""One attempt of a query or mutation: `ctx.db`.

Reads go to the store (recording the read set) after consulting the write
set; writes are validated at once (so the error points at the call) and
buffered until commit. A transaction is single-use: the runner (`database.py`)
makes a fresh one for every attempt.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator, Iterator
from typing import Any

from runtime.errors import InvalidIdError
from runtime.limits import (
    BYTES_READ_PER_FUNCTION,
    BYTES_WRITTEN_PER_MUTATION,
    DOCUMENT_BYTES,
    DOCUMENTS_READ_PER_FUNCTION,
    DOCUMENTS_SCANNED_PER_FUNCTION,
    DOCUMENTS_WRITTEN_PER_MUTATION,
    SEARCH_RESULTS,
    TABLE_VERSION_SHARDS,
    check_limit,
)
from runtime.schema import SchemaDefinition
from runtime.search.bm25 import term_frequencies
from runtime.search.text import SearchTerms
from runtime.store.port import Key, Store
from runtime.values import UNDEFINED, check_table_name, is_id_for, make_id, parse_id, successor

from . import layout
from .documents import SYSTEM_FIELDS, check_document
from .errors import (
    DocumentNotFoundError,
    InvalidDocumentError,
    InvalidQueryError,
    ReadOnlyError,
    TableNotInSchemaError,
)
from .index_range import KeyRange
from .indexes import IndexSpec, TableIndexes
from .readwrite import IndexRange, PendingWrite, ReadSet, WriteSet
from .search import SearchIndexSpec, matches, rank_key

__all__ = ["Transaction"]

_PAGE_MAX = 100  # DynamoDB's BatchGetItem carries at most 100 keys


class Transaction:
    def __init__(
        self,
        store: Store,
        schema: SchemaDefinition | None,
        indexes: Callable[[str], TableIndexes],
        *,
        now_ms: float,
        random_bytes: Callable[[int], bytes],
        read_only: bool,
        table_of_tag: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self._store = store
        self._table_of_tag = table_of_tag or (lambda tag: None)
        """The table an id's tag names, when it is known (for absent ids)."""
        self._schema = schema
        self._indexes = indexes
        self._now_ms = now_ms
        self._random_bytes = random_bytes
        self.read_only = read_only
        self.reads = ReadSet()
        self.writes = WriteSet()
        self._cache: dict[str, tuple[bytes | None, int]] = {}
        """id -> (stored value or None when absent, version) as first read."""
        self._inserts = 0
        self._write_generation = 0
        """Bumped by every staged write (invalidates `_pending_cache`)."""
        self._pending_cache: dict[str, tuple[int, list[tuple[bytes, str]]]] = {}
        self.journal_in: list[str | None] | None = None
        """End cursors of this query's paginate calls in an earlier run (a
        live query's journal), in call order; None entries are open ends."""
        self.journal_out: list[str | None] = []
        """The end cursors of this run's paginate calls."""
        self.documents_scanned = 0
        self.documents_read = 0
        self.bytes_read = 0

    @property
    def schema(self) -> SchemaDefinition | None:
        """The schema this transaction validates against."""
        return self._schema

    # ---- public API: reads -------------------------------------------------

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """The document with this id, or None. Raises INVALID_ID for a string
        that is not an id."""
        if not isinstance(doc_id, str) or parse_id(doc_id) is None:
            raise InvalidIdError(f"db.get: {doc_id!r} is not a document id")
        w = self.writes.get(doc_id)
        if w is not None:
            return self._fresh(w.new_bytes) if w.new_bytes is not None else None
        self.reads.documents.add(doc_id)
        value = self._load([doc_id])[doc_id][0]
        return self._fresh(value) if value is not None else None

    def normalize_id(self, table: str, doc_id: str) -> str | None:
        """`doc_id` if it is an id of `table`, else None."""
        return doc_id if is_id_for(table, doc_id) else None

    def query(self, table: str, *, system: bool = False) -> Any:
        """`system`: `table` may be a system table ("_storage"; `ctx.db.system`)."""
        from .query import QueryInitializer

        self._check_table(table, writing=False, system=system)
        return QueryInitializer(self, table)

    # ---- public API: writes ------------------------------------------------

    def insert(self, table: str, document: dict[str, Any]) -> str:
        self._writable("insert")
        self._check_table(table, writing=True)
        check_document(document)
        document = self._validate_schema(table, document)
        doc_id = make_id(table, self._random_bytes(16))
        # Inserts of one transaction get increasing creation times, so
        # `by_creation_time` keeps their order.
        doc = {"_id": doc_id, "_creationTime": self._now_ms + self._inserts * 0.001, **document}
        self._inserts += 1
        self._stage(doc_id, table, None, 0, doc)
        return doc_id

    def restore(self, table: str, document: dict[str, Any]) -> str:
        """Insert a document that keeps its `_id` and `_creationTime` (snapshot
        import; not part of `ctx.db`'s documented API). The id must belong to
        `table` and be absent."""
        self._writable("restore")
        self._check_table(table, writing=True)
        doc_id = document.get("_id")
        created = document.get("_creationTime")
        if not isinstance(doc_id, str) or not is_id_for(table, doc_id):
            raise InvalidIdError(f'_id {doc_id!r} is not an id of table "{table}"')
        if type(created) is not float or not created > 0:
            raise InvalidDocumentError(
                f"_creationTime must be a positive float64 (ms since the epoch), got {created!r}"
            )
        user = {k: x for k, x in document.items() if k not in ("_id", "_creationTime")}
        check_document(user)
        user = self._validate_schema(table, user)
        self._stage_new(doc_id, table, {"_id": doc_id, "_creationTime": created, **user})
        # The id may have lived before (import --replace, its undo): its
        # version must not restart at 1, or a transaction that read the old
        # document would pass its check (ABA).
        self.writes.writes[doc_id].recreate = True
        return doc_id

    def patch(self, doc_id: str, fields: dict[str, Any]) -> None:
        """Shallow-merge `fields` into the document; a value of UNDEFINED removes the field."""
        self._writable("patch")
        if not isinstance(fields, dict):
            raise InvalidDocumentError(
                f"db.patch: fields must be a dict, got {type(fields).__name__}"
            )
        table, old, version = self._existing(doc_id, "patch")
        new = dict(old) if old is not None else {}
        for k, val in fields.items():
            if k in SYSTEM_FIELDS:
                if val is not UNDEFINED and val != new.get(k):
                    raise InvalidDocumentError(f"db.patch: the system field {k} cannot be changed")
                continue
            if val is UNDEFINED:
                new.pop(k, None)
            else:
                new[k] = val
        self._replace_checked(doc_id, table, old, version, new)

    def replace(self, doc_id: str, document: dict[str, Any]) -> None:
        self._writable("replace")
        if not isinstance(document, dict):
            raise InvalidDocumentError(
                f"db.replace: the document must be a dict, got {type(document).__name__}"
            )
        table, old, version = self._existing(doc_id, "replace")
        assert old is not None
        new = {k: old[k] for k in SYSTEM_FIELDS}
        for k, val in document.items():
            if k in SYSTEM_FIELDS:
                if val != old[k]:
                    raise InvalidDocumentError(
                        f"db.replace: the system field {k} cannot be changed"
                    )
                continue
            new[k] = val
        self._replace_checked(doc_id, table, old, version, new)

    def delete(self, doc_id: str) -> None:
        self._writable("delete")
        table, old, version = self._existing(doc_id, "delete")
        w = self.writes.get(doc_id)
        self._stage(doc_id, table, w.old if w else old, version, None)

    # ---- platform records (not part of ctx.db) ---------------------------

    def system_get(self, key: Key) -> bytes | None:
        """Read a platform record; its version joins the read set, so a
        concurrent write of it is a conflict. A record this transaction
        wrote or deleted reads as written."""
        if key in self.writes.system:
            return self.writes.system[key]
        (item,) = self._store.get([key])
        self.reads.record(key, item.version if item is not None else 0)
        return item.value if item is not None else None

    def system_put(self, key: Key, value: bytes) -> None:
        """Write a platform record in this transaction's commit."""
        self._writable("system_put")
        self.writes.system[key] = value

    def system_delete_record(self, key: Key) -> None:
        """Delete a platform record in this transaction's commit (a no-op if
        it is absent; if it was read here, the read's version is checked)."""
        self._writable("system_delete_record")
        self.writes.system[key] = None

    # ---- system tables (the platform's documents: `_storage`, ...) ---------

    def system_insert(
        self,
        table: str,
        fields: dict[str, Any],
        random16: bytes,
        *,
        creation_time: float | None = None,
    ) -> str:
        """Insert a document into a system table (`ctx.storage` writes
        `_storage`); its id is made from `random16`, so the platform can
        derive the id from a key it already holds (a blob's). Not schema
        checked: the platform owns the shape of its tables. `creation_time`:
        kept from a snapshot (import restores it), else now."""
        self._writable("system_insert")
        self._check_system_table(table)
        check_document(fields)
        doc_id = make_id(table, random16)
        created = self._now_ms + self._inserts * 0.001 if creation_time is None else creation_time
        version = self._stage_new(
            doc_id, table, {"_id": doc_id, "_creationTime": created, **fields}
        )
        self._inserts += 1
        self.writes.writes[doc_id].recreate = version > 0
        return doc_id

    def _stage_new(self, doc_id: str, table: str, doc: dict[str, Any]) -> int:
        """Stage `doc` under an id that must be absent (as read, or as this
        transaction left it); returns the version the id had (> 0: it lived
        before and was deleted)."""
        w = self.writes.get(doc_id)
        if w is not None:
            exists, version, old = w.new is not None, w.old_version, w.old
        else:
            self.reads.documents.add(doc_id)
            value, version = self._load([doc_id])[doc_id]
            exists, old = value is not None, None
        if exists:
            raise InvalidDocumentError(f"document {doc_id} already exists", id=doc_id)
        self._stage(doc_id, table, old, version, doc)
        return version

    def system_replace(self, doc_id: str, fields: dict[str, Any]) -> None:
        """Replace a system table document's fields, keeping `_id` and
        `_creationTime` (a scheduled job's state change). Not schema checked,
        like `system_insert`."""
        self._writable("system_replace")
        table, old, version = self._existing(doc_id, "replace", system=True)
        self._check_system_table(table)
        assert old is not None
        user = {k: v for k, v in fields.items() if k not in SYSTEM_FIELDS}
        check_document(user)
        w = self.writes.get(doc_id)
        new = {k: old[k] for k in SYSTEM_FIELDS} | user
        self._stage(doc_id, table, w.old if w is not None else old, version, new)

    def system_delete(self, doc_id: str) -> dict[str, Any]:
        """Delete a document of a system table; returns it as it was."""
        self._writable("system_delete")
        table, old, version = self._existing(doc_id, "delete", system=True)
        self._check_system_table(table)
        w = self.writes.get(doc_id)
        self._stage(doc_id, table, w.old if w else old, version, None)
        return dict(old or {})

    @staticmethod
    def _check_system_table(table: str) -> None:
        if not (isinstance(table, str) and table.startswith("_")):
            raise InvalidDocumentError(f"{table!r} is not a system table")
        check_table_name(table, system_ok=True)

    # ---- scans (used by query.py) -----------------------------------------

    def table_indexes(self, table: str) -> TableIndexes:
        return self._indexes(table)

    def scan(
        self, spec: IndexSpec, rng: KeyRange, *, reverse: bool, page_hint: int
    ) -> Generator[tuple[bytes, dict[str, Any]], None, None]:
        """(sort key, document) over [rng.lo, rng.hi) in index order, merged
        with this transaction's own writes. Records the range version it
        relies on before reading, and the range it consumed when closed.

        The merge reflects writes made while the scan is being consumed (a
        mutation that patches or inserts while it iterates): each step takes
        the next entry past the cursor among the stored ones and the write
        set as it is then. A document written during the scan is yielded at
        its new position if that is still ahead of the cursor (an insert
        ahead is yielded, a delete ahead is not), and no document is yielded
        twice by one scan (a patch that moves one ahead of the cursor does
        not bring it back). A read-only transaction has no writes to merge
        (`_scan_stored`)."""
        self._record_range_version(spec, rng)
        if self.read_only:
            return (yield from self._scan_stored(spec, rng, reverse, page_hint))
        lo, hi = rng.lo, rng.hi
        last: bytes | None = None
        yielded: set[str] = set()
        exhausted = False
        try:
            stored = self._stored_entries(spec.partition, lo, hi, reverse, page_hint)
            # Fetched only when needed: a consumer that stops after n entries
            # must not make the store read a page beyond them.
            nxt: tuple[bytes, str, bytes | None] | None = None
            stored_done = False
            while True:
                if nxt is None and not stored_done:
                    nxt = next(stored, None)
                    stored_done = nxt is None
                if nxt is not None and nxt[1] in self.writes.writes:
                    nxt = None  # written since it was fetched: the write set has it
                    continue
                p = self._next_pending(spec, lo, hi, last, reverse, yielded)
                if nxt is None and p is None:
                    exhausted = True
                    return
                take_pending = nxt is None or (
                    p is not None and ((p[0] > nxt[0]) if reverse else (p[0] < nxt[0]))
                )
                self._count_scanned()
                if take_pending:
                    assert p is not None
                    key, doc_id = p
                    w = self.writes.writes[doc_id]
                    assert w.new_bytes is not None
                    value: bytes | None = w.new_bytes
                else:
                    assert nxt is not None
                    key, doc_id, value = nxt
                    nxt = None
                last = key
                if value is not None and doc_id not in yielded:
                    yielded.add(doc_id)
                    yield key, self._fresh(value)
        finally:
            self._record_consumed(spec, rng, last, exhausted, reverse)

    def _scan_stored(
        self, spec: IndexSpec, rng: KeyRange, reverse: bool, page_hint: int
    ) -> Generator[tuple[bytes, dict[str, Any]], None, None]:
        """`scan` for a transaction that cannot write: the stored entries alone,
        in the store's order (an index holds one entry per document)."""
        last: bytes | None = None
        exhausted = False
        try:
            for key, _, value in self._stored_entries(
                spec.partition, rng.lo, rng.hi, reverse, page_hint
            ):
                self._count_scanned()
                last = key
                if value is not None:
                    yield key, self._fresh(value)
            exhausted = True
        finally:
            self._record_consumed(spec, rng, last, exhausted, reverse)

    def _count_scanned(self) -> None:
        """One more index entry met by a scan (DOCUMENTS_SCANNED)."""
        self.documents_scanned += 1
        check_limit(
            "DOCUMENTS_SCANNED",
            self.documents_scanned,
            DOCUMENTS_SCANNED_PER_FUNCTION,
            "Use with_index with a narrower range, or paginate.",
        )

    def _record_consumed(
        self, spec: IndexSpec, rng: KeyRange, last: bytes | None, exhausted: bool, reverse: bool
    ) -> None:
        """Add to the read set the part of `rng` a scan consumed: all of it
        when it ran out, up to and including `last` when its consumer
        stopped, nothing when it stopped before the first entry."""
        lo, hi = rng.lo, rng.hi
        if exhausted or last is None:
            r_lo, r_hi = lo, hi
            if not exhausted:  # closed before reading anything
                r_lo, r_hi = lo, lo
        elif reverse:
            r_lo, r_hi = last, hi
        else:
            r_lo, r_hi = lo, successor(last)
        self.reads.ranges.append(IndexRange(spec.table, spec.name, r_lo, r_hi))

    def _next_pending(
        self,
        spec: IndexSpec,
        lo: bytes,
        hi: bytes | None,
        last: bytes | None,
        reverse: bool,
        yielded: set[str],
    ) -> tuple[bytes, str] | None:
        """The write-set entry of `spec` in [lo, hi) next past `last` in scan
        order, skipping documents already yielded."""
        entries = self._pending_entries(spec)
        if reverse:
            i = len(entries) if last is None else bisect.bisect_left(entries, (last, ""))
            while i > 0:
                i -= 1
                key, doc_id = entries[i]
                if hi is not None and key >= hi:
                    continue
                if key < lo:
                    return None
                if doc_id not in yielded:
                    return key, doc_id
            return None
        i = (
            bisect.bisect_left(entries, (lo, ""))
            if last is None
            else bisect.bisect_right(entries, (last, "\uffff"))
        )
        for key, doc_id in entries[i:]:
            if hi is not None and key >= hi:
                return None
            if key >= lo and doc_id not in yielded:
                return key, doc_id
        return None

    def _pending_entries(self, spec: IndexSpec) -> list[tuple[bytes, str]]:
        """(key in `spec`, id) of every written document that is in it, sorted;
        cached until the write set changes."""
        cached = self._pending_cache.get(spec.name)
        if cached is not None and cached[0] == self._write_generation:
            return cached[1]
        entries = sorted(
            (w.new_keys[spec.name][1], doc_id)
            for doc_id, w in self.writes.writes.items()
            if w.table == spec.table and w.new_keys is not None
        )
        self._pending_cache[spec.name] = (self._write_generation, entries)
        return entries

    def _stored_entries(
        self, partition: str, lo: bytes, hi: bytes | None, reverse: bool, page_hint: int
    ) -> Iterator[tuple[bytes, str, bytes | None]]:
        """(sort key, id, stored document or None) from the store, skipping
        documents this transaction wrote (the write set has their truth)."""
        size = max(1, min(page_hint, _PAGE_MAX))
        while True:
            items = self._store.scan(partition, lo, hi, reverse=reverse, limit=size)
            ids = [it.value.decode() for it in items]
            wanted = [i for i in ids if i not in self.writes.writes]
            docs = self._load(wanted, by_id=False)
            for it, doc_id in zip(items, ids, strict=True):
                if doc_id in self.writes.writes:
                    continue
                yield it.key[1], doc_id, docs[doc_id][0]
            if len(items) < size:
                return
            last = items[-1].key[1]
            if reverse:
                hi = last
            else:
                lo = successor(last)
            size = min(_PAGE_MAX, size * 2)

    def search(
        self,
        spec: SearchIndexSpec,
        terms: SearchTerms,
        filters: dict[int, Any],
        limit: int,
    ) -> tuple[list[tuple[bytes, dict[str, Any]]], bool]:
        """The best `limit` results of a search, as (rank key, document) in
        relevance order, and whether there are no more (the engine proposed
        fewer than `limit`).

        The engine proposes candidates; each is re-read through this
        transaction and re-checked (`search.matches`), so a deleted or
        changed document is dropped, and the transaction's own writes to the
        table are matched and scored here with the engine's statistics. The
        range versions and the watch range are recorded first, so a write
        that could change the result either is seen or fails this
        transaction's validation (and re-runs a live query)."""
        engine = getattr(self._store, "search", None)
        if engine is None:
            raise InvalidQueryError(
                f'search index "{spec.name}" of table "{spec.table}": no search engine serves '
                "this deployment. On AWS, deploy with the OpenSearchEndpoint parameter set "
                "(an OpenSearch domain's endpoint); a view of the past has no search."
            )
        why = self._indexes(spec.table).unready.get(spec.name)
        if why is not None:
            raise InvalidQueryError(
                f'search index "{spec.name}" of table "{spec.table}" cannot be queried yet: {why}'
            )
        self._record_search_version(spec, filters)
        watch = spec.watch_range(filters)
        if watch not in self.reads.ranges:
            self.reads.ranges.append(watch)
        if terms.empty:
            return [], True
        pending = [
            (doc_id, w)
            for doc_id, w in self.writes.writes.items()
            if w.table == spec.table and (w.old is not None or w.new is not None)
        ]
        ask = min(SEARCH_RESULTS, limit + len(pending))
        found = engine.candidates(spec.index_key, terms, filters, ask)
        stored = [c for c in found if c.doc_id not in self.writes.writes]
        docs = self._load([c.doc_id for c in stored], by_id=False)
        rows: list[tuple[bytes, dict[str, Any]]] = []
        for c in stored:
            value = docs[c.doc_id][0]
            if value is None:
                continue  # deleted since the engine indexed it
            doc = self._fresh(value)
            if matches(spec, doc, terms, filters) is not None:
                rows.append((rank_key(c.score, doc["_creationTime"], c.doc_id), doc))
        stats = None
        for doc_id, w in pending:
            if w.new_bytes is None:
                continue
            doc = self._fresh(w.new_bytes)
            words = matches(spec, doc, terms, filters)
            if words is None:
                continue
            if stats is None:
                stats = engine.stats(spec.index_key, terms)
            score = engine.score(term_frequencies(words, terms), len(words), stats)
            rows.append((rank_key(score, doc["_creationTime"], doc_id), doc))
        self.documents_scanned += len(found) + len(pending)
        check_limit(
            "DOCUMENTS_SCANNED",
            self.documents_scanned,
            DOCUMENTS_SCANNED_PER_FUNCTION,
            "Search with more specific terms or filters, or take fewer results.",
        )
        rows.sort(key=lambda row: row[0])
        return rows[:limit], len(found) < ask

    def _record_search_version(self, spec: SearchIndexSpec, filters: dict[int, Any]) -> None:
        """The range versions every write that could change this search bumps:
        the first filter's field version, or the table's shards."""
        if filters:
            i = min(filters)
            keys = [layout.field_version_key(spec.table, spec.filter_fields[i], filters[i])]
        else:
            keys = layout.table_shard_keys(spec.table)
        self._record_versions(keys)

    # ---- internals ----------------------------------------------------------

    def _record_range_version(self, spec: IndexSpec, rng: KeyRange) -> None:
        if spec.is_user_index and rng.equalities:
            keys = [layout.field_version_key(spec.table, spec.fields[0], rng.equalities[0])]
        else:
            keys = layout.table_shard_keys(spec.table)
        self._record_versions(keys)

    def _record_versions(self, keys: list[Key]) -> None:
        """Read and record the versions of the range-version `keys` not yet in
        the read set (before reading what they guard)."""
        missing = [k for k in keys if k not in self.reads.versions]
        if missing:
            for k, item in zip(missing, self._store.get(missing), strict=True):
                self.reads.record(k, item.version if item is not None else 0)

    def _load(self, ids: list[str], *, by_id: bool = True) -> dict[str, tuple[bytes | None, int]]:
        """Stored value and version per id, through the transaction's cache
        (repeatable reads); records each document's version in the read set."""
        out: dict[str, tuple[bytes | None, int]] = {}
        missing = []
        for i in ids:
            hit = self._cache.get(i)
            if hit is None:
                missing.append(i)
            else:
                out[i] = hit
        if missing:
            items = self._store.get([layout.doc_key(i) for i in missing])
            for i, item in zip(missing, items, strict=True):
                entry = (item.value, item.version) if item is not None else (None, 0)
                self._cache[i] = entry
                out[i] = entry
                if item is not None:
                    # Documents met in scans count as scanned (DOCUMENTS_SCANNED);
                    # this counts the ones read by id.
                    self.documents_read += by_id
                    self.bytes_read += len(item.value)
            check_limit(
                "DOCUMENTS_READ",
                self.documents_read,
                DOCUMENTS_READ_PER_FUNCTION,
                "Read fewer documents per call: use an index range or paginate.",
            )
            check_limit(
                "BYTES_READ",
                self.bytes_read,
                BYTES_READ_PER_FUNCTION,
                "Read less data per call: use an index range or paginate.",
            )
        return out

    def record_point_reads(self, *, compact: bool = False) -> bool:
        """Add the version of every document read by id to the read set.

        Index scans are covered by their range versions, so documents met
        only in scans are not checked. With `compact`, a table from which
        more documents were read by id than it has version shards gets its
        shard versions checked instead of one check per document (so reading
        500 documents by id costs 8 transaction items, not 500). That is
        sound because the shard versions are read first and the documents
        re-read after: each document is shown unchanged from its read until
        a moment after which the shards cover it. Returns False when a
        document moved meanwhile (the attempt must be re-run)."""
        by_table: dict[str, list[str]] = {}
        for doc_id in self.reads.documents:
            entry = self._cache.get(doc_id)
            if entry is None or doc_id in self.writes.writes:
                if entry is not None:
                    self.reads.record(layout.doc_key(doc_id), entry[1])
                continue
            value = entry[0]
            if value is not None:
                table = value.partition(b"\n")[0].decode()
            else:
                # An absent id folds into its table's shards like a present
                # one: creating it (insert, restore) bumps the shard its id
                # picks. An id of a table nobody knows keeps its own check.
                parsed = parse_id(doc_id)
                table = (self._table_of_tag(parsed[1]) if parsed else None) or ""
            by_table.setdefault(table, []).append(doc_id)
        for table, ids in by_table.items():
            if not compact or not table or len(ids) <= TABLE_VERSION_SHARDS:
                for doc_id in ids:
                    self.reads.record(layout.doc_key(doc_id), self._cache[doc_id][1])
                continue
            shards = [k for k in layout.table_shard_keys(table) if k not in self.reads.versions]
            if shards:
                for k, item in zip(shards, self._store.get(shards), strict=True):
                    self.reads.record(k, item.version if item is not None else 0)
            keys = [layout.doc_key(i) for i in ids]
            for doc_id, item in zip(ids, self._store.get(keys), strict=True):
                if (item.version if item is not None else 0) != self._cache[doc_id][1]:
                    return False
        return True

    def _fresh(self, value: bytes) -> dict[str, Any]:
        # A new object on every read: callers may mutate what they get.
        return layout.decode_document_body(value)

    def _existing(
        self, doc_id: str, op: str, *, system: bool = False
    ) -> tuple[str, dict[str, Any] | None, int]:
        if not isinstance(doc_id, str) or parse_id(doc_id) is None:
            raise InvalidIdError(f"db.{op}: {doc_id!r} is not a document id")
        w = self.writes.get(doc_id)
        if w is not None:
            if w.new is None:
                raise DocumentNotFoundError(
                    f"db.{op}: document {doc_id} was deleted in this mutation"
                )
            return w.table, w.new, w.old_version
        self.reads.documents.add(doc_id)
        value, version = self._load([doc_id])[doc_id]
        if value is None:
            raise DocumentNotFoundError(f"db.{op}: no document with id {doc_id}")
        stored = layout.decode_document(value)
        self._check_table(stored.table, writing=True, system=system)
        return stored.table, stored.doc, version

    def _replace_checked(
        self,
        doc_id: str,
        table: str,
        current: dict[str, Any] | None,
        version: int,
        new: dict[str, Any],
    ) -> None:
        """Validate `new` and stage it over `current` (what `_existing` gave)."""
        user = {k: v for k, v in new.items() if k not in SYSTEM_FIELDS}
        check_document(user)
        checked = self._validate_schema(table, user)
        if checked is not user:  # the same fields, numbers converted (see _validate_schema)
            new = {**new, **checked}
        w = self.writes.get(doc_id)
        # The staged `old` is always the document as stored before this transaction.
        self._stage(doc_id, table, w.old if w is not None else current, version, new)

    def _stage(
        self,
        doc_id: str,
        table: str,
        old: dict[str, Any] | None,
        old_version: int,
        new: dict[str, Any] | None,
    ) -> None:
        new_bytes = None
        new_keys = None
        if new is not None:
            new_bytes = layout.encode_document(table, new)
            if len(new_bytes) > DOCUMENT_BYTES:
                raise InvalidDocumentError(
                    f"document: {len(new_bytes):,} bytes, over the {DOCUMENT_BYTES:,}-byte "
                    "document limit (DOCUMENT_BYTES). Split it into several documents.",
                    limit="DOCUMENT_BYTES",
                )
            new_keys = {s.name: s.key(new) for s in self._indexes(table).specs}
        if doc_id not in self.writes.writes:
            self.writes.documents_written += 1
            check_limit(
                "DOCUMENTS_WRITTEN",
                self.writes.documents_written,
                DOCUMENTS_WRITTEN_PER_MUTATION,
                "Write fewer documents per mutation; schedule the rest in follow-up mutations.",
            )
        self.writes.bytes_written += len(new_bytes or b"")
        check_limit(
            "BYTES_WRITTEN",
            self.writes.bytes_written,
            BYTES_WRITTEN_PER_MUTATION,
            "Write less data per mutation; schedule the rest in follow-up mutations.",
        )
        prior = self.writes.writes.get(doc_id)
        self.writes.writes[doc_id] = PendingWrite(
            table, old, old_version, new, new_bytes, new_keys, prior is not None and prior.recreate
        )
        self._write_generation += 1

    def _writable(self, op: str) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"db.{op} in a query: queries are read-only; write from a mutation instead"
            )

    def _check_table(self, table: str, *, writing: bool, system: bool = False) -> None:
        if not isinstance(table, str):
            raise InvalidDocumentError(f"table names are strings, got {type(table).__name__}")
        check_table_name(table, system_ok=system)
        if system:
            return  # the platform's tables are not in the app's schema
        s = self._schema
        if s is not None and s.strict_table_name_types and s.table(table) is None:
            raise TableNotInSchemaError(
                f'table "{table}" is not in the schema. Add it to functions/schema.py, or pass '
                "strict_table_name_types=False to define_schema to allow tables outside it."
            )

    def _validate_schema(self, table: str, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` as it is to be stored: a Python `int` where the schema says
        `v.number()` becomes a float64 (SchemaDefinition.prepare_document),
        then the schema checks it."""
        if self._schema is None:
            return doc
        return self._schema.prepare_document(table, doc)
