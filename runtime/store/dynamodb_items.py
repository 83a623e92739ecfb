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
    "Staged",
    "apply_entry",
    "chunk_key",
    "chunk_keys",
    "chunk_ref",
    "classify_cancellation",
    "decode_key",
    "encode_bound",
    "encode_key",
    "first_chunk",
    "lock_entry",
    "op_condition",
    "payload_item",
    "split_value",
    "stage",
    "staged_of",
    "transact_items",
    "unlock_entry",
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
_NAMES = {
    "#n": "n",
    "#t": "t",
    "#v": "v",
    "#c": "c",
    "#f": "f",
    "#ts": "ts",
    "#vt": "vt",
    "#lk": "lk",
    "#li": "li",
    "#lts": "lts",
}
"""Every attribute goes by a placeholder name (none is then a reserved word)."""


def _condition(
    expect: int | None, *, guard_chunks: bool, pinned: ChunkRef | None
) -> tuple[str, AttrMap]:
    """The condition of one write: the expected version (0 = absent), and, for
    a value write, "the old value is not chunked" (or, once the caller knows
    it is, "its chunks are still `pinned`"), so no chunk is ever orphaned
    unseen. Every condition also requires that no large commit holds a lock
    on the item (`attribute_not_exists(lk)`; for "absent" a placeholder is
    an existing item, so `attribute_not_exists(pk)` covers it): nobody
    commits over a lock (`dynamodb_large.py`)."""
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
    parts.append("attribute_not_exists(#lk)")
    return " AND ".join(parts), values


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


def _value_attrs(table: str, value: bytes, extra: list[AttrMap]) -> AttrMap:
    """A value's attributes (`v`, and `c`/`t` when chunked); its chunks past
    the first go to `extra` as Puts under a fresh token (unconditional: the
    keys are new)."""
    chunks = split_value(value)
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
    return attrs


def op_condition(op: Op, pinned: ChunkRef | None) -> tuple[str, AttrMap]:
    """The condition an op's write carries (its expectation, the chunk guard
    of value writes, the Bump's value, no lock), shared by the one-call
    commit and the locks of a large one."""
    if isinstance(op, Check):
        return _condition(op.version, guard_chunks=False, pinned=None)
    if isinstance(op, Put | Delete):
        return _condition(op.expect, guard_chunks=True, pinned=pinned)
    if isinstance(op, Bump):
        cond, values = _condition(op.expect, guard_chunks=False, pinned=None)
        if op.value is not None:
            # Range-version values are small (never chunked): `v` is all of it,
            # absent when empty.
            if op.value:
                values[":value"] = {"B": op.value}
                return f"{cond} AND #v = :value", values
            return f"{cond} AND attribute_not_exists(#v)", values
        return cond, values
    raise TypeError(f"not a store op: {op!r}")


def _put(table: str, op: Put, ts: int, pinned: ChunkRef | None, extra: list[AttrMap]) -> AttrMap:
    attrs = _value_attrs(table, op.value, extra)
    if op.feed:
        attrs["f"] = {"BOOL": True}
        attrs["ts"] = {"N": str(ts)}
    cond, values = op_condition(op, pinned)
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
    cond, values = op_condition(op, pinned)
    if isinstance(op, Check):
        check = {"TableName": table, "Key": key}
        return {"ConditionCheck": _with_condition(check, cond, values, _NAMES, return_old=True)}
    if isinstance(op, Delete):
        delete = {"TableName": table, "Key": key}
        return {"Delete": _with_condition(delete, cond, values, _NAMES, return_old=True)}
    # A Bump. The commit timestamp rides on the range version too (as `vt`:
    # `ts` marks feed writes), so a reader of the range (a scan that found a
    # document gone) learns it: see `DynamoDBStore` on commit timestamps.
    values[":one"] = {"N": "1"}
    values[":ts"] = {"N": str(ts)}
    expr = "SET #vt = :ts ADD #n :one"
    update = {"TableName": table, "Key": key, "UpdateExpression": expr}
    return {"Update": _with_condition(update, cond, values, _NAMES, return_old=True)}


def transact_items(
    table: str, ops: Sequence[Op], ts: int, pinned: Mapping[Key, ChunkRef]
) -> list[AttrMap]:
    """The TransactItems of one commit: entry i is op i; the extra chunks of
    large values follow, one Put each (fresh random keys, so unconditional)."""
    extra: list[AttrMap] = []
    entries = [_entry(table, op, ts, pinned.get(op.key), extra) for op in ops]
    return entries + extra


# ---- the large protocol's items (runtime/store/dynamodb_large.py) -------------------

_LOCK_ATTRS = "#lk, #li, #lts"


@dataclass(frozen=True, slots=True)
class Staged:
    """One op of a large commit as its payload item holds it: what its apply
    writes once the commit point is passed."""

    key: Key
    kind: str
    """"put", "del", "bump" or "check"."""
    attrs: AttrMap
    """A put's value attributes (`v`, `c`, `t`) and `f` when it feeds."""
    recreate: bool = False
    absent: bool = False
    """A check of version 0: its lock is a placeholder, deleted by the apply."""


def stage(table: str, op: Op, chunks: list[AttrMap]) -> Staged:
    """The staged form of `op`; a put's chunks past the first go to `chunks`
    (Put entries), to be written before any lock."""
    if isinstance(op, Put):
        attrs = _value_attrs(table, op.value, chunks)
        if op.feed:
            attrs["f"] = {"BOOL": True}
        return Staged(op.key, "put", attrs, recreate=op.recreate)
    if isinstance(op, Delete):
        return Staged(op.key, "del", {})
    if isinstance(op, Bump):
        return Staged(op.key, "bump", {})
    if isinstance(op, Check):
        return Staged(op.key, "check", {}, absent=op.version == 0)
    raise TypeError(f"not a store op: {op!r}")


def payload_item(partition: str, index: int, staged: Staged) -> AttrMap:
    item: AttrMap = {
        "pk": {"S": partition},
        "sk": {"B": index.to_bytes(4, "big")},
        "kp": {"S": staged.key[0]},
        "ks": {"B": staged.key[1]},
        "o": {"S": staged.kind},
        # The feed flag goes by another name: a payload's removal is no change.
        **{("fd" if a == "f" else a): x for a, x in staged.attrs.items()},
    }
    if staged.recreate:
        item["r"] = {"BOOL": True}
    if staged.absent:
        item["z"] = {"BOOL": True}
    return item


def staged_of(item: Mapping[str, Any]) -> tuple[int, Staged]:
    """(index, staged op) of a payload item."""
    attrs = {a: item[a] for a in ("v", "c", "t") if a in item}
    if "fd" in item:
        attrs["f"] = item["fd"]
    key = (str(item["kp"]["S"]), bytes(item["ks"]["B"]))
    staged = Staged(key, str(item["o"]["S"]), attrs, "r" in item, "z" in item)
    return int.from_bytes(bytes(item["sk"]["B"]), "big"), staged


def lock_entry(
    table: str, op: Op, pinned: ChunkRef | None, txid: str, index: int, ts: int
) -> AttrMap:
    """The TransactWriteItems entry that locks `op`'s item for commit `txid`
    under the op's own condition (on an absent key it creates a placeholder:
    key and lock only)."""
    cond, values = op_condition(op, pinned)
    values.update({":txid": {"S": txid}, ":li": {"N": str(index)}, ":lts": {"N": str(ts)}})
    expr = "SET #lk = :txid, #li = :li, #lts = :lts"
    update: AttrMap = {"TableName": table, "Key": encode_key(op.key), "UpdateExpression": expr}
    return {"Update": _with_condition(update, cond, values, _NAMES, return_old=True)}


def apply_entry(table: str, staged: Staged, txid: str, ts: int) -> AttrMap:
    """The write of a committed op over its locked item (condition: still
    locked by `txid`, so it applies at most once)."""
    key = encode_key(staged.key)
    values: AttrMap = {":txid": {"S": txid}}
    cond = "#lk = :txid"
    if staged.kind == "del" or (staged.kind == "check" and staged.absent):
        delete = {"TableName": table, "Key": key}
        return {"Delete": _with_condition(delete, cond, values, _NAMES, return_old=False)}
    sets: list[str] = []
    removes = [_LOCK_ATTRS]
    add = ""
    if staged.kind == "put":
        attrs = dict(staged.attrs)
        if "f" in attrs:
            attrs["ts"] = {"N": str(ts)}
        sets += [f"#{a} = :{a}" for a in attrs]
        values.update({f":{a}": x for a, x in attrs.items()})
        removes += [f"#{a}" for a in _VALUE_ATTRS if a not in attrs]
        if staged.recreate:
            sets.append("#n = :version")
            values[":version"] = {"N": str(ts)}
        else:
            add = " ADD #n :one"
            values[":one"] = {"N": "1"}
    elif staged.kind == "bump":
        sets.append("#vt = :ts")
        values[":ts"] = {"N": str(ts)}
        add = " ADD #n :one"
        values[":one"] = {"N": "1"}
    expr = (f"SET {', '.join(sets)}" if sets else "") + add + " REMOVE " + ", ".join(removes)
    update = {"TableName": table, "Key": key, "UpdateExpression": expr.strip()}
    return {"Update": _with_condition(update, cond, values, _NAMES, return_old=False)}


def unlock_entry(table: str, item: Mapping[str, Any]) -> AttrMap:
    """Undo the lock on a stored `item` (still locked by its `lk`): remove the
    lock, or delete a placeholder (an item with no version)."""
    key = {"pk": item["pk"], "sk": item["sk"]}
    values: AttrMap = {":txid": item["lk"]}
    if "n" not in item:
        delete = {"TableName": table, "Key": key}
        return {"Delete": _with_condition(delete, "#lk = :txid", values, _NAMES, return_old=False)}
    expr = f"REMOVE {_LOCK_ATTRS}"
    update = {"TableName": table, "Key": key, "UpdateExpression": expr}
    return {"Update": _with_condition(update, "#lk = :txid", values, _NAMES, return_old=False)}


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
    locked: list[AttrMap]
    """The items (as the failure returned them) of failed ops that a large
    commit holds a lock on: the caller resolves them so a re-run can pass."""
    codes: list[str]
    """Other reasons (TransactionConflict, ThrottlingError, ValidationError...)."""
    messages: list[str]


def classify_cancellation(
    ops: Sequence[Op],
    reasons: Sequence[Mapping[str, Any]],
    pinned: Mapping[Key, ChunkRef],
    read_back: Mapping[Key, Mapping[str, Any] | None] | None = None,
) -> Failure:
    out = Failure([], {}, [], [], [], [])
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
        if "lk" in reason.get("Item", {}):
            out.locked.append(dict(reason["Item"]))
        if isinstance(op, Put | Delete) and op.expect != 0:
            if "Item" in reason:
                old: Mapping[str, Any] | None = reason["Item"]
            elif read_back is not None and op.key in read_back:
                old = read_back[op.key]
            else:
                out.unknown.append(op.key)
                continue
            if old is not None and "lk" in old and "Item" not in reason:
                out.locked.append(dict(old))
            ref = chunk_ref(old) if old else None
            version = int(old["n"]["N"]) if old and "n" in old else 0
            locked = old is not None and "lk" in old
            if ref != pinned.get(op.key) and op.expect in (None, version) and not locked:
                # Only the chunk guard failed (an unconditional write fails on
                # nothing else): retry guarding the chunks there now, if any.
                out.pins[op.key] = ref
                continue
        out.failed.append(op.key)
    return out
