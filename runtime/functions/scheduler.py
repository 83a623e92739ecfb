"""`ctx.scheduler` (API.md, Scheduler): `run_after`, `run_at`, `cancel`.

A scheduled function is a document of the system table `_scheduled_functions`
(`{name, args: [args], scheduledTime, state: {kind}, completedTime?}`), the
job's truth, plus a queue record `("s:jobq:<shard>", due ms as 8 big-endian
bytes + 16 random bytes) -> job id`, a hint saying "look at this job then".
Both are written in one transaction: the scheduling mutation's own (so a
mutation that fails schedules nothing) or, from an action, a small
transaction of its own at once (not undone if the action later fails, as
Convex's). The runner (`runtime/scheduler/runner.py`) decides from the job's
state alone, so a lost, duplicated or stale queue record breaks nothing.

The shard spreads the queue over JOB_QUEUE_SHARDS partitions (no single hot
DynamoDB partition). Limits: SCHEDULED_FUNCTIONS_PER_CALL jobs and
SCHEDULED_ARGS_BYTES of arguments per call (a mutation's attempt, an
action's whole run), each job's arguments within ARGUMENTS_BYTES.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.errors import InvalidIdError, PlatformError
from runtime.limits import (
    ARGUMENTS_BYTES,
    JOB_QUEUE_SHARDS,
    SCHEDULED_ARGS_BYTES,
    SCHEDULED_FUNCTIONS_PER_CALL,
)
from runtime.store.port import Key
from runtime.values import InvalidValueError, check_value, dumps, is_id_for

from .determinism import real_urandom
from .registry import FunctionDefinition

if TYPE_CHECKING:
    from runtime.database.transaction import Transaction

    from .executor import Executor

__all__ = [
    "JOBS_TABLE",
    "QUEUE_PREFIX",
    "ActionScheduler",
    "AsyncActionScheduler",
    "MutationScheduler",
    "SchedulerError",
    "cancel",
    "due_of",
    "queue_key",
    "schedule",
]

JOBS_TABLE = "_scheduled_functions"
QUEUE_PREFIX = "s:jobq:"
"""Partition prefix of the queue records (`runtime/aws/dispatch.py` reads it too)."""

FINAL = ("success", "failed", "canceled")


class SchedulerError(PlatformError):
    code = "SCHEDULER_ERROR"


def queue_key(due_ms: float, random16: bytes) -> Key:
    """The queue record of a job due at `due_ms` (sorted by due time within a shard)."""
    shard = random16[0] % JOB_QUEUE_SHARDS
    due = max(0, math.ceil(due_ms))
    return (f"{QUEUE_PREFIX}{shard}", due.to_bytes(8, "big") + random16)


def due_of(key: Key) -> int:
    """The due time (ms) a queue record's key holds."""
    return int.from_bytes(key[1][:8], "big")


def put_queue_record(tx: Transaction, job_id: str, due_ms: float) -> Key:
    key = queue_key(due_ms, real_urandom(16))
    tx.system_put(key, job_id.encode())
    return key


@dataclass
class Budget:
    """What one call has scheduled so far (the per-call limits)."""

    count: int = 0
    args_bytes: int = 0

    def take(self, size: int) -> None:
        if self.count + 1 > SCHEDULED_FUNCTIONS_PER_CALL:
            raise SchedulerError(
                f"this function scheduled more than {SCHEDULED_FUNCTIONS_PER_CALL} functions "
                "(SCHEDULED_FUNCTIONS_PER_CALL). Schedule one function that schedules the "
                "rest in batches.",
                limit="SCHEDULED_FUNCTIONS_PER_CALL",
            )
        if self.args_bytes + size > SCHEDULED_ARGS_BYTES:
            raise SchedulerError(
                f"the functions this function scheduled take more than {SCHEDULED_ARGS_BYTES:,} "
                "bytes of arguments in all (SCHEDULED_ARGS_BYTES). Pass ids of documents "
                "holding the data instead of the data.",
                limit="SCHEDULED_ARGS_BYTES",
            )
        self.count += 1
        self.args_bytes += size


def _due_ms(when: Any, now_ms: float, *, after: bool) -> float:
    if after:
        if isinstance(when, bool) or not isinstance(when, int | float) or math.isnan(when):
            raise SchedulerError(f"run_after: the delay is a number of milliseconds, got {when!r}")
        return now_ms + max(0.0, float(when))
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            raise SchedulerError(
                "run_at: a datetime needs a timezone (e.g. datetime.now(timezone.utc)); "
                "a naive one is ambiguous"
            )
        return when.timestamp() * 1000
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise SchedulerError(
            f"run_at: the time is ms since the epoch (a number) or a datetime, got {when!r}"
        )
    return float(when)


def schedule(
    tx: Transaction,
    executor: Executor,
    fn: str | FunctionDefinition,
    args: dict[str, Any] | None,
    due_ms: float,
    budget: Budget,
) -> tuple[str, float]:
    """Write a job (document + queue record) in `tx`; returns (its id, its due time)."""
    path, defn = executor.resolve(fn, kind=None, public_only=False)
    if defn.kind not in ("mutation", "action"):
        raise SchedulerError(
            f"{path} is a {defn.kind}: only mutations and actions can be scheduled"
        )
    if args is None:
        args = {}
    if type(args) is not dict:
        raise SchedulerError(
            f"arguments to scheduled '{path}' must be a dict, got {type(args).__name__}"
        )
    try:
        check_value(args, path="args")
    except InvalidValueError as e:
        raise SchedulerError(f"invalid arguments to scheduled '{path}': {e}") from None
    executor.check_args(path, defn, args)
    size = len(dumps(args))
    if size > ARGUMENTS_BYTES:
        raise SchedulerError(
            f"arguments to scheduled '{path}' are {size:,} bytes; the limit is "
            f"{ARGUMENTS_BYTES:,} (ARGUMENTS_BYTES)",
            limit="ARGUMENTS_BYTES",
        )
    budget.take(size)
    random16 = real_urandom(16)
    job = {"name": path, "args": [args], "scheduledTime": due_ms, "state": {"kind": "pending"}}
    job_id = tx.system_insert(JOBS_TABLE, job, random16)
    tx.system_put(queue_key(due_ms, random16), job_id.encode())
    return job_id, due_ms


def cancel(tx: Transaction, job_id: Any, now_ms: float) -> None:
    """A pending job (or a running action) -> canceled; a finished one: no-op."""
    if not isinstance(job_id, str) or not is_id_for(JOBS_TABLE, job_id):
        raise InvalidIdError(
            f"scheduler.cancel: {job_id!r} is not an id of a scheduled function (the id "
            "run_after / run_at returned)"
        )
    job = tx.get(job_id)
    if job is None or job["state"]["kind"] in FINAL:
        return
    fields = {k: v for k, v in job.items() if not k.startswith("_")}
    fields["state"] = {"kind": "canceled"}
    fields["completedTime"] = now_ms
    tx.system_replace(job_id, fields)


class MutationScheduler:
    """`ctx.scheduler` in a mutation: jobs join the mutation's transaction.
    `scheduled`: the due times written (the executor wakes the timer after
    the commit)."""

    def __init__(self, tx: Transaction, executor: Executor) -> None:
        self.__tx = tx
        self.__executor = executor
        self.__budget = Budget()
        self.scheduled: list[float] = []

    def run_after(
        self, delay_ms: float, fn: str | FunctionDefinition, args: dict[str, Any] | None = None
    ) -> str:
        return self.__schedule(_due_ms(delay_ms, time.time() * 1000, after=True), fn, args)

    def run_at(
        self,
        ts: float | dt.datetime,
        fn: str | FunctionDefinition,
        args: dict[str, Any] | None = None,
    ) -> str:
        return self.__schedule(_due_ms(ts, time.time() * 1000, after=False), fn, args)

    def cancel(self, scheduled_id: str) -> None:
        cancel(self.__tx, scheduled_id, time.time() * 1000)

    def __schedule(self, due: float, fn: str | FunctionDefinition, args: Any) -> str:
        job_id, due = schedule(self.__tx, self.__executor, fn, args, due, self.__budget)
        self.scheduled.append(due)
        return job_id

    def __repr__(self) -> str:
        return "<ctx.scheduler (mutation)>"


class ActionScheduler:
    """`ctx.scheduler` in an action: each call is its own small transaction,
    committed at once (a later failure of the action does not undo it)."""

    def __init__(self, executor: Executor) -> None:
        self.__executor = executor
        self.__budget = Budget()
        self.__lock = threading.Lock()

    def run_after(
        self, delay_ms: float, fn: str | FunctionDefinition, args: dict[str, Any] | None = None
    ) -> str:
        return self.__schedule(lambda now: _due_ms(delay_ms, now, after=True), fn, args)

    def run_at(
        self,
        ts: float | dt.datetime,
        fn: str | FunctionDefinition,
        args: dict[str, Any] | None = None,
    ) -> str:
        return self.__schedule(lambda now: _due_ms(ts, now, after=False), fn, args)

    def cancel(self, scheduled_id: str) -> None:
        self.__executor.database.mutation(lambda tx: cancel(tx, scheduled_id, time.time() * 1000))

    def __schedule(
        self, due: Callable[[float], float], fn: str | FunctionDefinition, args: Any
    ) -> str:
        when = due(time.time() * 1000)
        with self.__lock:  # the budget is the action's, across its threads
            budget = Budget(self.__budget.count, self.__budget.args_bytes)

            def body(tx: Transaction) -> tuple[str, float]:
                attempt = Budget(budget.count, budget.args_bytes)
                out = schedule(tx, self.__executor, fn, args, when, attempt)
                return out

            outcome = self.__executor.database.mutation(body)
            self.__budget.count += 1
            self.__budget.args_bytes += len(dumps(args or {}))
        job_id, at = outcome.value
        self.__executor.scheduled(at)
        return job_id

    def __repr__(self) -> str:
        return "<ctx.scheduler (action)>"


class AsyncActionScheduler:
    """`ctx.scheduler` in an `async def` action: awaitable, run in a worker thread."""

    def __init__(self, sync: ActionScheduler) -> None:
        self.__sync = sync

    async def run_after(
        self, delay_ms: float, fn: str | FunctionDefinition, args: dict[str, Any] | None = None
    ) -> str:
        return await asyncio.to_thread(self.__sync.run_after, delay_ms, fn, args)

    async def run_at(
        self,
        ts: float | dt.datetime,
        fn: str | FunctionDefinition,
        args: dict[str, Any] | None = None,
    ) -> str:
        return await asyncio.to_thread(self.__sync.run_at, ts, fn, args)

    async def cancel(self, scheduled_id: str) -> None:
        await asyncio.to_thread(self.__sync.cancel, scheduled_id)

    def __repr__(self) -> str:
        return "<ctx.scheduler (async action)>"
