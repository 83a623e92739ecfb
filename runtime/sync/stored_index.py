"""The read-set index of `read_index.py`, kept in the store: which shared
queries does a committed write touch, when no process holds them in memory
(the AWS shell: any stream Lambda must find them).

The filing rules are the in-memory index's: a document read is filed under
its id; a prefix range under (index, prefix); any other range in the bucket
of the longest element prefix its bounds share, with its bounds, checked on
lookup. Each filing is an item:

    partition  s:rd:<document id>                       or
               s:ri:<blake2b(table, index, prefix) hex>
    sort key   owner (16 bytes) + generation (8 bytes) [+ span digest]
    value      b"" (exact), or the range's bounds (checked on lookup)

A lookup scans, for the document id and every element prefix of each of its
index keys, one partition: its cost depends on the key and on the queries
reading near it, not on how many queries exist. The generation lets a
query's filings from an earlier life be deleted without touching those of
a new one under the same owner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from runtime.database.readwrite import ReadSet
from runtime.store.port import Delete, Key, Op, Put, Store, scan_all
from runtime.values import component_prefixes, prefix_end

from .read_index import IndexId, bucket

__all__ = [
    "OWNER_BYTES",
    "Documents",
    "file_reads",
    "filed_touched",
    "filings",
    "touched_owners",
    "unfile",
]

OWNER_BYTES = 16
_BATCH = 25
"""Filings written per transaction (well under DynamoDB's 100 items)."""
_LOOKUP_THREADS = 8


def _document_partition(doc_id: str) -> str:
    return f"s:rd:{doc_id}"


def _index_partition(index: IndexId, prefix: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (index[0].encode(), index[1].encode(), prefix):
        digest.update(len(part).to_bytes(4, "big") + part)
    return f"s:ri:{digest.hexdigest()}"


def filings(owner: bytes, generation: bytes, reads: ReadSet) -> dict[Key, bytes]:
    """The items that file `reads` for `owner` (key -> value)."""
    tag = owner + generation
    out: dict[Key, bytes] = {}
    for doc_id in reads.documents:
        out[(_document_partition(doc_id), tag)] = b""
    for r in reads.ranges:
        index: IndexId = (r.table, r.index)
        if r.hi is not None and r.hi <= r.lo:
            continue  # an empty range: nothing can enter it
        if r.hi == prefix_end(r.lo) and r.lo in component_prefixes(r.lo):
            out[(_index_partition(index, r.lo), tag)] = b""
        else:
            bounds = json.dumps([r.lo.hex(), r.hi.hex() if r.hi is not None else None]).encode()
            span = hashlib.blake2b(bounds, digest_size=8).digest()
            out[(_index_partition(index, bucket(r.lo, r.hi)), tag + span)] = bounds
    return out


def file_reads(store: Store, items: dict[Key, bytes]) -> None:
    puts: list[Op] = [Put(k, v) for k, v in items.items()]
    for i in range(0, len(puts), _BATCH):
        store.transact(puts[i : i + _BATCH])


def unfile(store: Store, keys: Iterable[Key]) -> None:
    deletes: list[Op] = [Delete(k) for k in keys]
    for i in range(0, len(deletes), _BATCH):
        store.transact(deletes[i : i + _BATCH])


Documents = Iterable[tuple[str, list[tuple[IndexId, bytes]]]]
"""Written documents: each its id and its old and new keys per index."""


def _lookups(documents: Documents) -> dict[str, list[bytes]]:
    """The partitions where filings covering these documents live -> the index
    keys a bounded filing there must contain to cover one."""
    checks: dict[str, list[bytes]] = {}
    for doc_id, keys in documents:
        checks.setdefault(_document_partition(doc_id), [])
        for index, key in keys:
            for p in component_prefixes(key):
                checks.setdefault(_index_partition(index, p), []).append(key)
    return checks


def _covers(value: bytes, keys: list[bytes]) -> bool:
    """Whether a filing with this value covers one of `keys` (b"": exact)."""
    if not value:
        return True
    lo_hex, hi_hex = json.loads(value)
    lo, hi = bytes.fromhex(lo_hex), bytes.fromhex(hi_hex) if hi_hex else None
    return any(lo <= key and (hi is None or key < hi) for key in keys)


def filed_touched(filed: Iterable[tuple[str, bytes]], documents: Documents) -> bool:
    """Whether one query's own filings (partition, value) cover any of these
    written documents: `touched_owners` for a query whose filings are at
    hand, with no lookup."""
    checks = _lookups(documents)
    return any(
        partition in checks and _covers(value, checks[partition]) for partition, value in filed
    )


def touched_owners(store: Store, documents: Documents) -> set[bytes]:
    """The owners whose filed reads cover any of these written documents."""
    checks = _lookups(documents)
    found: set[bytes] = set()

    def scan(partition: str) -> set[bytes]:
        return {
            item.key[1][:OWNER_BYTES]
            for item in scan_all(store, partition)
            if _covers(item.value, checks[partition])
        }

    if len(checks) <= 2:
        for partition in checks:
            found |= scan(partition)
        return found
    with ThreadPoolExecutor(min(_LOOKUP_THREADS, len(checks))) as pool:
        for owners in pool.map(scan, checks):
            found |= owners
    return found
