"""Action calls in flight: how deep a chain of `ctx.run_action` goes, how
long it may still run, and which actions a stopping server leaves behind.

Why a depth limit. An action that calls itself with no end (directly, or
A -> B -> A, each waiting on the other) nests forever: every level waits on
a thread for the one below, so before this module the process ran out of
threads ("can't start new thread") and the client waited. Whether a
recursion ends cannot be decided, so a chain is cut at ACTION_CALL_DEPTH
with an error that names the chain; recursion that ends within it runs.
Convex caps nested function calls the same way (8 deep: "Do you have an
infinite loop in your app?").

Where a nested action runs. On its caller's thread (a plain `def` action on
a helper thread of its own, for its timeout; an `async def` one on an event
loop in a worker of its caller's loop), never on the action pool
(`runtime/sync/calls.py`). A nested call that queued for a pool worker
could wait forever for workers only its own ancestors hold (ACTION_WORKERS
clients, each in an action that calls another: every worker held by a
caller, every callee queued behind them). So the pool bounds how many chains
run at once, the depth bounds each chain's threads, and a nested call never
waits for a worker.

Why the chain travels in `ctx`, not in a context variable: user code may
call `ctx.run_action` from a thread it started itself, where context
variables do not follow; `ctx` goes wherever the code takes it.

Deadline. A nested action counts toward its caller's time, as in Convex
(awaited calls count toward the action's timeout): it may run for what
remains of the chain's ACTION_TIMEOUT_SECONDS, so nothing in a chain runs on
after the action the client called has timed out.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.errors import PlatformError
from runtime.limits import ACTION_CALL_DEPTH

__all__ = ["ActionCall", "ActionCallDepthExceeded", "RunningActions"]


class ActionCallDepthExceeded(PlatformError):
    code = "ACTION_CALL_DEPTH"


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One action running: where it sits in its chain and until when it may run."""

    path: str
    depth: int
    """0 for the action a client, an HTTP action or the scheduler started."""
    started: float
    """time.monotonic() when it started."""
    deadline: float
    """time.monotonic() past which it has timed out (its chain's deadline)."""
    limit: float
    """The chain's timeout in seconds (what an error reports)."""
    parent: ActionCall | None = None

    def chain(self) -> list[str]:
        """The paths from the first action of the chain down to this one."""
        paths: list[str] = []
        call: ActionCall | None = self
        while call is not None:
            paths.append(call.path)
            call = call.parent
        return paths[::-1]

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def root(self) -> ActionCall:
        call = self
        while call.parent is not None:
            call = call.parent
        return call


def _too_deep(path: str, parent: ActionCall, limit: int) -> ActionCallDepthExceeded:
    chain = parent.chain()
    loop = ""
    if path in chain:
        loop = (
            f" '{path}' is already running in this chain: an action that calls itself "
            "(directly or through others) needs a case that returns without calling."
        )
    return ActionCallDepthExceeded(
        f"ctx.run_action('{path}') would nest actions {parent.depth + 1} deep; the limit "
        f"is {limit} (ACTION_CALL_DEPTH). Chain: {' -> '.join([*chain, path])}.{loop} "
        "Share code between actions as plain Python functions instead of nested actions.",
        path=path,
        depth=parent.depth + 1,
        limit=limit,
    )


class RunningActions:
    """The actions in flight in one executor, at every depth: each call is
    checked against the depth limit, given its deadline, and listed while it
    runs (a stopping server logs the ones it abandons)."""

    def __init__(self, max_depth: int = ACTION_CALL_DEPTH) -> None:
        self.max_depth = max_depth
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._running: dict[int, ActionCall] = {}

    @contextlib.contextmanager
    def run(self, path: str, timeout: float, parent: ActionCall | None) -> Iterator[ActionCall]:
        """The body runs as action `path` called by `parent` (None: the
        first of a chain). Raises ActionCallDepthExceeded before it starts
        when the chain is already `max_depth` deep."""
        now = time.monotonic()
        if parent is None:
            call = ActionCall(path, 0, now, now + timeout, timeout)
        else:
            if parent.depth >= self.max_depth:
                raise _too_deep(path, parent, self.max_depth)
            deadline = min(parent.deadline, now + timeout)
            call = ActionCall(path, parent.depth + 1, now, deadline, parent.limit, parent)
        key = next(self._ids)
        with self._lock:
            self._running[key] = call
        try:
            yield call
        finally:
            with self._lock:
                del self._running[key]

    def running(self) -> list[ActionCall]:
        """The actions running now, oldest first."""
        with self._lock:
            return sorted(self._running.values(), key=lambda call: call.started)
