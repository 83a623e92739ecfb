"""Which live queries does a write touch? An index over their read sets.

A query's read set is the documents it read by id and the index ranges it
scanned (`ReadSet`, in the key encoding of the database core). A committed
write of a document touches a query if the query read that id, or if the
document's old or new key in some index lies in a range the query scanned.

Lookups must not cost more with more (untouched) subscriptions, so ranges
are filed by the longest element-aligned prefix their keys share:

- a prefix range (all keys starting with P: an equality lookup, or a whole
  index) is filed under P and found by exact match;
- any other range [lo, hi) is filed in the bucket of the longest element
  prefix P of lo that hi also starts with (every key in the range starts
  with P), and checked against the key only when the bucket is visited.

A key's candidates are then the entries filed under its element prefixes
(at most one per indexed value, `_creationTime` and `_id`): the cost of a
lookup depends on the key and on the queries reading near it, not on how
many other queries exist.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from runtime.database.readwrite import ReadSet
from runtime.values import component_prefixes, prefix_end

__all__ = ["ReadIndex", "bucket"]

IndexId = tuple[str, str]
"""(table, index name)."""


@dataclass
class _Filed:
    documents: list[str] = field(default_factory=list)
    prefixes: list[tuple[IndexId, bytes]] = field(default_factory=list)
    intervals: list[tuple[IndexId, bytes, tuple[bytes, bytes | None]]] = field(default_factory=list)


def bucket(lo: bytes, hi: bytes | None) -> bytes:
    """The longest element prefix of `lo` that `hi` also starts with."""
    if hi is None:
        return b""
    best = b""
    for p in component_prefixes(lo):
        if hi.startswith(p):
            best = p
        else:
            break
    return best


class ReadIndex:
    def __init__(self) -> None:
        self._documents: dict[str, set[Hashable]] = {}
        self._prefixes: dict[IndexId, dict[bytes, set[Hashable]]] = {}
        self._intervals: dict[
            IndexId, dict[bytes, dict[tuple[bytes, bytes | None], set[Hashable]]]
        ] = {}
        self._filed: dict[Hashable, _Filed] = {}

    def __len__(self) -> int:
        return len(self._filed)

    def put(self, owner: Hashable, reads: ReadSet) -> None:
        """File `owner`'s read set (replacing what was filed for it)."""
        self.remove(owner)
        filed = _Filed()
        for doc_id in reads.documents:
            self._documents.setdefault(doc_id, set()).add(owner)
            filed.documents.append(doc_id)
        for r in reads.ranges:
            index: IndexId = (r.table, r.index)
            if r.hi is not None and r.hi <= r.lo:
                continue  # an empty range: nothing can enter it
            if r.hi == prefix_end(r.lo) and r.lo in component_prefixes(r.lo):
                self._prefixes.setdefault(index, {}).setdefault(r.lo, set()).add(owner)
                filed.prefixes.append((index, r.lo))
            else:
                where = bucket(r.lo, r.hi)
                span = (r.lo, r.hi)
                by_span = self._intervals.setdefault(index, {}).setdefault(where, {})
                by_span.setdefault(span, set()).add(owner)
                filed.intervals.append((index, where, span))
        self._filed[owner] = filed

    def remove(self, owner: Hashable) -> None:
        filed = self._filed.pop(owner, None)
        if filed is None:
            return
        for doc_id in filed.documents:
            _discard(self._documents, doc_id, owner)
        for index, prefix in filed.prefixes:
            by_prefix = self._prefixes.get(index)
            if by_prefix is not None:
                _discard(by_prefix, prefix, owner)
                if not by_prefix:
                    del self._prefixes[index]
        for index, where, span in filed.intervals:
            buckets = self._intervals.get(index)
            if buckets is None or where not in buckets:
                continue
            _discard(buckets[where], span, owner)
            if not buckets[where]:
                del buckets[where]
            if not buckets:
                del self._intervals[index]

    def touched(self, doc_id: str, keys: Iterable[tuple[IndexId, bytes]]) -> set[Hashable]:
        """The owners whose reads cover document `doc_id` or any of `keys`
        (its old and new keys, per index)."""
        found: set[Hashable] = set(self._documents.get(doc_id, ()))
        for index, key in keys:
            by_prefix = self._prefixes.get(index)
            buckets = self._intervals.get(index)
            if by_prefix is None and buckets is None:
                continue
            for p in component_prefixes(key):
                if by_prefix is not None and p in by_prefix:
                    found |= by_prefix[p]
                if buckets is not None and p in buckets:
                    for (lo, hi), owners in buckets[p].items():
                        if lo <= key and (hi is None or key < hi):
                            found |= owners
        return found


K = TypeVar("K")


def _discard(mapping: dict[K, set[Hashable]], key: K, owner: Hashable) -> None:
    owners = mapping.get(key)
    if owners is None:
        return
    owners.discard(owner)
    if not owners:
        del mapping[key]
