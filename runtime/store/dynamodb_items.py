"""Item encoding for the DynamoDB adapter: keys, chunked values, and the
`TransactWriteItems` entry of each port op. Pure functions, no I/O; the
table design they implement is described in `runtime/store/dynamodb.py`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.limits import VALUE_CHUNK_BYTES

from .port import Bump, Check, Delete, Key, Op, Put

__all__ = [
    "CHUNK_PARTITION",
    "KEY_PREFIX",
    "MAX_SORT_KEY_BYTES",
    "AttrMap",
    "ChunkRef",
    "Failure",
    "chunk_key",
    "chunk_keys",
    "chunk_ref",
    "classify_cancellation",
    "decode_key",
    "encode_bound",
    "encode_key",
    "first_chunk",
    "split_value",
    "transact_items",
]

AttrMap = dict[str, Any]
"""One item or key in DynamoDB's low-level JSON shape ({"pk": {"S": ...}})."""

KEY_PREFIX = b"\x00"
"""Prepended to every stored sort key: DynamoDB key attributes cannot be
empty, and a constant first byte keeps the bytewise order."""

MAX_SORT_KEY_BYTES = 1023
"""The longest port sort key this adapter stores: DynamoDB's 1,024 bytes minus
the prefix."""

CHUNK_PARTITION = "~chunk:"
"""Partition prefix of value chunks. Core partitions start with a letter and a
colon (`runtime/database/layout.py`), so no scan ever meets a chunk."""

_VALUE_ATTRS = ("v", "c", "t", "f", "ts")
"""Attributes a Put rewrites (set or removed); `n` is the version."""


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where the chunks past the first of one stored value live."""

    token: bytes
    count: int


def encode_key(key: Key) -> AttrMap:
    return {"pk": {"S": key[0]}, "sk": {"B": KEY_PREFIX + key[1]}}


def decode_key(item: Mapping[str, Any]) -> Key:
    return (item["pk"]["S"], bytes(item["sk"]["B"])[len(KEY_PREFIX) :])


def encode_bound(bound: bytes) -> bytes:
    """A scan bound as a stored sort key, cut to DynamoDB's 1,024 bytes. Every
    stored key below `bound` is <= the cut bound, and every stored key >=
    `bound` is >= it, so an inclusive key condition on the cut bound plus an
    exact filter on the port key gives the port's range."""
    return (KEY_PREFIX + bound)[: MAX_SORT_KEY_BYTES + len(KEY_PREFIX)]


def chunk_key(token: bytes, index: int) -> AttrMap:
    return {"pk": {"S": CHUNK_PARTITION + token.hex()}, "sk": {"B": KEY_PREFIX + bytes([index])}}


def chunk_keys(ref: ChunkRef) -> list[AttrMap]:
    return [chunk_key(ref.token, i) for i in range(1, ref.count)]


def chunk_ref(item: Mapping[str, Any]) -> ChunkRef | None:
    """The chunks of a stored item's value, None when it is stored whole."""
    if "c" not in item or int(item["c"]["N"]) <= 1:
        return None
    return ChunkRef(bytes(item["t"]["B"]), int(item["c"]["N"]))


def first_chunk(item: Mapping[str, Any]) -> bytes:
    return bytes(item["v"]["B"]) if "v" in item else b""


def split_value(value: bytes, size: int = VALUE_CHUNK_BYTES) -> list[bytes]:
    """At least one chunk (b"" for an empty value)."""
    return [value[i : i + size] for i in range(0, len(value), size)] or [b""]


# ---- conditions ----------------------------------------------------------------

_NAME_RE = re.compile(r"#\w+")
_NAMES = {"#n": "n", "#t": "t", "#v": "v", "#c": "c", "#f": "f", "#ts": "ts", "#vt": "vt"}
"""Every attribute goes by a placeholder name (none is then a reserved word)."""


def _condition(
    expect: int | None, *, guard_chunks: bool, pinned: ChunkRef | None
) -> tuple[str | None, AttrMap]:
    """The condition of one write: the expected version (0 = absent), and, for
    a value write, "the old value is not chunked" (or, once the caller knows
    it is, "its chunks are still `pinned`"), so no chunk is ever orphaned
    unseen."""
    if expect == 0:
        return "attribute_not_exists(pk)", {}
    parts: list[str] = []
    values: AttrMap = {}
    if expect is not None:
        parts.append("#n = :expect")
        values[":expect"] = {"N": str(expect)}
    if guard_chunks:
        if pinned is None:
            parts.append("attribute_not_exists(c)")
        else:
            parts.append("#t = :oldtoken")
            values[":oldtoken"] = {"B": pinned.token}
    return (" AND ".join(parts) or None), values


def _with_condition(
    entry: AttrMap, cond: str | None, values: AttrMap, names: AttrMap, *, return_old: bool
) -> AttrMap:
    if cond is not None:
        entry["ConditionExpression"] = cond
        if return_old:
            entry["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    used = set(_NAME_RE.findall(f"{cond or ''} {entry.get('UpdateExpression', '')}"))
    names = {k: v for k, v in names.items() if k in used}
    if names:
        entry["ExpressionAttributeNames"] = names
    if values:
        entry["ExpressionAttributeValues"] = values
    return entry


# ---- ops -----------------------------------------------------------------------


def _put(table: str, op: Put, ts: int, pinned: ChunkRef | None, extra: list[AttrMap]) -> AttrMap:
    chunks = split_value(op.value)
    attrs: AttrMap = {}
    if chunks[0]:
        attrs["v"] = {"B": chunks[0]}
    if len(chunks) > 1:
        token = os.urandom(16)
        attrs["c"] = {"N": str(len(chunks))}
        attrs["t"] = {"B": token}
        for i, chunk in enumerate(chunks[1:], start=1):
            extra.append(
                {"Put": {"TableName": table, "Item": {**chunk_key(token, i), "v": {"B": chunk}}}}
            )
    if op.feed:
        attrs["f"] = {"BOOL": True}
        attrs["ts"] = {"N": str(ts)}
    cond, values = _condition(op.expect, guard_chunks=True, pinned=pinned)
    if op.expect is not None:
        version = ts if op.recreate else op.expect + 1
        item = {**encode_key(op.key), **attrs, "n": {"N": str(version)}}
        entry: AttrMap = {"Put": {"TableName": table, "Item": item}}
        _with_condition(entry["Put"], cond, values, _NAMES, return_old=True)
        return entry
    # Unconditional: an update, so the version keeps growing from what it was.
    sets = [f"#{a} = :{a}" for a in attrs]
    removes = [f"#{a}" for a in _VALUE_ATTRS if a not in attrs]
    expr = (f"SET {', '.join(sets)} " if sets else "") + "ADD #n :one"
    if removes:
        expr += " REMOVE " + ", ".join(removes)
    values.update({f":{a}": x for a, x in attrs.items()})
    values[":one"] = {"N": "1"}
    update: AttrMap = {"TableName": table, "Key": encode_key(op.key), "UpdateExpression": expr}
    return {"Update": _with_condition(update, cond, values, _NAMES, return_old=True)}


def _entry(table: str, op: Op, ts: int, pinned: ChunkRef | None, extra: list[AttrMap]) -> AttrMap:
    key = encode_key(op.key)
    if isinstance(op, Put):
        return _put(table, op, ts, pinned, extra)
    if isinstance(op, Check):
        cond, values = _condition(op.version, guard_chunks=False, pinned=None)
        check = {"TableName": table, "Key": key}
        return {"ConditionCheck": _with_condition(check, cond, values, _NAMES, return_old=False)}
    if isinstance(op, Delete):
        cond, values = _condition(op.expect, guard_chunks=True, pinned=pinned)
        delete = {"TableName": table, "Key": key}
        return {"Delete": _with_condition(delete, cond, values, _NAMES, return_old=True)}
    if isinstance(op, Bump):
        # The commit timestamp rides on the range version too (as `vt`: `ts`
        # marks feed writes), so a reader of the range (a scan that found a
        # document gone) learns it: see `DynamoDBStore` on commit timestamps.
        cond, values = _condition(op.expect, guard_chunks=False, pinned=None)
        if op.value is not None:
            # Range-version values are small (never chunked): `v` is all of it,
            # absent when empty.
            if op.value:
                same = "#v = :value"
                values[":value"] = {"B": op.value}
            else:
                same = "attribute_not_exists(#v)"
            cond = same if cond is None else f"{cond} AND {same}"
        values[":one"] = {"N": "1"}
        values[":ts"] = {"N": str(ts)}
        expr = "SET #vt = :ts ADD #n :one"
        update = {"TableName": table, "Key": key, "UpdateExpression": expr}
        return {"Update": _with_condition(update, cond, values, _NAMES, return_old=False)}
    raise TypeError(f"not a store op: {op!r}")


def transact_items(
    table: str, ops: Sequence[Op], ts: int, pinned: Mapping[Key, ChunkRef]
) -> list[AttrMap]:
    """The TransactItems of one commit: entry i is op i; the extra chunks of
    large values follow, one Put each (fresh random keys, so unconditional)."""
    extra: list[AttrMap] = []
    entries = [_entry(table, op, ts, pinned.get(op.key), extra) for op in ops]
    return entries + extra


# ---- cancellation ----------------------------------------------------------------


@dataclass
class Failure:
    """What a `TransactionCanceledException` says about the ops of a commit."""

    failed: list[Key]
    """Keys whose expectation failed."""
    pins: dict[Key, ChunkRef | None]
    """Value writes that failed only on the chunk guard: the old value is
    chunked (or no longer is): the caller retries with these chunks pinned
    (None: unpinned), and retires the pinned ones once committed."""
    unknown: list[Key]
    """Value writes that failed without the old item in the reason (an
    emulator that ignores ReturnValuesOnConditionCheckFailure): the caller
    reads them and classifies again."""
    codes: list[str]
    """Other reasons (TransactionConflict, ThrottlingError, ValidationError...)."""
    messages: list[str]


def classify_cancellation(
    ops: Sequence[Op],
    reasons: Sequence[Mapping[str, Any]],
    pinned: Mapping[Key, ChunkRef],
    read_back: Mapping[Key, Mapping[str, Any] | None] | None = None,
) -> Failure:
    out = Failure([], {}, [], [], [])
    for i, reason in enumerate(reasons):
        code = str(reason.get("Code") or "None")
        if code == "None":
            continue
        if code != "ConditionalCheckFailed" or i >= len(ops):
            out.codes.append(code)
            if reason.get("Message"):
                out.messages.append(str(reason["Message"]))
            continue
        op = ops[i]
        if isinstance(op, Put | Delete) and op.expect != 0:
            if "Item" in reason:
                old: Mapping[str, Any] | None = reason["Item"]
            elif read_back is not None and op.key in read_back:
                old = read_back[op.key]
            else:
                out.unknown.append(op.key)
                continue
            ref = chunk_ref(old) if old else None
            version = int(old["n"]["N"]) if old else 0
            if ref != pinned.get(op.key) and op.expect in (None, version):
                # Only the chunk guard failed (an unconditional write fails on
                # nothing else): retry guarding the chunks there now, if any.
                out.pins[op.key] = ref
                continue
        out.failed.append(op.key)
    return out
