"""The last calls, in memory, for the developer's tools: `GET
/api/admin/logs` (the CLI's `logs`, the dashboard's live log) reads them,
long-polling for the next one. Fed by the Backend's call listener, so on the
dev server it sees every call; on AWS each Lambda process keeps its own.

Each entry is what a log line shows, as JSON:
`{"seq", "ts" (epoch ms), "kind", "path", "ok", "durationMs", "error",
"requestId", "logLines", "nested"}`; `seq` counts up from 1 per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Any

from runtime.limits import CALL_HISTORY_DEFAULT, CALL_HISTORY_ENTRIES, CALL_HISTORY_WAIT_SECONDS

from .executor import CallResult

__all__ = ["CallHistory"]


class CallHistory:
    def __init__(self, limit: int = CALL_HISTORY_ENTRIES) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = 0
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        """Long-polls parked on an event loop (`wait_after`), woken by the next call."""

    def __call__(self, result: CallResult) -> None:
        error = None if result.ok else (result.logged_message or result.error_message)
        with self._lock:
            self._seq += 1
            self._entries.append(
                {
                    "seq": self._seq,
                    "ts": round(time.time() * 1000),
                    "kind": result.kind,
                    "path": result.path,
                    "ok": result.ok,
                    "durationMs": round(result.duration * 1000, 3),
                    "error": error,
                    "requestId": result.request_id,
                    "logLines": list(result.log_lines),
                    "nested": result.nested,
                }
            )
            waiting = list(self._waiting)
        for loop, event in waiting:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(event.set)

    def after(self, seq: int | None) -> tuple[list[dict[str, Any]], int]:
        """The entries after `seq` (None: the last CALL_HISTORY_DEFAULT), and
        the seq to ask after next."""
        with self._lock:
            if seq is not None and seq > self._seq:
                seq = 0  # a position from before a restart: everything kept is news
            if seq is None:
                found = list(self._entries)[-CALL_HISTORY_DEFAULT:]
            else:
                found = [e for e in self._entries if e["seq"] > seq]
            return found, self._seq

    async def wait_after(self, seq: int | None, wait: float) -> tuple[list[dict[str, Any]], int]:
        """`after(seq)`, waiting up to `wait` seconds (at most
        CALL_HISTORY_WAIT_SECONDS) for a first entry. The wait parks on the
        event loop, not on a worker thread, so open long-polls (a `logs
        --follow`, every dashboard tab) never take the threads the API's
        calls run on."""
        wait = max(0.0, min(wait, CALL_HISTORY_WAIT_SECONDS))
        with self._lock:
            idle = seq is not None and wait > 0 and self._seq == seq
            if idle:
                woken = (asyncio.get_running_loop(), asyncio.Event())
                self._waiting.add(woken)
        if not idle:  # news already (or a position from before a restart)
            return self.after(seq)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken[1].wait(), wait)
        finally:
            with self._lock:
                self._waiting.discard(woken)
        return self.after(seq)
