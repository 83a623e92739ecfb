"""The Lambda functions of the harness: a handler, its configuration, and the
context object Lambda passes with each invocation.

Handlers are plain `handler(event, context)` callables, called in-process;
the defaults are named by module path and imported on first use, so the
harness runs whichever handlers the tree has (and tests pass their own).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Handler",
    "LambdaContext",
    "LambdaFunction",
    "Workers",
    "lazy_handler",
]

Handler = Callable[[dict[str, Any], Any], Any]

ACCOUNT_ID = "000000000000"
"""The account id local ARNs carry (LocalStack's and DynamoDB Local's choice)."""
REGION = "us-east-1"


def lazy_handler(path: str) -> Handler:
    """The handler at `package.module:name`, imported on its first call (a
    harness that never gets a WebSocket never imports the WebSocket Lambda)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a handler is named `package.module:function`, not {path!r}")
    resolved: list[Handler] = []
    lock = threading.Lock()

    def call(event: dict[str, Any], context: Any) -> Any:
        with lock:
            if not resolved:
                target = getattr(importlib.import_module(module_name), attr, None)
                if not callable(target):
                    raise RuntimeError(f"{module_name} has no handler function {attr!r}")
                resolved.append(target)
        return resolved[0](event, context)

    call.__qualname__ = call.__name__ = f"lazy[{path}]"
    return call


@dataclass
class LambdaContext:
    """What Lambda's Python runtime passes as `context` (the attributes
    Powertools and user code read)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    """time.monotonic() at which the invocation times out."""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class LambdaFunction:
    """One function: its handler and the configuration a context reports."""

    name: str
    handler: Handler
    timeout: float = 30.0
    memory_mb: int = 512
    region: str = REGION
    account: str = ACCOUNT_ID
    new_request_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    log_stream: str = field(
        default_factory=lambda: (
            time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
        )
    )
    """One stream per function, as one warm container has."""

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.name,
            function_version="$LATEST",
            invoked_function_arn=(
                f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"
            ),
            memory_limit_in_mb=self.memory_mb,
            aws_request_id=self.new_request_id(),
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name=self.log_stream,
            deadline=time.monotonic() + self.timeout,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler with a fresh context, in the calling thread."""
        return self.handler(event, self.context())


class Workers:
    """The threads handlers run in: Lambda handlers are synchronous, the
    gateway's event loop must not wait on them. Each call is bounded by the
    integration's timeout; a call past it keeps its thread until it returns
    (as a Lambda runs on after API Gateway gave up), its answer dropped."""

    def __init__(self, size: int = 64) -> None:
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="lambda")
        self._running: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()

    async def invoke(self, function: LambdaFunction, event: dict[str, Any], timeout: float) -> Any:
        """The handler's answer; TimeoutError past `timeout`; its exception if it raised."""

        def run() -> Any:
            key = next(self._ids)
            with self._lock:
                self._running[key] = (function.name, time.monotonic())
            try:
                return function.invoke(event)
            finally:
                with self._lock:
                    self._running.pop(key, None)

        future = asyncio.get_running_loop().run_in_executor(self._pool, run)
        return await asyncio.wait_for(future, timeout)

    def close(self, grace: float | None = None) -> list[tuple[str, float]]:
        """Take no more calls, wait up to `grace` seconds (None: as long as it
        takes) for the running ones, and return those still running as
        (function, seconds running): a stuck handler (an action that never
        returns) cannot be stopped, so the CLI abandons it rather than
        waiting forever."""
        if grace is None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return []
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace
        while True:
            with self._lock:
                running = list(self._running.values())
            if not running or time.monotonic() >= deadline:
                now = time.monotonic()
                return [(name, now - started) for name, started in running]
            time.sleep(0.05)
