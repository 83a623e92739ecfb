"""Deterministic execution of queries and mutations.

A query or mutation may be re-run (OCC retries, re-evaluation of a live
query), so it must compute the same result from the same reads. While one
runs on a thread:

- the wall clock is frozen at the call's start: `time.time`, `time.time_ns`,
  `datetime.datetime.now/utcnow/today`, and `time.localtime/gmtime/ctime/
  asctime/strftime` called without an explicit time;
- `random`'s module functions, `random.SystemRandom` (hence `secrets`),
  `os.urandom` (hence `uuid.uuid4`) and `os.getrandom` draw from a generator
  seeded per call (one seed for all attempts of the call);
- the network, other processes and file writes are refused with
  `NonDeterministicError`, pointing to actions (`guard.py`: one audit hook),
  and so is starting a thread (it would escape both the guard and the frozen
  clock); the platform's own store calls run inside `platform_io()`, which
  lifts the guard.

The patches are process-wide but act only on threads inside `frozen(...)`;
every other thread (actions, the server) sees the real clock, randomness and
I/O. `install()` runs before the app's modules are imported, so their
`from datetime import datetime` binds the patched class. Known gaps:
`datetime.date.today()` and `time.monotonic/perf_counter` are not frozen.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, SupportsIndex

from . import guard
from .guard import NonDeterministicError

__all__ = ["NonDeterministicError", "frozen", "install", "platform_io", "real_urandom"]


class _State(threading.local):
    now: float | None = None
    rng: random.Random | None = None
    guarded: bool = False
    kind: str = ""


_state = _State()
_installed = False
_install_lock = threading.Lock()

_real_time = time.time
_real_time_ns = time.time_ns
_real_urandom = os.urandom
_real_getrandom = getattr(os, "getrandom", None)
_real_localtime = time.localtime
_real_gmtime = time.gmtime
_real_ctime = time.ctime
_real_asctime = time.asctime
_real_strftime = time.strftime
_real_datetime = _dt.datetime
real_urandom = _real_urandom
"""The operating system's randomness, whatever thread asks."""


@contextlib.contextmanager
def frozen(now: float, seed: int, kind: str) -> Iterator[None]:
    """Run the body as a deterministic `kind` function started at `now`."""
    saved = (_state.now, _state.rng, _state.guarded, _state.kind)
    _state.now, _state.rng, _state.guarded, _state.kind = now, random.Random(seed), True, kind
    try:
        yield
    finally:
        _state.now, _state.rng, _state.guarded, _state.kind = saved


class platform_io:
    """Lift the guard and the frozen clock for the platform's own I/O (store
    calls sign requests with the real time). A class, not a generator: every
    store call of a function goes through it."""

    __slots__ = ("_saved",)

    def __enter__(self) -> None:
        state = _state
        self._saved = (state.now, state.rng, state.guarded)
        state.now, state.rng, state.guarded = None, None, False

    def __exit__(self, *exc: object) -> None:
        _state.now, _state.rng, _state.guarded = self._saved


def _time() -> float:
    now = _state.now
    return _real_time() if now is None else now


def _time_ns() -> int:
    now = _state.now
    return _real_time_ns() if now is None else int(now * 1e9)


def _urandom(n: int) -> bytes:
    rng = _state.rng
    return _real_urandom(n) if rng is None else rng.randbytes(n)


def _getrandom(size: int, flags: int = 0) -> bytes:
    rng = _state.rng
    if rng is None:
        assert _real_getrandom is not None
        real: bytes = _real_getrandom(size, flags)
        return real
    return rng.randbytes(size)


# The struct_time functions read the clock only when given no time: then
# they read the frozen one.


def _localtime(secs: float | SupportsIndex | None = None) -> time.struct_time:
    return _real_localtime(_state.now if secs is None else secs)


def _gmtime(secs: float | SupportsIndex | None = None) -> time.struct_time:
    return _real_gmtime(_state.now if secs is None else secs)


def _ctime(secs: float | SupportsIndex | None = None) -> str:
    return _real_ctime(_state.now if secs is None else secs)


def _asctime(t: Any = None) -> str:
    return _real_asctime(_localtime() if t is None else t)


def _strftime(format: str, t: Any = None) -> str:
    return _real_strftime(format, _localtime() if t is None else t)


class _DatetimeMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _real_datetime)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _real_datetime)


class _Datetime(_real_datetime, metaclass=_DatetimeMeta):
    """`datetime.datetime` whose now/utcnow/today read the frozen clock."""

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> Any:
        now = _state.now
        if now is None:
            return _real_datetime.now(tz)
        return _real_datetime.fromtimestamp(now, tz)

    @classmethod
    def utcnow(cls) -> Any:
        now = _state.now
        if now is None:
            return _real_datetime.now(_dt.UTC).replace(tzinfo=None)
        return _real_datetime.fromtimestamp(now, _dt.UTC).replace(tzinfo=None)

    @classmethod
    def today(cls) -> Any:
        return cls.now()


_Datetime.__module__ = "datetime"
_Datetime.__name__ = _Datetime.__qualname__ = "datetime"


def _seeded(name: str, real: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        rng = _state.rng
        if rng is None:
            return real(*args, **kwargs)
        return getattr(rng, name)(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = real.__doc__
    return call


def _guarded_kind() -> str | None:
    return _state.kind if _state.guarded else None


def _no_threads(real: Any) -> Any:
    def start(*args: Any, **kwargs: Any) -> Any:
        if _state.guarded:
            raise guard.error(_state.kind, "thread", "threading.Thread.start")
        return real(*args, **kwargs)

    return start


def install() -> None:
    """Put the patches in place (idempotent; an audit hook cannot be removed)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        time.time = _time
        time.time_ns = _time_ns
        time.localtime = _localtime
        time.gmtime = _gmtime
        time.ctime = _ctime
        time.asctime = _asctime
        time.strftime = _strftime
        os.urandom = _urandom
        if _real_getrandom is not None:
            os.getrandom = _getrandom
        # SystemRandom (and `secrets`, built on it) draws from `random._urandom`,
        # bound when `random` was imported.
        random._urandom = _urandom  # type: ignore[attr-defined]
        _dt.datetime = _Datetime  # type: ignore[misc]
        instance = random._inst
        for name in dir(random.Random):
            if name.startswith("_"):
                continue
            real = getattr(random, name, None)
            if getattr(real, "__self__", None) is instance:
                setattr(random, name, _seeded(name, real))
        # Thread.start's primitive (renamed in Python 3.13).
        for name in ("_start_new_thread", "_start_joinable_thread"):
            real = getattr(threading, name, None)
            if real is not None:
                setattr(threading, name, _no_threads(real))
        sys.addaudithook(guard.hook(_guarded_kind))
        _installed = True
