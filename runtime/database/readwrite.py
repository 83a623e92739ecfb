"""A transaction's read set and write set, as explicit objects.

The read set is what the commit checks (and, later, what a subscription
watches): every store item whose version the transaction relied on, with the
version it saw (0 = absent), plus the index ranges it scanned. The write set
buffers every document change until commit; reads consult it first, so a
transaction sees its own writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.store.port import Key

__all__ = ["IndexRange", "PendingWrite", "ReadSet", "WriteSet"]


@dataclass(frozen=True, slots=True)
class IndexRange:
    """A scanned index range: partition `i:<table>:<index>`, [lo, hi) (hi None = open)."""

    table: str
    index: str
    lo: bytes
    hi: bytes | None


@dataclass
class ReadSet:
    versions: dict[Key, int] = field(default_factory=dict)
    """Item key -> version first seen. Document items and range versions."""
    ranges: list[IndexRange] = field(default_factory=list)
    documents: set[str] = field(default_factory=set)
    """Ids of documents read by point reads (for reactivity)."""

    def record(self, key: Key, version: int) -> None:
        # The first observation wins: if the item moved since, the commit
        # check fails, which is what must happen.
        self.versions.setdefault(key, version)


@dataclass
class PendingWrite:
    table: str
    old: dict[str, Any] | None
    """The document as stored before this transaction (None: inserted here)."""
    old_version: int
    new: dict[str, Any] | None
    """The document after this transaction (None: deleted). Never handed to user code."""
    new_bytes: bytes | None
    """`new` in its stored form (reads decode it afresh)."""
    new_keys: dict[str, Key] | None
    """Index name -> the key of `new` in that index."""
    recreate: bool = False
    """A deleted id written anew (`Transaction.restore`): its version must not
    restart (see `runtime.store.port.Put.recreate`)."""


@dataclass
class WriteSet:
    writes: dict[str, PendingWrite] = field(default_factory=dict)
    system: dict[Key, bytes | None] = field(default_factory=dict)
    """Platform records written with the transaction (not documents: no
    indexes, no feed), e.g. the dedupe record of a mutation request; None
    deletes the record (a scheduled job's queue record, once handled)."""
    documents_written: int = 0
    bytes_written: int = 0

    def get(self, doc_id: str) -> PendingWrite | None:
        return self.writes.get(doc_id)

    def __bool__(self) -> bool:
        return bool(self.writes) or bool(self.system)
