"""Where the calls clients make run, so that one client cannot starve others.

Actions may run for minutes (ACTION_TIMEOUT_SECONDS) and mostly wait on the
outside world. If they shared threads with queries and mutations, a client
starting many slow actions would hold every thread and delay everyone's
mutations. So actions, over HTTP and over the socket alike, run in a pool of
their own of ACTION_WORKERS threads per backend (per `Executor`); more
actions wait for a free worker, and queries and mutations keep their
threads (the HTTP API's thread pool, the sync hub's workers).

Only the actions clients call take a worker. An action's own
`ctx.run_action` runs on the caller's thread, never here: queued for a
worker, a nested call could wait forever on workers that only its own
callers hold (every worker running an action that waits for its child).
Chains are bounded instead, ACTION_CALL_DEPTH deep
(`runtime/functions/action_calls.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio.to_thread

from runtime.functions.executor import CallResult, Executor, RequestError
from runtime.functions.registry import Kind
from runtime.limits import ACTION_WORKERS

__all__ = ["ActionPool", "action_pool", "call_async"]

T = TypeVar("T")


class ActionPool:
    """A fixed number of daemon worker threads (daemon: a stuck action
    never keeps a stopping server alive), started on first use."""

    def __init__(self, workers: int = ACTION_WORKERS) -> None:
        self.workers = workers
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` (in the caller's context variables) on a worker."""
        future: Future[T] = Future()
        context = contextvars.copy_context()
        self._queue.put((future, functools.partial(context.run, fn)))
        with self._lock:
            if not self._started:
                self._started = True
                for i in range(self.workers):
                    threading.Thread(target=self._work, name=f"action-{i}", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, fn = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:  # handed to whoever waits on the future
                future.set_exception(e)


_pools: weakref.WeakKeyDictionary[Executor, ActionPool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def action_pool(executor: Executor) -> ActionPool:
    """The action pool of the backend `executor` runs for (one per process
    and backend, shared by the HTTP API and the sync hub)."""
    with _pools_lock:
        pool = _pools.get(executor)
        if pool is None:
            pool = _pools[executor] = ActionPool()
        return pool


async def call_async(
    executor: Executor,
    path: str,
    args: Any,
    *,
    kind: Kind | None,
    public_only: bool,
    identity: dict[str, Any] | None,
) -> CallResult:
    """`executor.call` from async code (the HTTP API): an action on the
    action pool, anything else on the event loop's worker threads. Raises
    RequestError like `call` when the function cannot be called."""
    run = functools.partial(
        executor.call, path, args, kind=kind, public_only=public_only, identity=identity
    )
    try:
        _, defn = executor.resolve(path, kind=kind, public_only=public_only)
    except RequestError:
        # `call` refuses it again, reporting the refusal to the call log.
        return await anyio.to_thread.run_sync(run)
    if defn.kind == "action":
        return await asyncio.wrap_future(action_pool(executor).submit(run))
    return await anyio.to_thread.run_sync(run)
