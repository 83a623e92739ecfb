"""What a function prints or logs, collected per call.

`print` goes to `sys.stdout`, which `install()` replaces with a router: on a
thread running a function (inside `capture()`), text goes to that call's
lines; elsewhere it goes to the real stream. Records reaching the root logger
are collected the same way (the platform's and the AWS SDK's own loggers are
left out). The caller gets the lines as `logLines` and the dev server prints
them under the call's log line.

A query or mutation may run several times for one call (OCC conflicts);
each run logs into lines of its own (`attempt()`), and only the run that
produced the result keeps them (`keep`), so a caller reads one run's lines.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

from runtime.limits import LOG_LINE_CHARS, LOG_LINES_PER_FUNCTION

__all__ = ["LogLines", "attempt", "capture", "capturing", "install", "keep"]

_LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}
_PLATFORM_LOGGERS = (
    "runtime",
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "uvicorn",
    "asyncio",
    "opensearch",  # the search engine's client (opensearch-py): a request log per search
)


class LogLines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0
        self._partial: dict[str, str] = {}

    def add(self, level: str, message: str) -> None:
        for line in message.splitlines() or [""]:
            if len(self.lines) >= LOG_LINES_PER_FUNCTION:
                self.dropped += 1
                continue
            if len(line) > LOG_LINE_CHARS:
                line = line[:LOG_LINE_CHARS] + " (truncated)"
            self.lines.append(f"[{level}] {line}")

    def write(self, level: str, text: str) -> None:
        """Stream text: complete lines are added, the rest waits for its newline."""
        text = self._partial.pop(level, "") + text
        *complete, rest = text.split("\n")
        for line in complete:
            self.add(level, line)
        if rest:
            self._partial[level] = rest

    def flush(self) -> None:
        """Add the text still waiting for its newline as lines of their own."""
        for level, rest in list(self._partial.items()):
            self.add(level, rest)
        self._partial.clear()

    def extend(self, other: LogLines) -> None:
        """Append `other`'s lines (and its drop count) under this one's bound."""
        other.flush()
        for line in other.lines:
            if len(self.lines) >= LOG_LINES_PER_FUNCTION:
                self.dropped += 1
            else:
                self.lines.append(line)
        self.dropped += other.dropped

    def finish(self) -> list[str]:
        self.flush()
        if self.dropped:
            self.lines.append(
                f"[WARN] {self.dropped} more log lines dropped "
                f"(at most {LOG_LINES_PER_FUNCTION} per call)"
            )
            self.dropped = 0
        return self.lines


_current: contextvars.ContextVar[LogLines | None] = contextvars.ContextVar(
    "function_log_lines", default=None
)
"""A context variable, not a thread-local: `asyncio.to_thread` and tasks
carry it, so an async action's nested calls log into the same lines."""


def capturing() -> bool:
    """Whether output on this thread/task belongs to a running function."""
    return _current.get() is not None


@contextlib.contextmanager
def capture(lines: LogLines) -> Iterator[LogLines]:
    token = _current.set(lines)
    try:
        yield lines
    finally:
        _current.reset(token)


@contextlib.contextmanager
def attempt() -> Iterator[LogLines | None]:
    """Capture one run of a function apart from the call's lines; yields None
    (and captures nothing) when no call is capturing on this thread."""
    if _current.get() is None:
        yield None
        return
    with capture(LogLines()) as lines:
        yield lines


def keep(lines: LogLines | None) -> None:
    """Add a run's lines (from `attempt()`) to the call's."""
    current = _current.get()
    if current is not None and lines is not None:
        current.extend(lines)


class _Router:
    """Stands in for sys.stdout / sys.stderr."""

    def __init__(self, real: IO[str], level: str) -> None:
        self._real = real
        self._level = level

    def write(self, text: str) -> int:
        lines = _current.get()
        if lines is None:
            return self._real.write(text)
        lines.write(self._level, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        lines = _current.get()
        if lines is None or record.name.startswith(_PLATFORM_LOGGERS):
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the function's bug, not ours
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        lines.add(_LEVELS.get(record.levelname, record.levelname), message)


_installed = False
_lock = threading.Lock()


def install() -> None:
    """Route print/logging output of running functions to their calls.
    Idempotent; re-wraps streams something else swapped in since."""
    global _installed
    with _lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, "LOG")
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, "ERROR")
        if not _installed:
            logging.getLogger().addHandler(_Handler())
            _installed = True
