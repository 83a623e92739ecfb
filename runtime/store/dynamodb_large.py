"""Commits past DynamoDB's 100 transaction items: locks, one commit record as
the commit point, then the writes (issue 15; Percolator-like).

`TransactWriteItems` takes at most 100 items, and a mutation may write
thousands (a bulk delete). `DynamoDBStore.transact` sends a commit of up to
100 items as one call (unchanged); a larger one goes through `LargeCommits`,
which keeps the port's contract: every op applies, or none does and
`TransactionConflict` says why.

Items (all in the store's one table, in partitions no core scan meets):
- the commit record R = ("~tx", txid): `st` = pending | committed | aborted,
  `dl` = deadline (epoch ms, LARGE_COMMIT_DEADLINE_SECONDS after the start),
  `ts` = the commit timestamp, `cnt` = number of ops;
- a payload item P_i = ("~txp:<txid>", i) per op: its key (`kp`, `ks`), kind
  (`o`) and what the apply writes (`dynamodb_items.Staged`); a put's chunks
  past the first are written as ordinary chunk items during staging, so the
  apply only points the item at them;
- a lock on each op's own item: `lk` = txid, `li` = i, `lts` = ts. On an
  absent key the lock creates a placeholder (key and lock, no version `n`),
  which every reader treats as absent.

Steps of `commit` and why:
1. Resolve up to LARGE_COMMIT_RECOVER crashed commits (records past their
   deadline), so their locks do not linger until a reader meets them.
2. Put R pending, before anything else: a lock is only ever written while
   its R exists ("a lock exists => its R exists", see 8), so whoever meets a
   lock can learn the commit's fate.
3. Stage the payloads (BatchWriteItem, in parallel; unconditional: the keys
   are private to the txid).
4. Lock every op's item, 100 a TransactWriteItems, in parallel, each under
   the op's own condition (expected version, chunk guard, Bump value) plus
   `attribute_not_exists(lk)`. A lock changes neither value nor version, so
   until the commit point every reader still sees the old state; and since
   small commits also require `attribute_not_exists(lk)`, nobody writes a
   locked item: the expectations checked here hold until the apply. A failed
   condition aborts (7) and raises TransactionConflict(keys), after
   resolving the other commit's lock it met, if any, as a reader would.
5. The commit point: R pending -> committed (condition st = pending). After
   it the commit has happened, whoever finishes it. If the condition fails,
   someone aborted R (we passed our deadline): abort and conflict. If the
   answer is lost, R is read: committed means committed.
6. Apply: each op's write conditioned on `lk = txid` (so it applies at most
   once, whoever applies it), clearing the lock; 100 a TransactWriteItems in
   parallel; a batch cancelled because a reader already rolled some entry
   forward is re-sent entry by entry. Old chunks of overwritten values are
   retired as in the one-call path.
7. Abort (before the commit point): R pending -> aborted (if R is already
   committed, finish as committed instead), then every item still locked by
   the txid is unlocked (lock removed; a placeholder deleted), conditioned on
   `lk = txid`.
8. Clean up: payloads (and an aborted commit's staged chunks), then R, only
   once no lock of the commit is left.

Who may abort: the committer, before its commit point; anyone else only a
pending R past its deadline (a crashed or stalled committer). Committed and
aborted never change, so this process caches them.

Readers (`resolve`: get, scan, versions, and a small commit's failed
condition) resolve a locked item by its R:
- committed: roll the key forward (its apply, from P_li), re-read it;
- pending, deadline not passed: the commit point is not passed: the item as
  it is without the lock (a placeholder is absent). Sound because a
  validation re-read (`versions`) resolves locks too: a reader that saw the
  old value of a key whose commit then lands fails its validation;
- pending past its deadline: abort R, then as aborted;
- aborted, or R gone (cleaned up after its locks: the lock read was stale):
  roll the key back (conditional), re-read it.

The change feed: lock and unlock writes change neither `ts` nor `n`, so
`record_change` skips them; placeholders have no `f`; an apply writes the
commit's `ts`, and a delete's REMOVE record takes its ts from `lts`.

Crash safety: a crash anywhere leaves R with a deadline; its locks are
resolved by whoever meets them and the record by the next large commit's
step 1 (`recover`). Fault injection for tests: `faults(point)` is called at
"staged", "locked:<batch>", "locked", "committed", "applied:<batch>"; an
exception it raises (not a StoreError or TransactionConflict) propagates as a
crash: no abort, no cleanup.

Known leaks (garbage, never wrong reads): old chunks of a value overwritten
by a roll-forward other than the committer's are not marked to expire; a
committer stalled past its deadline whose record was recovered may stage
payload items after the cleanup (it removes them itself when its commit
point fails).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Event, Lock
from typing import Any, TypeVar

from runtime.limits import (
    LARGE_COMMIT_DEADLINE_SECONDS,
    LARGE_COMMIT_RECOVER,
    LARGE_COMMIT_THREADS,
    TRANSACTION_ITEMS,
)

from .dynamodb_calls import (
    aws_errors,
    batch_get,
    batch_write,
    call,
    conditional_transaction,
    error_code,
    retire_chunks,
    send_transaction,
    write_each,
)
from .dynamodb_items import (
    AttrMap,
    ChunkRef,
    Staged,
    apply_entry,
    chunk_keys,
    chunk_ref,
    decode_key,
    encode_key,
    lock_entry,
    payload_item,
    stage,
    staged_of,
    unlock_entry,
)
from .port import Key, Op, StoreError, TransactionConflict

__all__ = ["RECORD_PARTITION", "LargeCommits"]

log = logging.getLogger("runtime.store.dynamodb")

RECORD_PARTITION = "~tx"
PAYLOAD_PARTITION = "~txp:"

Faults = Callable[[str], None]
T = TypeVar("T")


def _record_key(txid: str) -> AttrMap:
    return {"pk": {"S": RECORD_PARTITION}, "sk": {"B": txid.encode()}}


def _payload_partition(txid: str) -> str:
    return PAYLOAD_PARTITION + txid


def _batches(n: int, size: int = TRANSACTION_ITEMS) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _now_ms() -> int:
    return int(time.time() * 1000)


class LargeCommits:
    """The large-commit protocol on one table (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        deadline_seconds: float = LARGE_COMMIT_DEADLINE_SECONDS,
        threads: int = LARGE_COMMIT_THREADS,
    ) -> None:
        self._client = client
        self._table = table
        self.deadline_seconds = deadline_seconds
        self._threads = threads
        self._final: dict[str, tuple[str, int]] = {}
        """txid -> (committed | aborted, ts): final states never change."""
        self._final_lock = Lock()

    # ---- helpers -----------------------------------------------------------------

    def _parallel(self, fn: Callable[[int], T], count: int) -> list[T]:
        """fn(0..count-1) on the pool. Once a call fails the calls not yet
        started are skipped (a crash stops the committer), and the first error
        (a conflict before a StoreError before anything else) is raised once
        the running ones are done."""
        if count <= 1:
            return [fn(i) for i in range(count)]
        failed = Event()

        def guarded(i: int) -> T | None:
            if failed.is_set():
                return None
            try:
                return fn(i)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(max_workers=min(self._threads, count)) as pool:
            futures = [pool.submit(guarded, i) for i in range(count)]
            errors = [f.exception() for f in futures]
        raised = [e for e in errors if e is not None]
        for kind in (TransactionConflict, StoreError, BaseException):
            for e in raised:
                if isinstance(e, kind):
                    raise e
        return [f.result() for f in futures]  # type: ignore[misc]

    def write_all(self, entries: Sequence[AttrMap], faults: Faults | None = None) -> None:
        """Conditional writes (applies, unlocks), 100 a TransactWriteItems in
        parallel; a cancelled batch (some condition already resolved by
        someone else, or a transient conflict) is re-sent entry by entry."""
        parts = _batches(len(entries))

        def one(b: int) -> None:
            batch = [entries[i] for i in parts[b]]
            if send_transaction(self._client, self._table, batch) is not None:
                write_each(self._client, self._table, batch)
            if faults is not None:
                faults(f"applied:{b}")

        self._parallel(one, len(parts))

    def _read(self, keys: Sequence[AttrMap]) -> list[AttrMap]:
        return batch_get(self._client, self._table, keys)

    # ---- the commit record -------------------------------------------------------

    def _record(self, txid: str) -> AttrMap | None:
        resp = call(
            self._table,
            "GetItem",
            self._client.get_item,
            TableName=self._table,
            Key=_record_key(txid),
            ConsistentRead=True,
        )
        item: AttrMap | None = resp.get("Item")
        return item

    def _remember(self, txid: str, state: str, ts: int) -> None:
        if state in ("committed", "aborted"):
            with self._final_lock:
                self._final[txid] = (state, ts)

    def _set_state(self, txid: str, to: str) -> str:
        """R pending -> `to`; the state R is in afterwards ("gone" if absent)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_record_key(txid),
                UpdateExpression="SET #st = :to",
                ConditionExpression="#st = :pending",
                ExpressionAttributeNames={"#st": "st"},
                ExpressionAttributeValues={":to": {"S": to}, ":pending": {"S": "pending"}},
            )
            return to
        except aws_errors() as e:
            if error_code(e)[0] != "ConditionalCheckFailedException":
                # The outcome is unknown (a lost answer): read what happened.
                log.warning("setting commit record %s to %s: %s", txid, to, e)
        record = self._record(txid)
        return "gone" if record is None else str(record["st"]["S"])

    def state(self, txid: str) -> tuple[str, int]:
        """(committed | aborted | pending | gone, ts) of commit `txid`; a
        pending one past its deadline is aborted first."""
        with self._final_lock:
            if txid in self._final:
                return self._final[txid]
        for _ in range(3):
            record = self._record(txid)
            if record is None:
                return "gone", 0
            st, ts = str(record["st"]["S"]), int(record["ts"]["N"])
            if st == "pending" and int(record["dl"]["N"]) < _now_ms():
                st = self._set_state(txid, "aborted")
                if st == "pending":
                    continue
            self._remember(txid, st, ts)
            return st, ts
        raise StoreError(f"the state of large commit {txid} kept changing")

    # ---- readers -----------------------------------------------------------------

    def resolve(self, raws: Sequence[AttrMap]) -> list[AttrMap | None]:
        """`raws` (items as read, with their keys) with every lock resolved:
        an item as it stands outside any commit in progress, None when absent
        (see "Readers" in the module docstring)."""
        out: list[AttrMap | None] = list(raws)
        for _ in range(8):
            locked = [i for i, r in enumerate(out) if r is not None and "lk" in r]
            if not locked:
                return out
            states = {t: self.state(t) for t in {self._lk(out[i]) for i in locked}}
            forward: list[AttrMap] = []
            back: list[AttrMap] = []
            reread: list[int] = []
            for i in locked:
                raw = out[i]
                assert raw is not None
                st = states[self._lk(raw)][0]
                if st == "pending":
                    out[i] = _without_lock(raw)
                    continue
                (forward if st == "committed" else back).append(raw)
                reread.append(i)
            if forward:
                self._roll_forward(forward, states)
            if back:
                self.write_all([unlock_entry(self._table, r) for r in back])
            if reread:
                keys = {decode_key(_present(out[i])): i for i in reread}
                fresh = {decode_key(r): r for r in self._read([encode_key(k) for k in keys])}
                for key, i in keys.items():
                    out[i] = fresh.get(key)
        raise StoreError("locks of large commits kept appearing on items being read")

    @staticmethod
    def _lk(raw: AttrMap | None) -> str:
        return str(_present(raw)["lk"]["S"])

    def _roll_forward(self, raws: list[AttrMap], states: Mapping[str, tuple[str, int]]) -> None:
        wanted = [
            {
                "pk": {"S": _payload_partition(self._lk(r))},
                "sk": {"B": int(r["li"]["N"]).to_bytes(4, "big")},
            }
            for r in raws
        ]
        entries = []
        for p in self._read(wanted):
            txid = str(p["pk"]["S"])[len(PAYLOAD_PARTITION) :]
            _, staged = staged_of(p)
            entries.append(apply_entry(self._table, staged, txid, states[txid][1]))
        # A payload missing: its commit was cleaned up, so its locks are gone.
        self.write_all(entries)

    def resolve_locked(self, raws: Sequence[Mapping[str, Any]]) -> None:
        """Resolve the locks a small commit's failed conditions met (so a
        re-run can pass); errors are logged, the conflict stands anyway."""
        try:
            self.resolve([dict(r) for r in raws])
        except _failures() as e:
            log.warning("could not resolve the locks of large commits: %s", e)

    # ---- the commit ----------------------------------------------------------------

    def commit(self, ops: Sequence[Op], ts: int, faults: Faults | None = None) -> None:
        """Apply `ops` atomically (any number), or raise TransactionConflict /
        StoreError with nothing applied."""
        fault = faults or (lambda _point: None)
        self.recover_expired()
        txid = os.urandom(16).hex()
        chunks: list[AttrMap] = []
        staged = [stage(self._table, op, chunks) for op in ops]
        dl = _now_ms() + int(self.deadline_seconds * 1000)
        call(
            self._table,
            "PutItem",
            self._client.put_item,
            TableName=self._table,
            Item={
                **_record_key(txid),
                "st": {"S": "pending"},
                "dl": {"N": str(dl)},
                "ts": {"N": str(ts)},
                "cnt": {"N": str(len(ops))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        chunk_items = [c["Put"]["Item"] for c in chunks]
        try:
            self._stage(txid, staged, chunk_items)
            fault("staged")
            pinned = self._lock(txid, ops, ts, fault)
            fault("locked")
            st = self._set_state(txid, "committed")
            if st != "committed":
                raise TransactionConflict(
                    [], f"large commit {txid} passed its deadline and was aborted"
                )
        except _failures(conflicts=True):
            if not self._abort(txid, staged, chunk_items):
                raise
            return  # the commit point had passed after all: finished by the abort
        self._remember(txid, "committed", ts)
        fault("committed")
        self.write_all([apply_entry(self._table, s, txid, ts) for s in staged], fault)
        retire_chunks(self._client, self._table, pinned.values())
        self._cleanup(txid, len(staged), [])

    def _stage(self, txid: str, staged: Sequence[Staged], chunk_items: list[AttrMap]) -> None:
        part = _payload_partition(txid)
        requests = [
            {"PutRequest": {"Item": payload_item(part, i, s)}} for i, s in enumerate(staged)
        ]
        requests += [{"PutRequest": {"Item": c}} for c in chunk_items]
        parts = _batches(len(requests), 25 * 4)
        self._parallel(
            lambda b: batch_write(self._client, self._table, [requests[i] for i in parts[b]]),
            len(parts),
        )

    def _lock(self, txid: str, ops: Sequence[Op], ts: int, fault: Faults) -> dict[Key, ChunkRef]:
        parts = _batches(len(ops))

        def one(b: int) -> dict[Key, ChunkRef]:
            batch = [ops[i] for i in parts[b]]

            def build(pinned: Mapping[Key, ChunkRef]) -> list[AttrMap]:
                return [
                    lock_entry(self._table, ops[i], pinned.get(ops[i].key), txid, i, ts)
                    for i in parts[b]
                ]

            try:
                pins = conditional_transaction(self._client, self._table, batch, build)
            except TransactionConflict as e:
                other = [r for r in getattr(e, "locked", []) if self._lk(r) != txid]
                if other:
                    self.resolve_locked(other)
                raise
            fault(f"locked:{b}")
            return pins

        pinned: dict[Key, ChunkRef] = {}
        for pins in self._parallel(one, len(parts)):
            pinned.update(pins)
        return pinned

    def _abort(self, txid: str, staged: Sequence[Staged], chunk_items: list[AttrMap]) -> bool:
        """Abort our own commit before its commit point (best effort: what is
        left is recovered past the deadline). True if R turned out committed
        (the answer of our commit point was lost): then it is finished instead."""
        try:
            st = self._set_state(txid, "aborted")
            if st == "committed":
                self._finish(txid, staged)
                return True
            self._remember(txid, "aborted", 0)
            self._unlock(txid, [s.key for s in staged])
            self._cleanup(txid, len(staged), [_key_of(c) for c in chunk_items])
        except _failures() as e:
            log.warning("aborting large commit %s left it to recovery: %s", txid, e)
        return False

    def _unlock(self, txid: str, keys: Sequence[Key]) -> None:
        items = self._read([encode_key(k) for k in keys])
        mine = [r for r in items if r.get("lk", {}).get("S") == txid]
        self.write_all([unlock_entry(self._table, r) for r in mine])

    def _cleanup(self, txid: str, count: int, chunks: Sequence[AttrMap]) -> None:
        """Payloads and `chunks` (an aborted commit's staged chunks), then R.
        Only called once no lock of `txid` is left."""
        part = _payload_partition(txid)
        keys = [{"pk": {"S": part}, "sk": {"B": i.to_bytes(4, "big")}} for i in range(count)]
        requests = [{"DeleteRequest": {"Key": k}} for k in [*keys, *chunks]]
        parts = _batches(len(requests), 25 * 4)
        self._parallel(
            lambda b: batch_write(self._client, self._table, [requests[i] for i in parts[b]]),
            len(parts),
        )
        call(
            self._table,
            "DeleteItem",
            self._client.delete_item,
            TableName=self._table,
            Key=_record_key(txid),
        )

    def _finish(self, txid: str, staged: Sequence[Staged]) -> None:
        _, ts = self.state(txid)
        self.write_all([apply_entry(self._table, s, txid, ts) for s in staged])
        self._cleanup(txid, len(staged), [])

    # ---- recovery ------------------------------------------------------------------

    def _payloads(self, txid: str) -> Iterator[AttrMap]:
        start: AttrMap | None = None
        while True:
            kw: AttrMap = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": {":p": {"S": _payload_partition(txid)}},
                "ConsistentRead": True,
            }
            if start is not None:
                kw["ExclusiveStartKey"] = start
            resp = call(self._table, "Query", self._client.query, **kw)
            yield from resp.get("Items", [])
            start = resp.get("LastEvaluatedKey")
            if start is None:
                return

    def recover(self, txid: str) -> str:
        """Finish commit `txid` whatever its committer did: roll a committed
        one forward, abort a pending one past its deadline, unlock an aborted
        one, then clean up. Returns the state it found (pending: left alone)."""
        st, ts = self.state(txid)
        if st in ("pending", "gone"):
            return st
        staged = [staged_of(p) for p in self._payloads(txid)]
        count = max((i + 1 for i, _ in staged), default=0)
        if st == "committed":
            self.write_all([apply_entry(self._table, s, txid, ts) for _, s in staged])
            self._cleanup(txid, count, [])
            return st
        self._unlock(txid, [s.key for _, s in staged])
        chunks = [
            k for _, s in staged if (ref := chunk_ref(s.attrs)) is not None for k in chunk_keys(ref)
        ]
        self._cleanup(txid, count, chunks)
        return st

    def recover_expired(self, limit: int = LARGE_COMMIT_RECOVER) -> int:
        """Recover up to `limit` commits past their deadline (crashed ones);
        failures are logged, never raised. Returns how many were resolved."""
        try:
            resp = call(
                self._table,
                "Query",
                self._client.query,
                TableName=self._table,
                KeyConditionExpression="pk = :p",
                FilterExpression="#dl < :now",
                ExpressionAttributeNames={"#dl": "dl"},
                ExpressionAttributeValues={
                    ":p": {"S": RECORD_PARTITION},
                    ":now": {"N": str(_now_ms())},
                },
                ConsistentRead=True,
                Limit=100,
            )
            done = 0
            for record in resp.get("Items", [])[:limit]:
                if self.recover(bytes(record["sk"]["B"]).decode()) != "pending":
                    done += 1
            return done
        except _failures(conflicts=True) as e:
            log.warning("recovering crashed large commits failed: %s", e)
            return 0


def _failures(*, conflicts: bool = False) -> tuple[type[Exception], ...]:
    """What a failed call raises: StoreError, or botocore's errors (and a
    TransactionConflict with `conflicts`)."""
    found: tuple[type[Exception], ...] = (StoreError, *aws_errors())
    return (TransactionConflict, *found) if conflicts else found


def _present(raw: AttrMap | None) -> AttrMap:
    if raw is None:
        raise StoreError("internal: a resolved item vanished")
    return raw


def _without_lock(raw: AttrMap) -> AttrMap | None:
    """An item locked by a commit still pending, as it is outside it."""
    if "n" not in raw:
        return None  # a placeholder: the key is absent
    return {a: x for a, x in raw.items() if a not in ("lk", "li", "lts")}


def _key_of(item: Mapping[str, Any]) -> AttrMap:
    return {"pk": item["pk"], "sk": item["sk"]}
