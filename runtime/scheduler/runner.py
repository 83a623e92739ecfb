"""Running scheduled functions: one queue record -> the job's state machine.

The job document (`_scheduled_functions`) is the truth; a queue record only
says "look at this job then" (runtime/functions/scheduler.py). Whoever
reaches a record (the embedded timer, the AWS scheduler Lambda, the sweep)
calls `JobRunner.run(job_id, record_key)`, and the job's state decides:

- pending mutation: ONE transaction reads the job (its version joins the
  read set), runs the handler and marks the job `success`, deleting the
  record. A crash before the commit leaves it pending, after it leaves it
  done; two runners of one job conflict on the job document and the loser's
  re-run finds it done and skips: exactly once. A handler that raises (or a
  function gone, arguments no longer valid) fails the job with the error
  text, in a second transaction, if it is still pending. A transient error
  (conflicts exhausted, the store unavailable) never fails a job: the
  record moves to now + backoff.
- pending action: tx1 marks it `inProgress` and writes a lease record due at
  now + the action timeout + JOB_LEASE_MARGIN_SECONDS (whose key marks it as
  this job's lease); the action runs outside any transaction; tx2 marks it
  `success` / `failed` (a job canceled meanwhile stays canceled) and
  deletes the lease. A worker that dies between leaves `inProgress`; the
  lease record, when reached, fails the job: at most once.
- anything else (final, gone, in progress reached through a record that is
  not its due lease): the record is dropped.

`faults` (tests): called with "committed" after a mutation job's commit and
"claimed" after an action's tx1; raising from it simulates the worker dying there.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from runtime.database import layout
from runtime.database.errors import OccConflictError
from runtime.database.transaction import Transaction
from runtime.functions.executor import CallResult, Executor, RequestError
from runtime.functions.scheduler import (
    FINAL,
    JOBS_TABLE,
    QUEUE_PREFIX,
    due_of,
    put_queue_record,
    queue_key,
)
from runtime.limits import (
    JOB_LEASE_MARGIN_SECONDS,
    JOB_QUEUE_SHARDS,
    JOB_RETRY_MAX_SECONDS,
    JOB_RETRY_SECONDS,
    JOB_TRIM_PAGE,
    SCHEDULED_RETENTION_SECONDS,
)
from runtime.store.port import Key, StoreError, TransactionConflict
from runtime.values import parse_id

__all__ = ["LOST_WORKER", "JobRunner", "Outcome", "is_lease", "lease_key"]

log = logging.getLogger("runtime.scheduler")

Outcome = Literal["success", "failed", "skipped", "retry", "lost", "early"]
"""What `run` did: ran it (success / failed), nothing to do (skipped), a
transient error moved the record (retry), failed an action whose worker
stopped (lost), or the record is a lease not due yet (early)."""

LOST_WORKER = "the worker running this action stopped before it finished (the action may or may not have completed)"

_TRANSIENT = (OccConflictError, StoreError, TransactionConflict)


def _lease_tag(job_id: str) -> bytes:
    return hashlib.sha256(b"lease\0" + job_id.encode()).digest()[:15]


def lease_key(job_id: str, due_ms: float, first: int) -> Key:
    """The lease record of a running action: its key ends with a tag derived
    from the job id, so a runner reaching it knows it is the lease."""
    return queue_key(due_ms, bytes([first & 0xFF]) + _lease_tag(job_id))


def is_lease(job_id: str, key: Key) -> bool:
    return key[0].startswith(QUEUE_PREFIX) and key[1][9:] == _lease_tag(job_id)


def _fields(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


class JobRunner:
    def __init__(
        self,
        executor: Executor,
        *,
        clock: Callable[[], float] = time.time,
        faults: Callable[[str], None] | None = None,
    ) -> None:
        self.executor = executor
        self._clock = clock
        self.faults = faults
        self._retries: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def _database(self) -> Any:
        return self.executor.database

    def _now(self) -> float:
        return self._clock() * 1000

    def _fault(self, point: str) -> None:
        if self.faults is not None:
            self.faults(point)

    # ---- one record --------------------------------------------------------------

    def run(self, job_id: str, record_key: Key) -> Outcome:
        """Handle one queue record (see the module's docstring). Raises only
        when even the bookkeeping failed (the store is down): the record
        stays and is reached again."""
        try:
            job = self._peek(job_id)
        except _TRANSIENT:
            return self._retry(job_id, record_key)
        if job is None or job["state"]["kind"] != "pending":
            return self._settle(job_id, record_key)
        defn = self.executor.registry.get(job["name"])
        if defn is not None and defn.kind == "action":
            return self._run_action(job_id, record_key, job)
        return self._run_mutation(job_id, record_key, job)

    def _peek(self, job_id: str) -> dict[str, Any] | None:
        """The job as stored, read outside any transaction: it only picks the
        path (which function, which kind); every decision is made again
        inside the transaction that acts on it."""
        if parse_id(job_id) is None:
            return None
        (item,) = self._database.store.get([layout.doc_key(job_id)])
        if item is None:
            return None
        stored = layout.decode_document(item.value)
        return stored.doc if stored.table == JOBS_TABLE else None

    def _run_mutation(self, job_id: str, key: Key, job: dict[str, Any]) -> Outcome:
        ran = [False]
        read: list[dict[str, Any]] = []
        """The job as this attempt's `before` read it (`after` writes it back)."""

        def before(tx: Transaction) -> bool:
            tx.system_delete_record(key)
            current = tx.get(job_id)
            read[:] = [] if current is None else [current]
            ran[0] = current is not None and current["state"]["kind"] == "pending"
            return ran[0]

        def after(tx: Transaction, value: Any) -> None:
            fields = _fields(read[0])
            fields["state"] = {"kind": "success"}
            fields["completedTime"] = self._now()
            tx.system_replace(job_id, fields)

        try:
            result = self.executor.run_job(job["name"], job["args"][0], before, after)
        except RequestError as e:
            return self._fail(job_id, key, f"{e.code}: {e.message}")
        if result.ok:
            self._fault("committed")
            self._done(job_id, result)
            return "success" if ran[0] else "skipped"
        if isinstance(result.error, _TRANSIENT):
            return self._retry(job_id, key)
        return self._fail(job_id, key, _error_text(result))

    def _run_action(self, job_id: str, key: Key, job: dict[str, Any]) -> Outcome:
        timeout = self.executor.action_timeout
        lease_due = self._now() + (timeout + JOB_LEASE_MARGIN_SECONDS) * 1000
        lease = lease_key(job_id, lease_due, key[1][8])

        def claim(tx: Transaction) -> bool:
            tx.system_delete_record(key)
            current = tx.get(job_id)
            if current is None or current["state"]["kind"] != "pending":
                return False
            fields = _fields(current)
            fields["state"] = {"kind": "inProgress"}
            tx.system_replace(job_id, fields)
            tx.system_put(lease, job_id.encode())
            return True

        try:
            claimed = self._database.mutation(claim).value
        except _TRANSIENT:
            return self._retry(job_id, key)
        if not claimed:
            return "skipped"
        self.executor.scheduled(due_of(lease))
        self._fault("claimed")
        try:
            result = self.executor.call(
                job["name"], job["args"][0], kind="action", public_only=False
            )
            error = None if result.ok else _error_text(result)
        except RequestError as e:
            error = f"{e.code}: {e.message}"

        def finish(tx: Transaction) -> None:
            tx.system_delete_record(lease)
            current = tx.get(job_id)
            if current is None or current["state"]["kind"] != "inProgress":
                return  # canceled while it ran: it stays canceled
            fields = _fields(current)
            fields["state"] = (
                {"kind": "success"} if error is None else {"kind": "failed", "error": error}
            )
            fields["completedTime"] = self._now()
            tx.system_replace(job_id, fields)

        self._database.mutation(finish)
        with self._lock:
            self._retries.pop(job_id, None)
        return "success" if error is None else "failed"

    def _settle(self, job_id: str, key: Key) -> Outcome:
        """A record of a job that is not pending: drop it; a due lease of an
        action still in progress fails the action (its worker stopped)."""
        now = self._now()

        def settle(tx: Transaction) -> Outcome:
            current = tx.get(job_id) if parse_id(job_id) is not None else None
            lease = is_lease(job_id, key)
            if (
                current is not None
                and current["state"]["kind"] == "inProgress"
                and lease
                and due_of(key) > now
            ):
                return "early"  # a live action's lease: leave it
            tx.system_delete_record(key)
            if current is None or current["state"]["kind"] != "inProgress" or not lease:
                return "skipped"
            fields = _fields(current)
            fields["state"] = {"kind": "failed", "error": LOST_WORKER}
            fields["completedTime"] = now
            tx.system_replace(job_id, fields)
            return "lost"

        outcome: Outcome = self._database.mutation(settle).value
        if outcome == "lost":
            log.warning("scheduled action %s: %s; marked failed", job_id, LOST_WORKER)
        return outcome

    def _fail(self, job_id: str, key: Key, error: str) -> Outcome:
        """The developer's error: the job fails with its text, if still pending."""

        def fail(tx: Transaction) -> None:
            tx.system_delete_record(key)
            current = tx.get(job_id)
            if current is None or current["state"]["kind"] != "pending":
                return
            fields = _fields(current)
            fields["state"] = {"kind": "failed", "error": error}
            fields["completedTime"] = self._now()
            tx.system_replace(job_id, fields)

        self._database.mutation(fail)
        with self._lock:
            self._retries.pop(job_id, None)
        return "failed"

    def _retry(self, job_id: str, key: Key) -> Outcome:
        """A transient error: the job stays pending, its record moves to now +
        backoff (doubling per retry of this job, up to the cap)."""
        with self._lock:
            n = self._retries.get(job_id, 0)
            self._retries[job_id] = n + 1
        delay = min(JOB_RETRY_MAX_SECONDS, JOB_RETRY_SECONDS * 2**n)
        due = self._now() + delay * 1000

        def move(tx: Transaction) -> None:
            tx.system_delete_record(key)
            put_queue_record(tx, job_id, due)

        self._database.mutation(move)
        log.warning("scheduled job %s: a transient error; tried again in %.0f s", job_id, delay)
        self.executor.scheduled(due)
        return "retry"

    def _done(self, job_id: str, result: CallResult) -> None:
        with self._lock:
            self._retries.pop(job_id, None)

    # ---- the queue -----------------------------------------------------------------

    def due(self, now_ms: float, limit: int) -> list[tuple[str, Key]]:
        """(job id, record key) of queue records due at or before `now_ms`,
        earliest first over all shards, at most `limit`."""
        hi = (int(now_ms) + 1).to_bytes(8, "big")
        found: list[tuple[int, str, Key]] = []
        store = self._database.store
        for shard in range(JOB_QUEUE_SHARDS):
            part = f"{QUEUE_PREFIX}{shard}"
            for item in store.scan(part, b"", hi, limit=max(1, limit)):
                found.append((due_of(item.key), item.value.decode(), item.key))
        found.sort(key=lambda f: (f[0], f[2]))
        return [(job_id, key) for _, job_id, key in found[:limit]]

    def next_due(self) -> float | None:
        """The earliest queue record's due time (ms), or None when there is none."""
        store = self._database.store
        times = []
        for shard in range(JOB_QUEUE_SHARDS):
            items = store.scan(f"{QUEUE_PREFIX}{shard}", b"", None, limit=1)
            if items:
                times.append(due_of(items[0].key))
        return float(min(times)) if times else None

    def recover_in_progress(self) -> int:
        """At the start of the only worker (the dev server): every action in
        progress belongs to a dead process; fail each at once through its
        lease record (all due before now + the action timeout + margin).
        Returns how many were failed."""
        # + 1 s: a lease taken this very millisecond is due a rounding later
        horizon = self._now() + (self.executor.action_timeout + JOB_LEASE_MARGIN_SECONDS + 1) * 1000
        failed = 0
        for job_id, key in self.due(horizon, 1 << 30):
            if not is_lease(job_id, key):
                continue
            failed += self._fail_lost(job_id, key)
        if failed:
            log.warning("%d scheduled action(s) in progress at start: %s", failed, LOST_WORKER)
        return failed

    def _fail_lost(self, job_id: str, key: Key) -> bool:
        now = self._now()

        def fail(tx: Transaction) -> bool:
            tx.system_delete_record(key)
            current = tx.get(job_id)
            if current is None or current["state"]["kind"] != "inProgress":
                return False
            fields = _fields(current)
            fields["state"] = {"kind": "failed", "error": LOST_WORKER}
            fields["completedTime"] = now
            tx.system_replace(job_id, fields)
            return True

        return bool(self._database.mutation(fail).value)

    def trim(self, now_ms: float, *, pages: int | None = None) -> int:
        """Delete finished jobs completed more than SCHEDULED_RETENTION_SECONDS
        ago. Only jobs created before the cutoff can qualify, so the scan (by
        creation time, JOB_TRIM_PAGE per transaction) stops there. `pages`:
        at most that many transactions (AWS's per-minute sweep: one)."""
        cutoff = now_ms - SCHEDULED_RETENTION_SECONDS * 1000
        after = 0.0
        deleted = 0
        page = 0
        while pages is None or page < pages:
            page += 1

            def sweep(tx: Transaction, after: float = after) -> tuple[int, float | None]:
                docs = (
                    tx.query(JOBS_TABLE, system=True)
                    .with_index(
                        "by_creation_time",
                        lambda q: q.gt("_creationTime", after).lt("_creationTime", cutoff),
                    )
                    .take(JOB_TRIM_PAGE)
                )
                n = 0
                for doc in docs:
                    state = doc["state"]["kind"]
                    done = doc.get("completedTime")
                    if state in FINAL and isinstance(done, float) and done < cutoff:
                        tx.system_delete(doc["_id"])
                        n += 1
                last = docs[-1]["_creationTime"] if len(docs) == JOB_TRIM_PAGE else None
                return n, last

            n, last = self._database.mutation(sweep).value
            deleted += n
            if last is None:
                break
            after = last
        return deleted


def _error_text(result: CallResult) -> str:
    """The job's `error`: the error's first line as Convex's log shows it."""
    return result.logged_message or result.error_message or "the function failed"
