"""Turn a transaction's read and write sets into one `Store.transact` call.

Past 100 items DynamoDB cannot apply a commit in one native transaction;
`runtime/store/dynamodb_large.py` keeps the same contract by locks and one
commit record. Why it stays serializable (the protocol's steps are there):
- every op of the plan is locked under the very condition the one-call path
  would check (a write's expected version, a read check's version, a range
  version), and nobody commits over a lock (small commits require
  `attribute_not_exists(lk)`), so once every lock is held, every expectation
  holds until the locks go: as if the whole plan were one native transaction
  evaluated at the commit point;
- the commit point is one conditional write (the record pending ->
  committed); before it every reader sees the old state (a lock changes
  neither value nor version), after it every reader rolls the key forward
  before using it, so no reader sees part of the commit, and a read
  validated before the flip that the commit changes fails its re-validation;
- a committer that dies anywhere leaves the record with a deadline: whoever
  meets a lock rolls it forward (committed) or, past the deadline, aborts and
  rolls it back; every apply is conditioned on the lock, so it happens once.
Cost: a crashed committer's keys are blocked for writers until its deadline
(LARGE_COMMIT_DEADLINE_SECONDS); small commits pay only the extra condition.

A commit of any size is one `transact` on a store whose
`max_transaction_items` is None (SQLite; DynamoDB past 100 items by its
protocol); its item count is its cost on DynamoDB, which the call log shows
for a commit past TRANSACTION_ITEMS (`CommitPlan.large`).

Items per commit (each is one DynamoDB transaction item):
- each document written: 1 (plus 1 per extra 350 KB chunk of a large one),
  its expectation being the version it was read at (0 for an insert);
- each index entry that changes: 1 delete of the old key + 1 put of the new
  (an insert puts one entry per index, `by_creation_time` included; a patch
  that keeps the indexed values changes none);
- range versions bumped: the table shard of each written document (on the
  condition that it holds the table's index set this process maintains:
  `layout.index_set_value`, no extra item), and the field version (old and
  new value) of each distinct first field of the table's user indexes;
- search entries (a document whose search field or filter values changed):
  none: SQLite writes them in the same transaction, DynamoDB leaves them to
  the stream (OpenSearch);
- read checks not merged into a write: documents read by id, and the range
  versions of index ranges read (1 with an equality on an index's first
  field, else one per table shard, 8). A table from which more than 8
  documents were read by id is checked through its 8 shards instead
  (`Transaction.record_point_reads`), so reads by id never exhaust the cap.

Common shapes (printed by `bench/database.py`):
- insert one document into a table with two one-field indexes:
  1 document + 3 index entries + 1 table shard + 2 field versions = 7;
- patch that keeps the indexed values, same table: 1 + 0 + 1 + 2 = 4;
- read a 100-document range by equality on an index's first field, then
  insert one into it: 1 range check (merged with the bumped field version)
  + 7 = 7;
- read a whole table (`collect()` without an index) then insert one:
  8 shard checks, one merged with the bumped shard, + 6 = 14.

Validating a read-only transaction (a query; a mutation that wrote nothing or
raised): there is no commit to check the reads, so `Database.still_valid`
re-reads every version it relied on (`Store.versions`) after the run, and
re-runs if any moved. Why a passing check makes the result one snapshot:
- Versions never repeat for a key (they grow, and a re-created id starts
  past its old life: `Put.recreate`), so a key found at the version it was
  read at was not written in between.
- The re-read must see one instant at which no commit is half applied. On
  DynamoDB, Query and BatchGetItem are only read-committed against
  TransactWriteItems: a BatchGetItem may return one item of a commit after
  it and another before it (the commit applies item by item). If the run
  read A after commit T and B before it, a BatchGetItem re-read can see the
  same torn pair and pass. So the re-read is a TransactGetItems, which is
  serializable against TransactWriteItems: it sees all of T or none of it
  (a T in progress cancels it, and it is retried). It then sees A at T's
  version and B at its new one: the check fails.
- Past 100 keys the re-read takes several TransactGetItems, V1 first, each
  later than the last. For a key k re-read at Vj, it was read at r_k before
  V1 began and found unchanged at Vj; its version at V1 lies between
  (versions only grow), so it is the one read. So every key held, at V1,
  the version the run read: the run saw the state at V1.
On SQLite the re-read runs under the store's lock, where no commit is ever
half applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.limits import TRANSACTION_BYTES, TRANSACTION_ITEMS, VALUE_CHUNK_BYTES
from runtime.store.port import Bump, Check, Delete, Key, Op, Put, SearchWrite, search_write

from . import layout
from .errors import TransactionTooLargeError
from .indexes import TableIndexes, field_value
from .readwrite import ReadSet, WriteSet
from .search import search_changes

__all__ = ["CommitPlan", "plan_commit"]


@dataclass
class CommitPlan:
    ops: list[Op]
    items: int
    """The commit's cost in DynamoDB items (chunks of large values included)."""
    bytes: int
    breakdown: dict[str, int] = field(default_factory=dict)

    @property
    def large(self) -> bool:
        """Past one native DynamoDB transaction (TRANSACTION_ITEMS): DynamoDB
        commits it by the large-commit protocol, several calls per 100 items."""
        return self.items > TRANSACTION_ITEMS


def _chunks(value: bytes) -> int:
    return max(1, -(-len(value) // VALUE_CHUNK_BYTES))


def plan_commit(
    reads: ReadSet,
    writes: WriteSet,
    indexes: Callable[[str], TableIndexes],
    *,
    max_items: int | None = TRANSACTION_ITEMS,
) -> CommitPlan:
    """The ops of one `Store.transact`, and their cost.

    `max_items` is the store's `max_transaction_items`: None when the store
    commits any number of ops atomically (SQLite; DynamoDB by its large-commit
    protocol), and then nothing is refused here: Convex's own limits
    (DOCUMENTS_WRITTEN, BYTES_WRITTEN) were enforced as the mutation wrote.
    A number is a store that carries at most one native transaction: past
    it, or past TRANSACTION_BYTES, the commit is refused with a
    TransactionTooLargeError that says how to split it."""
    ops: dict[Key, Op] = {}
    counts = {"documents": 0, "index_entries": 0, "range_versions": 0, "read_checks": 0}
    size = 0  # bytes of the items' values here, their keys at the end (search writes are no items)
    extra_chunks = 0
    search = 0
    for doc_id, w in writes.writes.items():
        if w.old is None and w.new is None:
            continue  # inserted and deleted in one transaction
        dkey = layout.doc_key(doc_id)
        if w.new_bytes is not None:
            recreate = w.recreate and w.old_version == 0
            ops[dkey] = Put(dkey, w.new_bytes, expect=w.old_version, feed=True, recreate=recreate)
            size += len(w.new_bytes)
            extra_chunks += _chunks(w.new_bytes) - 1
        else:
            ops[dkey] = Delete(dkey, expect=w.old_version, feed=True)
        counts["documents"] += 1
        tix = indexes(w.table)
        id_bytes = doc_id.encode()
        for spec in tix.specs:
            old_key = spec.key(w.old) if w.old is not None else None
            new_key = w.new_keys[spec.name] if w.new_keys is not None else None
            if old_key == new_key:
                continue
            if old_key is not None:
                ops[old_key] = Delete(old_key)
                counts["index_entries"] += 1
            if new_key is not None:
                ops[new_key] = Put(new_key, id_bytes)
                counts["index_entries"] += 1
                size += len(new_key[1]) + len(id_bytes)
        if tix.search_specs:
            for entry in search_changes(tix.search_specs, doc_id, w.old, w.new, 0):
                sw = search_write(entry)
                ops[sw.key] = sw
                search += 1
        # The table shard is bumped only if it holds the index set this
        # process maintains (a newer schema in force fails the commit).
        shard = layout.table_shard_key(w.table, doc_id)
        if shard not in ops:
            ops[shard] = Bump(shard, value=tix.shard_value)
            counts["range_versions"] += 1
        for f in tix.first_fields:
            for doc in (w.old, w.new):
                if doc is not None:
                    b = layout.field_version_key(w.table, f, field_value(doc, f))
                    if b not in ops:
                        ops[b] = Bump(b)
                        counts["range_versions"] += 1
    for key, value in writes.system.items():
        if value is None:
            ops[key] = Delete(key)
        else:
            ops[key] = Put(key, value)
            size += len(value)
        counts["system"] = counts.get("system", 0) + 1
    for key, version in reads.versions.items():
        op = ops.get(key)
        if op is None:
            ops[key] = Check(key, version)
            counts["read_checks"] += 1
        elif isinstance(op, Bump):
            ops[key] = Bump(key, expect=version, value=op.value)
        elif isinstance(op, Put | Delete) and op.expect != version:
            # A document read and then written: the expectation is the
            # version first read (they agree unless the store moved under
            # us, in which case the commit must fail; the older one ensures it).
            ops[key] = (
                Put(
                    key,
                    op.value,
                    expect=version,
                    feed=op.feed,
                    recreate=op.recreate and not version,
                )
                if isinstance(op, Put)
                else Delete(key, expect=version, feed=op.feed)
            )
    if search:
        counts["search_entries"] = search
    items = len(ops) - search + extra_chunks
    if search:
        size += sum(len(k[0]) + len(k[1]) for k, op in ops.items() if type(op) is not SearchWrite)
    else:
        size += sum(len(pk) + len(sk) for pk, sk in ops)
    plan = CommitPlan(list(ops.values()), items, size, counts)
    if max_items is not None and (items > max_items or size > TRANSACTION_BYTES):
        raise TransactionTooLargeError(
            f"this mutation needs {items} transaction items ({size:,} bytes): "
            f"{counts['documents']} documents written, {counts['index_entries']} index entries "
            f"changed, {counts['range_versions']} range versions bumped, "
            f"{counts['read_checks']} read checks"
            + (f", {extra_chunks} extra chunks of large documents" if extra_chunks else "")
            + f". One transaction carries at most {max_items} items and "
            f"{TRANSACTION_BYTES:,} bytes (TRANSACTION_ITEMS, TRANSACTION_BYTES, DynamoDB's "
            "caps). Split the work over several mutations (e.g. schedule the rest), or read "
            "fewer documents by id.",
            items=items,
            bytes=size,
            **counts,
        )
    return plan
