"""Mutation requests over the socket are applied once (PROTOCOL rule 4).

A reconnecting client re-sends the mutations it has no answer for, under
the same (session id, request id). The mutation's transaction records its
result under that pair (`record`), so a re-sent request finds the record
(`replay`) and gets the recorded result without running again.

A record answers only the request it was made for: it holds a fingerprint
of the function path and the encoded arguments, and a different mutation
under a reused (session, request id) is refused (a failed response that
says so), never reported as done with another mutation's result.

Trimming. A client re-sends a request only while it has no answer for it,
and only when it reconnects; so a record is needed from its commit until
the client has seen the answer, which for a client that stays connected or
reconnects (clients retry within seconds to minutes) is short. Records are
kept for MUTATION_RECORD_RETENTION_SECONDS (a day: a laptop that slept
through the response still finds its record when it wakes). Each record
also files a time entry, in one of a few shards by session, written in the
same transaction; after a mutation records a result, the shell sweeps up to
MUTATION_RECORD_SWEEP expired records of that shard (`sweep`). Every new
record thus removes more than one expired one, so the records alive are
those of the retention window plus a bounded backlog, on every store,
without a background job. Request ids, not time, could not bound it: a
client may have any number of mutations in flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.errors import PlatformError
from runtime.limits import MUTATION_RECORD_RETENTION_SECONDS, MUTATION_RECORD_SWEEP
from runtime.store.port import Delete, Key, Store, StoreError, TransactionConflict
from runtime.values import dumps, loads

__all__ = [
    "Prior",
    "RequestReused",
    "fingerprint",
    "record",
    "replay",
    "request_key",
    "sweep",
]

SHARDS = 8
"""Time entries are spread over this many partitions (DynamoDB: no single
hot partition takes every socket mutation's entry)."""

_VERSION = b"\x01"
"""First byte of a record (a bare encoded value before fingerprints)."""
_FINGERPRINT = 16


class RequestReused(PlatformError):
    code = "REQUEST_ID_REUSED"


class _Tx(Protocol):
    def system_get(self, key: Key) -> bytes | None: ...

    def system_put(self, key: Key, value: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Prior:
    """What a request found recorded: the result of the same mutation (a
    replay), or a refusal (`refused`: the message) when the record is
    another mutation's."""

    value: Any = None
    refused: str | None = None


def request_key(session_id: str, request_id: int) -> Key:
    """Where a mutation request's result is recorded (session ids are
    checked to be short printable ASCII when the client connects)."""
    return (f"s:mutreq:{session_id}", request_id.to_bytes(8, "big"))


def fingerprint(path: str, args: Any) -> bytes:
    """Identifies (function path, encoded arguments)."""
    digest = hashlib.blake2b(digest_size=_FINGERPRINT)
    for part in (path.encode(), dumps(args)):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


def replay(tx: _Tx, key: Key, fp: bytes) -> Prior | None:
    """The prior outcome of this request if it already committed, in the
    mutation's transaction (None: run it)."""
    raw = tx.system_get(key)
    if raw is None:
        return None
    if raw[:1] == _VERSION and raw[1 : 1 + _FINGERPRINT] == fp:
        return Prior(loads(raw[1 + _FINGERPRINT + 8 :]))
    request_id = int.from_bytes(key[1], "big")
    return Prior(
        refused=f"{RequestReused.code}: request {request_id} of this session already ran "
        "a different mutation (another function or other arguments); its result is not "
        "this one's. A client numbers each new mutation with a fresh request id and "
        "re-sends a request id only for the same mutation."
    )


def record(tx: _Tx, key: Key, fp: bytes, value: Any, *, now: int | None = None) -> None:
    """Record a request's result with the mutation's writes, and file its
    time entry for `sweep`."""
    at = time.time_ns() if now is None else now
    tx.system_put(key, _VERSION + fp + at.to_bytes(8, "big") + dumps(value))
    tx.system_put(_time_key(key, at), json.dumps([key[0], key[1].hex()]).encode())


def sweep(
    store: Store,
    session_id: str,
    *,
    now: int | None = None,
    retention: float = MUTATION_RECORD_RETENTION_SECONDS,
    limit: int = MUTATION_RECORD_SWEEP,
) -> int:
    """Delete up to `limit` records older than `retention` seconds from the
    shard of `session_id`'s time entries; how many were deleted. A sweep
    that loses a race with another is harmless (the next one retries)."""
    now = time.time_ns() if now is None else now
    cutoff = max(0, now - int(retention * 1e9))
    try:
        expired = store.scan(_shard(session_id), b"", cutoff.to_bytes(8, "big"), limit=limit)
        ops: list[Delete] = []
        for item in expired:
            partition, sort = json.loads(item.value)
            ops.append(Delete(item.key, expect=item.version))
            ops.append(Delete((partition, bytes.fromhex(sort))))
        if ops:
            store.transact(ops)
    except (TransactionConflict, StoreError):
        return 0
    return len(expired)


def _shard(session_id: str) -> str:
    n = hashlib.blake2b(session_id.encode(), digest_size=2).digest()[0] % SHARDS
    return f"s:mutreq-at:{n}"


def _time_key(key: Key, at: int) -> Key:
    session_id = key[0].removeprefix("s:mutreq:")
    unique = hashlib.blake2b(key[0].encode() + b"\0" + key[1], digest_size=8).digest()
    return (_shard(session_id), at.to_bytes(8, "big") + unique)
