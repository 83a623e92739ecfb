"""Short queries and mutations run on the event loop, not in a worker thread.

A call handed to a worker thread costs the dev server more than many a
mutation itself: a queue put and a thread wake-up, anyio's capacity limiter,
then the loop woken again through its self-pipe, each hop a GIL hand-off.
For `bank:transfer` from 16 kept-alive clients, running it on the loop took
the server's CPU per request from 912 to about 754 us and its throughput
from about 930 to 1,250 a second: the loop and the workers no longer queue
behind each other for the GIL (bench/functions.py's http_transfer_* figures).

So a function whose last INLINE_AFTER_SHORT_RUNS runs were each short runs
on the loop's own thread; any other (new, just reloaded, or one run over)
goes to a worker as before. A run is short when its thread's CPU time is
under INLINE_CALL_SECONDS, and, on the loop, its wall time (what it held the
loop for) under INLINE_WALL_SECONDS: wall time also counts waiting for the
GIL held by other threads, which is not the function's doing, so its bound
is looser, and in a worker, where waiting for the GIL is most of a run under
load, only the CPU time counts. A function that turns slow costs the loop
one slow run, then goes back to the workers until it has been short
INLINE_AFTER_SHORT_RUNS times again. Queries and mutations never wait on the
network or the loop (the determinism guard refuses I/O), so a run on the
loop waits only for the store's commit of the moment, or a `time.sleep` of
its own. Actions always run in their own pool.

Used by the dev server, whose store is in-process SQLite; a store across
the network (DynamoDB) would hold the loop for every round trip.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from runtime.functions.executor import CallResult
from runtime.limits import INLINE_AFTER_SHORT_RUNS, INLINE_CALL_SECONDS, INLINE_WALL_SECONDS

__all__ = ["InlineCalls"]


class InlineCalls:
    """Per function (its handler: a reload starts afresh), how many of its
    last runs in a row were short; `on_loop` says whether the next may run
    on the event loop."""

    def __init__(
        self,
        seconds: float = INLINE_CALL_SECONDS,
        wall_seconds: float = INLINE_WALL_SECONDS,
        after: int = INLINE_AFTER_SHORT_RUNS,
    ) -> None:
        self.seconds = seconds
        self.wall_seconds = wall_seconds
        self.after = after
        self._short: weakref.WeakKeyDictionary[Callable[..., Any], int] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def on_loop(self, handler: Callable[..., Any]) -> bool:
        return self._short.get(handler, 0) >= self.after

    def run_on_loop(
        self, handler: Callable[..., Any], call: Callable[[], CallResult]
    ) -> CallResult:
        """`call()` here, on the loop's thread: timed by its CPU and the wall clock."""
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return call()
        finally:
            wall = time.perf_counter() - started
            self._record(handler, time.thread_time() - cpu, wall < self.wall_seconds)

    def run_in_worker(
        self, handler: Callable[..., Any], call: Callable[[], CallResult]
    ) -> CallResult:
        """`call()` on a worker thread (the caller's), timed by the thread's CPU."""
        started = time.thread_time()
        try:
            return call()
        finally:
            self._record(handler, time.thread_time() - started, True)

    def _record(self, handler: Callable[..., Any], cpu: float, wall_short: bool) -> None:
        with self._lock:
            if cpu < self.seconds and wall_short:
                self._short[handler] = min(self._short.get(handler, 0) + 1, self.after)
            else:
                self._short[handler] = 0
