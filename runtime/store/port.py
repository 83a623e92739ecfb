"""The storage port: the one small interface the database core talks to.

An ordered key-value store. Every item lives at a `Key` = (partition, sort):
the partition is a short string, the sort key is bytes compared bytewise.
Every item carries a version, a positive integer the store bumps on every
write; version 0 means "absent". Versions only ever grow for a key that is not
deleted. A key created anew starts at version 1, except a `Put` with
`recreate` (the core re-creating a deleted document id: snapshot import), whose
version starts at the commit timestamp: larger than any version the key's
earlier life reached (that would take more writes than nanoseconds passed), so
an unchanged version means an unchanged item (no ABA) across a re-creation too.

Operations (all strongly consistent):
- `get(keys)`: batch point read.
- `versions(keys)`: the current version of each key, read as one snapshot
  (a query's validation; DynamoDB: TransactGetItems, see
  `runtime/database/commit.py` on why that is sound and BatchGetItem is not).
- `scan(partition, lo, hi, reverse=, limit=)`: ordered range over one
  partition, `lo` inclusive, `hi` exclusive (None = unbounded). To resume a
  forward scan after key `k`, pass `lo = k + b"\\x00"`; a reverse one, `hi = k`.
- `transact(ops)`: atomically verify every expectation and apply every write,
  or apply nothing and raise `TransactionConflict` naming the keys whose
  expectation failed. A key appears at most once in `ops`: the caller merges a
  read check and a write of the same item into one write with an expectation
  (DynamoDB forbids two operations on one item in a transaction).
- `read_changes(after, limit)`: the change feed, every committed `Put`/`Delete`
  that was marked `feed=True`, in commit order per key, resumable from the
  returned position.

Adapters: `sqlite.py` (embedded default) and `dynamodb.py` (AWS). The same
conformance suite (`tests/conformance/`) runs against both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from runtime.search.port import SearchEntry

__all__ = [
    "RANGE_VERSION_PARTITIONS",
    "Bump",
    "Change",
    "ChangeBatch",
    "Check",
    "CommitResult",
    "Delete",
    "FeedTrimmed",
    "Item",
    "Key",
    "Op",
    "Put",
    "SearchWrite",
    "Store",
    "StoreError",
    "TransactionConflict",
    "ensure_one_op_per_key",
    "scan_all",
    "search_write",
    "without_search_writes",
]

Key = tuple[str, bytes]
"""(partition, sort key). Partitions are at most 1,024 UTF-8 bytes, sort keys at most 1,024 bytes."""

RANGE_VERSION_PARTITIONS = ("v:", "f:")
"""Partitions whose items are range versions (`runtime/database/layout.py`):
they exist to be bumped and checked by commits. Their versions only promise
to grow with every write and to stay put otherwise, not to count from 1: a
store with a single committer may keep them in memory (SQLite: each is the
timestamp of the last commit that wrote it; one never written since the
store opened reports the open timestamp). Their values (a table's index set)
are stored like any other item's."""


@dataclass(frozen=True, slots=True)
class Item:
    key: Key
    value: bytes
    version: int


@dataclass(frozen=True, slots=True)
class Check:
    """Verify that `key` is at `version` (0 = absent). Writes nothing."""

    key: Key
    version: int


@dataclass(frozen=True, slots=True)
class Put:
    """Write `value` at `key`; the version becomes the old version + 1.

    `expect`: None = unconditional; an int = the item must be at that version
    (0 = must be absent). `feed`: record this write in the change feed.
    `recreate` (only with expect=0): the key may have existed before; its new
    version is the commit timestamp instead of 1 (see the module docstring).
    """

    key: Key
    value: bytes
    expect: int | None = None
    feed: bool = False
    recreate: bool = False

    def __post_init__(self) -> None:
        if self.recreate and self.expect != 0:
            raise ValueError("Put(recreate=True) needs expect=0: it creates the item")


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove `key` (a no-op if it is absent and `expect` is None)."""

    key: Key
    expect: int | None = None
    feed: bool = False


@dataclass(frozen=True, slots=True)
class Bump:
    """Increment the version of `key`, creating it (value b"") if absent.

    Used for range versions: it never changes the value and never enters the feed.
    `value`: if given, the item's value must be exactly this (an absent item's
    is b""), else the commit fails on this key like a failed expectation.
    """

    key: Key
    expect: int | None = None
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class SearchWrite:
    """Index (or remove) one document in a search index, in the same commit.

    For a store whose search engine is transactional (`store.search.transactional`,
    SQLite FTS5): the entry is written atomically with the documents. Other
    stores drop these ops (DynamoDB: OpenSearch is fed from the stream); they
    are no store items and cost no transaction items. `key` only keeps ops
    unique per (index, document)."""

    key: Key
    entry: SearchEntry


Op = Check | Put | Delete | Bump | SearchWrite


@dataclass(frozen=True, slots=True)
class CommitResult:
    """`ts`: the commit timestamp in nanoseconds since the epoch, strictly
    increasing across the commits of one store (and across restarts where the
    store can persist it)."""

    ts: int


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write from the feed. `old_value`/`new_value` are None for
    absent (an insert has no old value, a delete no new one)."""

    key: Key
    old_value: bytes | None
    new_value: bytes | None
    ts: int


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    changes: list[Change]
    position: str
    """Opaque; pass it back as `after` to read what follows."""


class StoreError(Exception):
    """The store failed for a reason that is not a conflict (bad request,
    unreachable endpoint, a limit of the backing service)."""


class FeedTrimmed(StoreError):
    """`read_changes` was asked for changes after a position the feed no
    longer holds (trimmed to bound its size): the reader missed changes and
    must resync (a sync hub re-runs every live query) from a fresh position."""


class TransactionConflict(Exception):
    """Some expectation failed, or the store refused the commit because a
    concurrent transaction touched the same items. Nothing was applied.

    `keys`: the keys whose expectation failed, when the store can tell
    (empty when it cannot, e.g. DynamoDB's `TransactionConflict`)."""

    def __init__(self, keys: Sequence[Key] = (), reason: str = "") -> None:
        self.keys: list[Key] = list(keys)
        self.reason = reason
        super().__init__(reason or f"conflict on {len(self.keys)} key(s)")


@runtime_checkable
class Store(Protocol):
    """The storage port. Implementations must be safe to call from many threads."""

    @property
    def max_transaction_items(self) -> int | None:
        """The most ops one `transact` may carry atomically; None: any number
        (SQLite: one SQLite transaction; DynamoDB: past 100 items by its
        large-commit protocol). The core refuses a commit only past a number
        here (`plan_commit`); callers that split their own writes must accept
        None. A property so that a store may declare a plain `int` attribute."""
        ...

    def get(self, keys: Sequence[Key]) -> list[Item | None]: ...

    def versions(self, keys: Sequence[Key]) -> list[int]:
        """Each key's version (0 = absent), as of one instant no commit is
        half applied at (per 100 keys on DynamoDB: see `commit.py`)."""
        ...

    def scan(
        self,
        partition: str,
        lo: bytes = b"",
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int = 100,
    ) -> list[Item]: ...

    def transact(self, ops: Sequence[Op]) -> CommitResult: ...

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch: ...

    def close(self) -> None: ...


def search_write(entry: SearchEntry) -> SearchWrite:
    """The op that applies `entry` in a commit."""
    return SearchWrite(("s:search", f"{entry.index_key}\x00{entry.doc_id}".encode()), entry)


def without_search_writes(ops: Sequence[Op]) -> list[Op]:
    """`ops` minus search writes: what a store without a transactional search
    engine commits."""
    return [op for op in ops if not isinstance(op, SearchWrite)]


def ensure_one_op_per_key(ops: Sequence[Op]) -> None:
    """Adapters call this first: the port allows one op per key per transaction."""
    if len({op.key for op in ops}) == len(ops):
        return
    seen: set[Key] = set()
    for op in ops:
        if op.key in seen:
            raise ValueError(f"two ops on one key in one transaction: {op.key!r}")
        seen.add(op.key)


def scan_all(store: Store, partition: str, *, page: int = 100) -> Iterator[Item]:
    """Every item of a partition in key order, fetched a page at a time."""
    lo = b""
    while True:
        items = store.scan(partition, lo, None, limit=page)
        yield from items
        if len(items) < page:
            return
        lo = items[-1].key[1] + b"\x00"
