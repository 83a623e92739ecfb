"""A record many processes share, worked on by one at a time: a lease plus a
"dirty" mark, through the storage port's conditional writes.

The AWS shell has no long-lived process to own a connection or a shared
query: any Lambda may need to push to a connection or re-run a query. Each
such record carries a lease (holder, expiry) and has a companion mark item
that anyone may bump. The protocol:

- `acquire` reads the record and the mark together and, if the lease is free
  (or expired), writes itself in as holder, conditional on the version read.
- Someone who finds it busy and only needs the work done again (a push, a
  refresh) calls `mark`: it bumps the mark, then tries `acquire` once more.
- `release` writes the record back and frees the lease in one transaction
  that also checks the mark is where `acquire` found it. If it moved, the
  work may have missed what the marker wanted: the record is saved with the
  lease kept and `release` says so; the holder runs the work again.

No request is lost: a marker's bump either precedes the holder's release
check (which then fails, so the holder works again) or follows the release
(so the marker's second `acquire` finds the lease free). Work always reads
the state it needs after `acquire`, so a new holder sees what the marker saw.
A holder that dies leaves the lease to expire (`ttl`).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.store.port import Bump, Check, Delete, Key, Op, Put, Store, TransactionConflict

__all__ = ["Busy", "Held", "LeaseLost", "Leases"]


class LeaseLost(RuntimeError):
    """The lease expired and someone else took the record over."""


class Busy(RuntimeError):
    """The record stayed leased by someone else past the wait."""


@dataclass
class Held:
    key: Key
    mark_key: Key
    data: dict[str, Any]
    """The record's payload (the lease fields are kept out of it)."""
    version: int
    mark: int
    token: str
    """Who holds it: one token per acquisition, never shared."""


class Leases:
    def __init__(
        self,
        store: Store,
        holder: str,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self._clock = clock
        self._sleep = sleep

    def acquire(
        self, key: Key, mark_key: Key, *, create: dict[str, Any] | None = None
    ) -> Held | Busy | None:
        """The record under our lease; None if it does not exist (and
        `create` is None, else it is created with that payload); `Busy` if
        someone else holds it."""
        while True:
            record, mark = self.store.get([key, mark_key])
            mark_version = mark.version if mark is not None else 0
            if record is None or not record.value:
                if create is None:
                    return None
                data, version = dict(create), record.version if record is not None else 0
            else:
                stored = json.loads(record.value)
                lease = stored.pop("lease", None)
                if lease is not None and lease["until"] > self._clock():
                    return Busy(f"{key[0]} is leased by {lease['holder']}")
                data, version = stored, record.version
            token = f"{self.holder}/{uuid.uuid4().hex[:12]}"
            try:
                self.store.transact([Put(key, self._encode(data, token), expect=version)])
            except TransactionConflict:
                continue
            return Held(key, mark_key, data, version + 1, mark_version, token)

    def acquire_waiting(
        self, key: Key, mark_key: Key, *, timeout: float, create: dict[str, Any] | None = None
    ) -> Held | None:
        """`acquire`, waiting (with jittered backoff) while someone else holds it."""
        deadline = self._clock() + timeout
        delay = 0.005
        while True:
            got = self.acquire(key, mark_key, create=create)
            if not isinstance(got, Busy):
                return got
            if self._clock() > deadline:
                raise got
            self._sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.1)

    def mark(self, mark_key: Key) -> None:
        self.store.transact([Bump(mark_key)])

    def acquire_or_mark(
        self, key: Key, mark_key: Key, *, create: dict[str, Any] | None = None
    ) -> Held | None:
        """The record under our lease, or None: it does not exist (and
        `create` is None), or its holder was marked and will do the work."""
        got = self.acquire(key, mark_key, create=create)
        if not isinstance(got, Busy):
            return got
        self.mark(mark_key)
        got = self.acquire(key, mark_key, create=create)
        return None if isinstance(got, Busy) else got

    def release(self, held: Held, also: Sequence[Op] = ()) -> bool:
        """Save `held.data` and free the lease: True. False: the mark moved
        since `acquire` (the data is saved, the lease kept; work again).
        `also`: a few more writes (unconditional ones) made in the same
        transaction either way, saving a request."""
        try:
            self.store.transact(
                [
                    Put(held.key, self._encode(held.data, None), expect=held.version),
                    Check(held.mark_key, held.mark),
                    *also,
                ]
            )
            return True
        except TransactionConflict as e:
            if e.keys and held.mark_key not in e.keys:
                raise LeaseLost(f"{held.key[0]} was taken over") from e
        self.save(held, also)
        mark = self.store.get([held.mark_key])[0]
        held.mark = mark.version if mark is not None else 0
        return False

    def abandon(self, held: Held) -> None:
        """Free the lease after work that failed: `held.data` is saved as it
        is and the mark is not checked. What markers asked for meanwhile is
        done by the next worker, who need not wait for the lease to expire
        first. A lease already taken over is left alone."""
        try:
            self.store.transact([Put(held.key, self._encode(held.data, None), expect=held.version)])
        except TransactionConflict:
            return
        held.version += 1

    def save(self, held: Held, also: Sequence[Op] = ()) -> None:
        """Write `held.data`, keeping the lease (and extending it); `also`
        as for `release`."""
        try:
            self.store.transact(
                [Put(held.key, self._encode(held.data, held.token), expect=held.version), *also]
            )
        except TransactionConflict as e:
            raise LeaseLost(f"{held.key[0]} was taken over") from e
        held.version += 1

    def delete(self, held: Held, *extra: Key) -> bool:
        """Delete the record (and its mark, and `extra` keys) unless the mark
        moved: True; False as for `release` (nothing deleted, lease kept)."""
        ops: list[Any] = [Delete(held.key, expect=held.version), Check(held.mark_key, held.mark)]
        ops += [Delete(k) for k in extra]
        try:
            self.store.transact(ops)
        except TransactionConflict as e:
            if e.keys and held.mark_key not in e.keys:
                raise LeaseLost(f"{held.key[0]} was taken over") from e
            mark = self.store.get([held.mark_key])[0]
            held.mark = mark.version if mark is not None else 0
            return False
        self.store.transact([Delete(held.mark_key)])
        return True

    def _encode(self, data: dict[str, Any], token: str | None) -> bytes:
        out = dict(data)
        if token is not None:
            out["lease"] = {"holder": token, "until": self._clock() + self.ttl}
        return json.dumps(out, separators=(",", ":")).encode()
