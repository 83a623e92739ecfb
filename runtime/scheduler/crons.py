"""Running crons: one tick of a cron (`run_cron`, both shells) and the dev
server's cron source for the timer (`CronSource`).

Each cron has a state record `("s:cron", name)`, JSON
`{"last_tick": ms, "running_until": ms?}`, changed only in transactions:

- A mutation cron runs its handler and sets `last_tick = tick` in ONE
  transaction (`Executor.run_job`'s before/after hooks), after checking
  `last_tick < tick` in the same transaction. Two runners of one tick (a
  retried Lambda, two processes) conflict on the record: the loser re-runs,
  sees the tick done and skips. So each tick runs at most once, and once if
  a runner reaches it; mutations serialize, so runs never overlap.
- An action cron cannot run in a transaction: tx1 claims the tick
  (`last_tick = tick`, `running_until = now + action timeout + margin`)
  unless a run is still going (`running_until > now`: this tick is behind
  and skipped, as Convex does, its `last_tick` recorded); the action runs;
  tx2 clears `running_until` if it is still this run's. A worker that dies
  leaves `running_until`, which expires: at most one run at a time, a lost
  run never blocks the cron for longer than the lease.
- A run that fails (the handler raised) still consumes its tick: the error
  is in the call log, and the cron runs again at its next tick. A tick
  older than `last_tick` (a late duplicate) is skipped.

The embedded source keeps each cron's next tick in memory, computed from
its state record's `last_tick` (an interval: `last_tick + interval`, or one
interval after the source first saw the cron). After downtime only the
latest missed tick runs (`latest_at_or_before`), never the whole backlog.
A tick that comes while this process still runs the cron's previous one is
skipped locally too. On reload the crons are re-read and the state records
of removed crons deleted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runtime.database import Database
from runtime.database.transaction import Transaction
from runtime.functions.crons import CronJob, latest_at_or_before, next_after
from runtime.functions.executor import Executor, RequestError
from runtime.limits import CRON_LEASE_MARGIN_SECONDS
from runtime.store.port import Delete, Key, StoreError, TransactionConflict, scan_all

from .timer import Submit

__all__ = ["CRON_PARTITION", "CronSource", "CronState", "Outcome", "run_cron", "state_key"]

log = logging.getLogger("runtime.scheduler")

CRON_PARTITION = "s:cron"
Outcome = Literal["ran", "failed", "skipped", "behind", "unknown"]
"""ran / failed: the tick ran (the handler raised: failed); skipped: this
tick was already run (or a later one); behind: an action's previous run is
still going; unknown: no cron of that name (removed since)."""


def state_key(name: str) -> Key:
    return (CRON_PARTITION, name.encode())


@dataclass(frozen=True)
class CronState:
    last_tick: float | None = None
    running_until: float | None = None

    @staticmethod
    def decode(raw: bytes | None) -> CronState:
        if raw is None:
            return CronState()
        data = json.loads(raw)
        return CronState(data.get("last_tick"), data.get("running_until"))

    def encode(self) -> bytes:
        data: dict[str, float] = {}
        if self.last_tick is not None:
            data["last_tick"] = self.last_tick
        if self.running_until is not None:
            data["running_until"] = self.running_until
        return json.dumps(data, sort_keys=True).encode()

    def done(self, tick_ms: float) -> bool:
        return self.last_tick is not None and self.last_tick >= tick_ms


def _read(tx: Transaction, name: str) -> CronState:
    return CronState.decode(tx.system_get(state_key(name)))


def run_cron(
    executor: Executor,
    name: str,
    tick_ms: float,
    *,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Run tick `tick_ms` of cron `name` of the executor's registry (see the
    module docstring); the run is reported to the executor's `on_call`."""
    job = next((j for j in executor.registry.crons if j.name == name), None)
    if job is None:
        log.warning("cron %r is not in crons.py (removed?): tick %d not run", name, tick_ms)
        return "unknown"
    defn = executor.registry.get(job.path)
    if defn is not None and defn.kind == "action":
        return _run_action(executor, job, tick_ms, clock)
    return _run_mutation(executor, job, tick_ms)


def _run_mutation(executor: Executor, job: CronJob, tick_ms: float) -> Outcome:
    ran = False

    def before(tx: Transaction) -> bool:
        nonlocal ran
        ran = not _read(tx, job.name).done(tick_ms)
        return ran

    def after(tx: Transaction, value: Any) -> None:
        tx.system_put(state_key(job.name), CronState(tick_ms).encode())

    try:
        result = executor.run_job(job.path, job.args, before, after)
    except RequestError as e:  # the function is gone or its args no longer fit
        _consume(executor.database, job.name, tick_ms, e.message)
        return "failed"
    if not ran:
        return "skipped"
    if result.ok:
        return "ran"
    _consume(executor.database, job.name, tick_ms, result.logged_message or "")
    return "failed"


def _consume(database: Database, name: str, tick_ms: float, error: str) -> None:
    """A failed run's writes were discarded with its tick: record the tick
    as run (the error is in the call log), so no other runner repeats it."""
    log.warning("cron %r tick %d failed: %s", name, tick_ms, error)

    def body(tx: Transaction) -> None:
        state = _read(tx, name)
        if not state.done(tick_ms):
            tx.system_put(state_key(name), CronState(tick_ms, state.running_until).encode())

    try:
        database.mutation(body)
    except (TransactionConflict, StoreError) as e:  # the next tick runs regardless
        log.warning("cron %r: could not record failed tick %d: %s", name, tick_ms, e)


def _run_action(
    executor: Executor, job: CronJob, tick_ms: float, clock: Callable[[], float]
) -> Outcome:
    lease = (executor.action_timeout + CRON_LEASE_MARGIN_SECONDS) * 1000

    def claim(tx: Transaction) -> Outcome | float:
        state = _read(tx, job.name)
        if state.done(tick_ms):
            return "skipped"
        now = clock() * 1000
        if state.running_until is not None and state.running_until > now:
            tx.system_put(state_key(job.name), CronState(tick_ms, state.running_until).encode())
            return "behind"
        until = now + lease
        tx.system_put(state_key(job.name), CronState(tick_ms, until).encode())
        return until

    claimed = executor.database.mutation(claim).value
    if claimed == "skipped":
        return "skipped"
    if claimed == "behind":
        log.info("cron %r: tick %d skipped, its previous run is still going", job.name, tick_ms)
        return "behind"
    assert isinstance(claimed, float)
    try:
        result = executor.call(job.path, job.args, kind="action", public_only=False)
    except RequestError as e:  # refused before it ran (reported to on_call)
        log.warning("cron %r tick %d not run: %s", job.name, tick_ms, e.message)
        return "failed"
    finally:
        _release(executor.database, job.name, claimed)
    return "ran" if result.ok else "failed"


def _release(database: Database, name: str, until: float) -> None:
    def body(tx: Transaction) -> None:
        state = _read(tx, name)
        if state.running_until == until:  # still this run's lease
            tx.system_put(state_key(name), CronState(state.last_tick).encode())

    try:
        database.mutation(body)
    except (TransactionConflict, StoreError) as e:  # the lease expires on its own
        log.warning("cron %r: could not end its run's lease: %s", name, e)


def _same(old: CronJob | None, new: CronJob) -> bool:
    """The same cron across a reload (its function object is a new one)."""
    return old is not None and (old.schedule, old.path, old.args) == (
        new.schedule,
        new.path,
        new.args,
    )


class CronSource:
    """The dev server's crons as a source of the embedded timer
    (`runtime/scheduler/timer.py`'s TimerSource: `next_due`, `run_due`)."""

    def __init__(self, executor: Executor, *, clock: Callable[[], float] = time.time) -> None:
        self._executor = executor
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        """Each cron's next tick (ms)."""
        self._anchors: dict[str, float] = {}
        """When the source first saw a cron with no state: an interval's t0."""
        self._running: set[str] = set()
        self._jobs: dict[str, CronJob] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read the registry's crons: new ones get their next tick,
        changed ones a new one, removed ones lose their state record.
        Before the functions ever loaded (the first load failed), nothing is
        removed: an empty registry is no crons.py."""
        registry = self._executor.registry
        jobs = {j.name: j for j in registry.crons}
        loaded = registry.root is not None
        store = self._executor.database.store
        states = {
            item.key[1].decode(): (item, CronState.decode(item.value))
            for item in scan_all(store, CRON_PARTITION)
        }
        gone = [
            Delete(item.key, expect=item.version)
            for n, (item, _) in states.items()
            if n not in jobs and loaded
        ]
        if gone:
            try:
                store.transact(gone)
            except (TransactionConflict, StoreError) as e:  # the next reload retries
                log.warning("crons: could not delete the state of removed crons: %s", e)
        now = self._clock() * 1000
        with self._lock:
            old = self._jobs
            self._jobs = jobs
            for name in list(self._next):
                if name not in jobs:
                    del self._next[name]
                    self._anchors.pop(name, None)
            for name, job in jobs.items():
                if name in self._next and _same(old.get(name), job):
                    continue  # unchanged: keep its next tick
                state = states[name][1] if name in states else CronState()
                anchor = state.last_tick
                if anchor is None:
                    anchor = self._anchors.setdefault(name, now)
                due = next_after(job.schedule, anchor)
                if due is None:
                    self._next.pop(name, None)
                else:
                    self._next[name] = due

    def next_due(self, now_ms: float) -> float | None:
        with self._lock:
            return min(self._next.values(), default=None)

    def run_due(self, now_ms: float, submit: Submit) -> None:
        with self._lock:
            due = [(n, t) for n, t in self._next.items() if t <= now_ms]
            for name, first in due:
                job = self._jobs[name]
                # after downtime (or a slow timer) only the latest missed tick
                tick = latest_at_or_before(job.schedule, now_ms, first) or first
                upcoming = next_after(job.schedule, tick)
                if upcoming is None:
                    del self._next[name]
                else:
                    self._next[name] = upcoming
                if name in self._running:
                    log.info(
                        "cron %r: tick %d skipped, its previous run is still going", name, tick
                    )
                    continue
                self._running.add(name)
                submit(self._runner(name, tick))

    def _runner(self, name: str, tick: float) -> Callable[[], None]:
        def run() -> None:
            try:
                run_cron(self._executor, name, tick, clock=self._clock)
            except Exception:
                log.exception("cron %r: tick %d could not run", name, tick)
            finally:
                with self._lock:
                    self._running.discard(name)

        return run
