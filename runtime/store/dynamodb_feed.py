"""The change feed of the DynamoDB adapter, read from the table's stream.

`StreamFeed.read(after, limit)` walks the stream's shards, parents before
children (DynamoDB keeps the records of one item in order within a shard,
and a shard's records come before its children's), and keeps the records of
feed writes:
- INSERT/MODIFY whose new image has `f` and a commit timestamp `ts` that
  differs from the old image's (so a version bump of a feed item is not a
  change);
- REMOVE whose old image has `f` (a delete cannot carry a marker: deleting an
  item last written with feed=True always enters the feed; the core never
  does otherwise).

Keys are read from the images (which hold the key attributes): moto 5.2
base64-encodes binary `Keys` of stream records twice.

The position is compact JSON `{shard id: last sequence number read}`, with
null for a closed shard read to its end. `Change.ts` is the new image's `ts`;
a REMOVE has none, so it gets max(the record's ApproximateCreationDateTime,
old ts + 1): per key, timestamps still grow; a REMOVE by a large commit
(`dynamodb_large.py`) gets its commit ts, which its lock left as `lts`. Lock
and unlock writes of large commits keep `ts`, so they are no changes, and
their placeholders (no `n`) read as absent.

Polling-friendly: the shard list is cached for `SHARD_LIST_TTL` seconds
(DescribeStream is rate-limited), and the next shard iterator of a shard is
kept, so a caller that passes back the position it got skips
GetShardIterator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .dynamodb_items import AttrMap, ChunkRef, chunk_ref, decode_key, first_chunk
from .port import Change, ChangeBatch, StoreError

__all__ = ["SHARD_LIST_TTL", "StreamFeed", "record_change"]

SHARD_LIST_TTL = 1.0
"""Seconds a DescribeStream answer is reused."""

_ITERATOR_TTL = 600.0
"""Shard iterators expire after 15 minutes; reuse them for 10."""

_EMPTY_READS_OF_CLOSED_SHARD = 8
"""A closed shard can answer empty pages before its end; read at most this
many in one call before moving on (the position keeps the place)."""


class StreamFeed:
    def __init__(
        self,
        streams: Any,
        stream_arn: Callable[[], str],
        read_chunks: Callable[[ChunkRef, bytes], bytes],
    ) -> None:
        self._streams = streams
        self._stream_arn = stream_arn
        self._read_chunks = read_chunks
        self._lock = threading.Lock()
        self._shards: list[AttrMap] = []
        self._shards_at = -SHARD_LIST_TTL
        self._iterators: dict[str, tuple[str, str, float]] = {}
        """shard id -> (sequence number, iterator after it, when)."""

    def _shard_list(self, *, force: bool = False) -> list[AttrMap]:
        with self._lock:
            if not force and time.monotonic() - self._shards_at < SHARD_LIST_TTL:
                return self._shards
        shards: list[AttrMap] = []
        start: str | None = None
        arn = self._stream_arn()
        while True:
            kw: AttrMap = {"StreamArn": arn}
            if start:
                kw["ExclusiveStartShardId"] = start
            desc = self._streams.describe_stream(**kw)["StreamDescription"]
            shards += desc.get("Shards", [])
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        ordered = _parents_first(shards)
        with self._lock:
            self._shards, self._shards_at = ordered, time.monotonic()
        return ordered

    def read(self, after: str | None, limit: int) -> ChangeBatch:
        try:
            position: dict[str, str | None] = json.loads(after) if after else {}
        except ValueError as e:
            raise StoreError(f"not a change-feed position of this store: {after!r}") from e
        shards = self._shard_list()
        if not set(position) <= {s["ShardId"] for s in shards}:
            shards = self._shard_list(force=True)
        ids = {s["ShardId"] for s in shards}
        # Shards trimmed from the stream (24 h retention) leave the position.
        position = {sid: seq for sid, seq in position.items() if sid in ids}
        changes: list[Change] = []
        for shard in shards:
            if len(changes) >= limit:
                break
            sid = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if sid in position and position[sid] is None:
                continue  # read to its end
            if parent in ids and not (parent in position and position[parent] is None):
                continue  # the parent's records come first
            self._read_shard(shard, position, changes, limit)
        return ChangeBatch(changes, json.dumps(position, separators=(",", ":"), sort_keys=True))

    def _iterator(self, sid: str, seq: str | None) -> str | None:
        with self._lock:
            cached = self._iterators.get(sid)
        fresh = cached is not None and time.monotonic() - cached[2] < _ITERATOR_TTL
        if seq is not None and cached is not None and cached[0] == seq and fresh:
            return cached[1]
        kw: AttrMap = {"StreamArn": self._stream_arn(), "ShardId": sid}
        if seq is None:
            kw["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=seq)
        try:
            it: str | None = self._streams.get_shard_iterator(**kw).get("ShardIterator")
        except Exception as e:
            if _code(e) == "TrimmedDataAccessException":
                raise StoreError(
                    f"the change feed position is older than the stream keeps (24 h): shard {sid}"
                ) from e
            if _code(e) == "ResourceNotFoundException":
                return None  # trimmed meanwhile
            raise
        return it

    def _read_shard(
        self, shard: AttrMap, position: dict[str, str | None], changes: list[Change], limit: int
    ) -> None:
        sid = shard["ShardId"]
        closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
        iterator = self._iterator(sid, position.get(sid))
        empty = 0
        while iterator is not None and len(changes) < limit:
            resp = self._streams.get_records(
                ShardIterator=iterator, Limit=max(1, min(1000, limit - len(changes)))
            )
            records = resp.get("Records", [])
            for rec in records:
                position[sid] = rec["dynamodb"]["SequenceNumber"]
                change = self._change(rec)
                if change is not None:
                    changes.append(change)
            iterator = resp.get("NextShardIterator")
            if iterator is None:
                position[sid] = None  # a closed shard, read to its end
                break
            if not records:
                empty += 1
                if not closed or empty >= _EMPTY_READS_OF_CLOSED_SHARD:
                    break
        seq = position.get(sid)
        with self._lock:
            if iterator is not None and seq is not None:
                self._iterators[sid] = (seq, iterator, time.monotonic())
            else:
                self._iterators.pop(sid, None)

    def _change(self, rec: Mapping[str, Any]) -> Change | None:
        return record_change(rec, self._read_chunks)


def record_change(
    rec: Mapping[str, Any], read_chunks: Callable[[ChunkRef, bytes], bytes]
) -> Change | None:
    """The change a stream record carries (boto3's shape: binary values as
    bytes), or None if it is not a feed write (see the module docstring)."""

    def value(image: Mapping[str, Any] | None) -> bytes | None:
        if image is None or "n" not in image:
            return None  # absent, or a large commit's placeholder (absent too)
        ref = chunk_ref(image)
        if ref is None:
            return first_chunk(image)
        return read_chunks(ref, first_chunk(image))

    data = rec["dynamodb"]
    new: Mapping[str, Any] | None = data.get("NewImage")
    old: Mapping[str, Any] | None = data.get("OldImage")
    image = new or old
    if image is not None and str(image["pk"]["S"]).startswith("~"):
        return None  # the adapter's own items (chunks, large commits' records)
    if rec.get("eventName") == "REMOVE" or new is None:
        if not old or "f" not in old:
            return None
        approx = data.get("ApproximateCreationDateTime")
        if hasattr(approx, "timestamp"):
            ts = int(approx.timestamp() * 1e9)
        else:
            ts = int(float(approx or 0) * 1e9)
        if "lts" in old:
            ts = int(old["lts"]["N"])  # deleted by a large commit: its commit ts
        elif "ts" in old:
            ts = max(ts, int(old["ts"]["N"]) + 1)
        return Change(decode_key(old), value(old), None, ts)
    if "f" not in new or "ts" not in new:
        return None
    if old is not None and old.get("ts") == new["ts"]:
        return None  # a version bump of a feed item, not a write
    return Change(decode_key(new), value(old), value(new), int(new["ts"]["N"]))


def _parents_first(shards: list[AttrMap]) -> list[AttrMap]:
    by_id = {s["ShardId"]: s for s in shards}
    ordered: list[AttrMap] = []
    seen: set[str] = set()

    def visit(s: AttrMap, depth: int = 0) -> None:
        sid = s["ShardId"]
        if sid in seen:
            return
        seen.add(sid)
        parent = by_id.get(s.get("ParentShardId") or "")
        if parent is not None and depth < len(shards):
            visit(parent, depth + 1)
        ordered.append(s)

    for s in shards:
        visit(s)
    return ordered


def _code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
