"""The embedded timer: ONE thread for everything scheduled in a process (the
dev server's jobs and crons).

Each source says when it next has work (`next_due`) and starts what is due
(`run_due`, handing callables to `submit`, which runs them on a bounded
pool). The thread sleeps on a Condition until the earliest due time of all
sources, or until `notify(due_ms)` says something earlier was scheduled (the
executor calls it after a commit that scheduled a function). With nothing
due it sleeps until the next due time, or until notified: no polling, so an
idle server with 10,000 far-future jobs uses no CPU.

`JobSource` makes the job queue (runtime/scheduler/runner.py) a source: it
starts at most JOB_IN_FLIGHT records at a time (a record in flight is never
started twice) and wakes the timer as they finish; it fails the actions a
dead process left in progress and trims old jobs at start, then hourly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from runtime.functions.scheduler import QUEUE_PREFIX, due_of
from runtime.limits import (
    ACTION_WORKERS,
    JOB_IN_FLIGHT,
    JOB_QUEUE_SHARDS,
    JOB_RETRY_SECONDS,
    JOB_TRIM_INTERVAL_SECONDS,
)
from runtime.store.port import Key

from .runner import JobRunner

__all__ = ["JobSource", "Submit", "Timer", "TimerSource"]

log = logging.getLogger("runtime.scheduler")

Submit = Callable[[Callable[[], None]], None]


class TimerSource(Protocol):
    def next_due(self, now_ms: float) -> float | None:
        """When this source next has work (ms since the epoch), or None."""
        ...

    def run_due(self, now_ms: float, submit: Submit) -> None:
        """Start what is due at `now_ms` through `submit` (never blocking on it)."""
        ...


class Timer:
    def __init__(
        self,
        sources: Sequence[TimerSource],
        *,
        workers: int = ACTION_WORKERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = list(sources)
        self._clock = clock
        self._cond = threading.Condition()
        self._poked = False
        self._stopped = False
        self._awake = True
        self._sleeping_until: float | None = None
        """The due time the thread sleeps until (None: forever); a notify for
        a later time needs no wake-up."""
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scheduled")
        self._thread = threading.Thread(target=self._loop, name="timer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self, due_ms: float = 0.0) -> None:
        """Something is due at `due_ms`: wake the thread if it sleeps past it."""
        with self._cond:
            if (
                not self._awake
                and self._sleeping_until is not None
                and due_ms >= self._sleeping_until
            ):
                return
            self._poked = True
            self._cond.notify()

    def submit(self, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("a scheduled run failed")

        with contextlib.suppress(RuntimeError):  # the pool shut down: stopping
            self._pool.submit(run)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread; runs already started finish on their own (their
        threads are not waited for past `timeout`)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=timeout is None, cancel_futures=True)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                self._poked = False
                self._awake = True  # every notify counts until it sleeps again
            now = self._clock() * 1000
            due: float | None = None
            for source in self.sources:
                try:
                    source.run_due(now, self.submit)
                    nxt = source.next_due(self._clock() * 1000)
                except Exception:
                    log.exception("timer source %r failed; trying again shortly", source)
                    nxt = now + JOB_RETRY_SECONDS * 1000
                if nxt is not None and (due is None or nxt < due):
                    due = nxt
            with self._cond:
                self._sleeping_until = due
                self._awake = False
                while not self._poked and not self._stopped:
                    if due is None:
                        self._cond.wait()
                        continue
                    wait = (due - self._clock() * 1000) / 1000
                    if wait <= 0:
                        break
                    self._cond.wait(wait)


_LOW_WATER = JOB_IN_FLIGHT // 2
"""With a backlog of due records, the source starts more once the runs in
flight drop below this (a batch at a time, not one timer pass per run)."""


class JobSource:
    """The job queue as a timer source (see the module's docstring)."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        wake: Callable[[float], None] | None = None,
        trim_every: float = JOB_TRIM_INTERVAL_SECONDS,
    ) -> None:
        self.runner = runner
        self.wake = wake
        """The timer's `notify`: a finished run frees a slot."""
        self._lock = threading.Lock()
        self._in_flight: set[Key] = set()
        self._trim_every = trim_every
        self._next_trim = 0.0
        self._trimming = False

    def start(self) -> int:
        """At start: fail the actions a dead process left in progress."""
        return self.runner.recover_in_progress()

    def next_due(self, now_ms: float) -> float | None:
        with self._lock:
            busy = len(self._in_flight)
            skip = set(self._in_flight)
        store = self.runner.executor.database.store
        times = [] if self._trimming else [self._next_trim]
        for shard in range(JOB_QUEUE_SHARDS):
            items = store.scan(f"{QUEUE_PREFIX}{shard}", b"", None, limit=len(skip) + 1)
            for item in items:
                if item.key not in skip:
                    times.append(due_of(item.key))
                    break
        due = min(times) if times else None
        if due is not None and due <= now_ms and busy >= _LOW_WATER:
            # a backlog: taken up again when the runs in flight drop below the
            # low-water mark (`_runner` wakes the timer), a batch at a time
            return None
        return None if due is None else float(due)

    def run_due(self, now_ms: float, submit: Submit) -> None:
        if now_ms >= self._next_trim and not self._trimming:
            self._trimming = True
            self._next_trim = now_ms + self._trim_every * 1000
            submit(self._trim)
        with self._lock:
            room = JOB_IN_FLIGHT - len(self._in_flight)
            if room <= 0:
                return
            skip = set(self._in_flight)
        due = [
            (job_id, key)
            for job_id, key in self.runner.due(now_ms, room + len(skip))
            if key not in skip
        ][:room]
        with self._lock:
            for _, key in due:
                self._in_flight.add(key)
        for job_id, key in due:
            submit(self._runner(job_id, key))

    def _runner(self, job_id: str, key: Key) -> Callable[[], None]:
        def run() -> None:
            try:
                self.runner.run(job_id, key)
            except Exception:
                log.exception("scheduled job %s could not run; trying again shortly", job_id)
                time.sleep(JOB_RETRY_SECONDS)  # holds its slot: no hot loop on a dead store
            finally:
                with self._lock:
                    self._in_flight.discard(key)
                    resume = len(self._in_flight) == _LOW_WATER - 1
                if resume and self.wake is not None:
                    self.wake(0.0)  # next_due may have said None for a backlog

        return run

    def _trim(self) -> None:
        try:
            n = self.runner.trim(time.time() * 1000)
            if n:
                log.info("trimmed %d finished scheduled functions", n)
        finally:
            self._trimming = False
