"""The database as of a past commit timestamp: queries at a fixed timestamp
across calls (`/api/query_at_ts`, the JS `ConvexHttpClient.consistentQuery`).

The store keeps one version of every item, not a history (no MVCC). What it
does keep is the change feed: every committed document write with its old
value, its new value and its commit timestamp. So the database as of `ts`
is rebuilt as a read-only overlay on a current, fixed snapshot:

- a document changed after `ts` reads as the old value of its *first*
  change after `ts` (absent if that change inserted it); every other
  document reads as it is in the snapshot (unchanged since `ts`);
- its index entries follow: the entries of its value in the snapshot are
  hidden and those of its value at `ts` shown, both computed with the
  table's index specs (an index entry is a pure function of the document:
  `IndexSpec.key`); entries of unchanged documents are the snapshot's;
- everything else (range versions, the table registry, system items) reads
  through: a query only reads those to record its read set, and a fixed
  view never conflicts.

Sound because (a) the snapshot is one fixed instant, so the feed up to its
position holds exactly the writes it reflects; (b) commit timestamps follow
the commit order (SQLite serializes commits and gives each a larger
timestamp than the last), so "every change with ts' > ts" is a suffix of the
feed; (c) a timestamp handed out by `latest_ts` is the last commit's, so
every later commit gets a larger one and a query at it sees the same data
however late it runs. A `ts` newer than the snapshot's last commit is
refused: a commit could still land at or below it.

Retention: the SQLite change log keeps its last CHANGE_LOG_ENTRIES writes.
If it was trimmed and its oldest entry is newer than `ts`, writes after
`ts` may be gone and the view cannot be rebuilt: `HistoryUnavailable`, a
clear error for the client (Convex too only reads a bounded time into the
past). A view also undoes at most QUERY_AT_TS_CHANGES writes.

The DynamoDB shell cannot do this soundly and does not offer it (see
`runtime/http/api.py`): DynamoDB has no snapshot reads, its commit
timestamps are per-process hybrid clocks (a commit in flight in another
Lambda may land after a timestamp was handed out, with a smaller one), and
its stream orders changes per item only, with delivery lag, so no reader
can tell it holds every change after `ts`.

Finding the first change after `ts`: the feed positions of a store with
snapshots are its change-log sequence numbers (SqliteStore's), and
timestamps grow with them, so a binary search of single-change reads finds
it in ~17 reads for 100,000 entries; with positions that are not numbers,
the feed is read from its start.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from runtime.errors import PlatformError
from runtime.limits import QUERY_AT_TS_CHANGES
from runtime.store.port import (
    Change,
    ChangeBatch,
    CommitResult,
    FeedTrimmed,
    Item,
    Key,
    Op,
    Store,
    StoreError,
)

from . import layout
from .database import Database
from .errors import InvalidDocumentError
from .indexes import TableIndexes

__all__ = [
    "HistoryUnavailable",
    "Snapshot",
    "SnapshotSource",
    "StoreAsOf",
    "changes_after",
    "database_at",
    "latest_ts",
]


class Snapshot(Store, Protocol):
    """A fixed read view of a store (`SqliteStore.snapshot`): `position` is
    the feed position of the last change it holds, `ts` its last commit's."""

    position: str
    ts: int


SnapshotSource = Callable[[], AbstractContextManager[Snapshot]]


class HistoryUnavailable(PlatformError):
    """A timestamp the store cannot show the database at."""

    code = "TIMESTAMP_UNAVAILABLE"
    status = 400


def latest_ts(snapshots: SnapshotSource) -> int:
    """The last commit's timestamp: a query at it sees what a query now sees,
    and every later commit has a larger one."""
    with snapshots() as snap:
        return snap.ts


@contextlib.contextmanager
def database_at(
    db: Database,
    snapshots: SnapshotSource,
    ts: int,
    wrap: Callable[[Store], Store] = lambda store: store,
) -> Iterator[Database]:
    """`db` as of commit timestamp `ts`, for queries, while the block runs
    (it holds a snapshot: run the query inside, in one thread). `wrap`: what
    the view's store is read through (the functions layer's `PlatformStore`)."""
    with snapshots() as snap:
        if ts > snap.ts:
            raise HistoryUnavailable(
                f"timestamp {ts} is newer than the latest commit ({snap.ts}): a query at it "
                "could miss a commit still to come. Take timestamps from /api/query_ts."
            )
        changes = changes_after(snap, ts)
        yield db.view(wrap(StoreAsOf(snap, changes, db.table_indexes)))


def changes_after(snap: Snapshot, ts: int) -> Iterator[Change]:
    """The feed's changes with a commit timestamp above `ts`, up to the
    snapshot's position, in order; HistoryUnavailable if the feed no longer
    reaches back to `ts`."""
    first = snap.read_changes(None, 1).changes
    if not first:
        return iter(())
    if first[0].ts > ts and _trimmed(snap):
        raise HistoryUnavailable(
            f"timestamp {ts} is older than the change log reaches back (it keeps the last "
            "CHANGE_LOG_ENTRIES writes): run the query without a timestamp, or take a "
            "fresh one from /api/query_ts"
        )
    return _read_from(snap, _position_before_first_after(snap, ts))


def _trimmed(snap: Snapshot) -> bool:
    try:
        snap.read_changes("0", 1)
    except FeedTrimmed:
        return True
    except StoreError:
        return True  # positions are not numbers: assume the worst
    return False


def _position_before_first_after(snap: Snapshot, ts: int) -> str | None:
    """The position after which the first change with a larger timestamp
    than `ts` comes (None: from the start)."""
    oldest = snap.read_changes(None, 1)
    try:
        lo, hi = int(oldest.position) - 1, int(snap.position)
    except ValueError:
        return None
    if oldest.changes[0].ts > ts:
        return str(lo)  # every change held is after ts
    # The largest m whose first change at or after it has ts' <= ts: that
    # change is at m itself (timestamps grow with positions), and the next
    # one is after ts. The oldest change (at lo + 1) qualifies.
    lo += 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        batch = snap.read_changes(str(mid - 1), 1)
        if batch.changes and batch.changes[0].ts <= ts:
            lo = mid
        else:
            hi = mid - 1
    return str(lo)


def _read_from(snap: Snapshot, after: str | None) -> Iterator[Change]:
    count = 0
    while True:
        batch: ChangeBatch = snap.read_changes(after, 1000)
        for change in batch.changes:
            count += 1
            if count > QUERY_AT_TS_CHANGES:
                raise HistoryUnavailable(
                    f"more than {QUERY_AT_TS_CHANGES:,} writes landed after this timestamp "
                    "(QUERY_AT_TS_CHANGES): take a fresh one from /api/query_ts"
                )
            yield change
        if len(batch.changes) < 1000:
            return
        after = batch.position


@dataclass
class _Undone:
    """What a view changes for one partition."""

    hidden: set[bytes] = field(default_factory=set)
    shown: dict[bytes, bytes] = field(default_factory=dict)
    _sorted: tuple[list[bytes], list[bytes]] | None = None

    def sorted_keys(self) -> tuple[list[bytes], list[bytes]]:
        """(hidden, shown), each sorted (built on first use)."""
        if self._sorted is None:
            self._sorted = (sorted(self.hidden), sorted(self.shown))
        return self._sorted


class StoreAsOf:
    """A read-only Store: `base` (a fixed snapshot) with `changes` (every
    change after some timestamp, in commit order) undone. See the module
    docstring."""

    def __init__(
        self,
        base: Store,
        changes: Iterator[Change] | Sequence[Change],
        indexes: Callable[[str], TableIndexes],
    ) -> None:
        self.max_transaction_items = base.max_transaction_items
        self._base = base
        first_old: dict[Key, bytes | None] = {}
        last_new: dict[Key, bytes | None] = {}
        for change in changes:
            if layout.id_from_doc_key(change.key) is None:
                continue
            if change.key not in first_old:
                first_old[change.key] = change.old_value
            last_new[change.key] = change.new_value
        self._docs: dict[Key, bytes | None] = first_old
        self._parts: dict[str, _Undone] = {}
        for key, then in first_old.items():
            now_keys = _entries(last_new[key], indexes)
            then_keys = _entries(then, indexes)
            doc_id = layout.id_from_doc_key(key) or ""
            for entry in now_keys - then_keys:
                self._part(entry[0]).hidden.add(entry[1])
            for entry in then_keys - now_keys:
                self._part(entry[0]).shown[entry[1]] = doc_id.encode()

    def _part(self, partition: str) -> _Undone:
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Undone()
        return part

    def get(self, keys: Sequence[Key]) -> list[Item | None]:
        rest = [k for k in keys if k not in self._docs]
        found = dict(zip(rest, self._base.get(rest), strict=True)) if rest else {}
        out: list[Item | None] = []
        for key in keys:
            if key in self._docs:
                value = self._docs[key]
                out.append(None if value is None else Item(key, value, 1))
            else:
                out.append(found[key])
        return out

    def versions(self, keys: Sequence[Key]) -> list[int]:
        rest = [k for k in keys if k not in self._docs]
        found = dict(zip(rest, self._base.versions(rest), strict=True)) if rest else {}
        return [(0 if self._docs[k] is None else 1) if k in self._docs else found[k] for k in keys]

    def scan(
        self,
        partition: str,
        lo: bytes = b"",
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int = 100,
    ) -> list[Item]:
        doc_key = (partition, b"")
        if doc_key in self._docs:  # a document partition holds one item, at b""
            (item,) = self.get([doc_key])
            inside = lo == b"" and (hi is None or hi > b"")
            return [item] if item is not None and inside and limit > 0 else []
        part = self._parts.get(partition)
        if part is None:
            return self._base.scan(partition, lo, hi, reverse=reverse, limit=limit)
        hidden, shown = part.sorted_keys()
        # Fetch enough that hiding entries in the range cannot leave the page short.
        more = len(_within(hidden, lo, hi))
        base = self._base.scan(partition, lo, hi, reverse=reverse, limit=limit + more)
        items = [it for it in base if it.key[1] not in part.hidden]
        items += [Item((partition, s), part.shown[s], 1) for s in _within(shown, lo, hi)]
        # If the base had more, `items` holds at least `limit` of its keys, so
        # whatever lies past the fetched ones sorts after the page's end.
        items.sort(key=lambda it: it.key[1], reverse=reverse)
        return items[:limit]

    def transact(self, ops: Sequence[Op]) -> CommitResult:
        raise StoreError("the database as of a past timestamp is read-only")

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch:
        raise StoreError("the database as of a past timestamp has no change feed")

    def close(self) -> None:
        """The base snapshot is closed by whoever opened it."""


def _within(keys: list[bytes], lo: bytes, hi: bytes | None) -> list[bytes]:
    """The sorted `keys` in [lo, hi)."""
    start = bisect.bisect_left(keys, lo)
    end = len(keys) if hi is None else bisect.bisect_left(keys, hi)
    return keys[start:end]


def _entries(raw: bytes | None, indexes: Callable[[str], TableIndexes]) -> set[Key]:
    """The index entries (partition, sort key) of a stored document value."""
    if raw is None:
        return set()
    stored = layout.decode_document(raw)
    out: set[Key] = set()
    for spec in indexes(stored.table).specs:
        try:
            out.add(spec.key(stored.doc))
        except InvalidDocumentError:
            # Indexable when written, but not under an index defined since
            # (a value too long for it): the index did not exist at `ts`.
            continue
    return out
