"""The dev server's log: one line per call, then what the function printed.

    12:04:31.207 M bank:transfer        1.8 ms  ok
    12:04:31.530 Q bank:balance         0.6 ms  error  [Request ID: 5f0c2a9e1b7d4c3a] Uncaught ConvexError: {...}
        [LOG] looking up ann

A mutation whose commit is past one DynamoDB transaction (TRANSACTION_ITEMS)
says so, `[large commit: 1,234 DynamoDB items]`: it runs here as on AWS,
where it costs several calls per 100 items, so a developer sees it before
deploying.

A failed call's line names its request id, the one its caller read in
`[Request ID: ...] Server Error`, so a user's report finds it. Errors other
than ConvexError are followed by their traceback. Lines go to the real
stderr, never into a running function's captured output.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from runtime.functions.executor import CallResult
from runtime.limits import TRANSACTION_ITEMS

__all__ = ["KIND_LETTER", "CallLog", "call_line"]

KIND_LETTER = {"query": "Q", "mutation": "M", "action": "A", "http": "H"}


def call_line(
    ts: float, kind: str, path: str, duration_ms: float, outcome: str, *, nested: bool
) -> str:
    """A call's first log line (the dev server's log, the CLI's `logs`)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"
    indent = "  " if nested else ""
    return (
        f"{stamp} {indent}{KIND_LETTER.get(kind, '?')} {path:<28} {duration_ms:7.1f} ms  {outcome}"
    )


class CallLog:
    def __init__(self, stream: TextIO | None = None, *, tracebacks: bool = True) -> None:
        self._stream = stream if stream is not None else sys.__stderr__
        self._tracebacks = tracebacks
        self._lock = threading.Lock()

    def __call__(self, result: CallResult) -> None:
        outcome = (
            "ok"
            if result.ok
            else f"error  [Request ID: {result.request_id}] "
            f"{result.logged_message or result.error_message}"
        )
        if result.cost is not None and result.cost > TRANSACTION_ITEMS:
            outcome += f"  [large commit: {result.cost:,} DynamoDB items]"
        if result.replayed:
            outcome += "  (re-sent request: recorded result, not run again)"
        lines = [
            call_line(
                time.time(),
                result.kind,
                result.path,
                result.duration * 1000,
                outcome,
                nested=result.nested,
            )
        ]
        lines.extend(f"    {line}" for line in result.log_lines)
        if result.traceback and self._tracebacks:
            lines.extend(f"    {line}" for line in result.traceback.rstrip().splitlines())
        self.write("\n".join(lines))

    def write(self, text: str) -> None:
        stream = self._stream
        if stream is None:
            return
        with self._lock:
            stream.write(text + "\n")
            stream.flush()
