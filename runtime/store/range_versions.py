"""Range versions held in memory by the embedded store's single committer.

Range versions (`runtime/database/layout.py`: the table shards `v:` and the
field versions `f:`) only ever exist to be checked by commits. On SQLite one
process owns the file (`SqliteStore` locks it), so their versions need not be
rows: the committer keeps, per range key, the timestamp of the last commit
that wrote into that range. That is Convex's committer design in its
compact form: a log of the write keys of recent commits, summarized per key,
against which a transaction's recorded versions are validated.

Why versions stay sound:
- a range key's version is the commit timestamp of its last write, and commit
  timestamps strictly increase across commits and restarts (the store persists
  its last one), so a version never repeats for a key;
- a key not held (never written since open, or evicted to bound memory)
  reports `floor`: at least the version it last had (the open timestamp, or
  the largest version evicted). A transaction that read it earlier at a lower
  version then fails its check: a conservative conflict, never a missed one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from .port import RANGE_VERSION_PARTITIONS, Key

__all__ = ["RangeVersions", "is_range_key"]


def is_range_key(key: Key) -> bool:
    return key[0].startswith(RANGE_VERSION_PARTITIONS)


class RangeVersions:
    """Key -> version for range keys, bounded; not thread-safe (the store's
    lock guards it)."""

    def __init__(self, floor: int, capacity: int) -> None:
        self.floor = floor
        self.capacity = max(1, capacity)
        self._held: OrderedDict[Key, int] = OrderedDict()

    def version(self, key: Key) -> int:
        return self._held.get(key, self.floor)

    def versions(self, keys: Iterable[Key]) -> list[int]:
        held, floor = self._held, self.floor
        return [held.get(k, floor) for k in keys]

    def write(self, versions: Mapping[Key, int]) -> None:
        """Each key was written by the commit at its timestamp (in commit order)."""
        held = self._held
        for key, ts in versions.items():
            held[key] = ts
            held.move_to_end(key)
        while len(held) > self.capacity:
            _, version = held.popitem(last=False)
            self.floor = max(self.floor, version)
