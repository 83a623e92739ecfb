"""Deterministic execution of queries and mutations.

A query or mutation may be re-run (OCC retries, re-evaluation of a live
query), so it must compute the same result from the same reads. While one
runs on a thread:

- the wall clock is frozen at the call's start: `time.time`, `time.time_ns`,
  `datetime.datetime.now/utcnow/today`;
- `random`'s module functions and `os.urandom` (hence `uuid.uuid4`) draw from
  a generator seeded per call (one seed for all attempts of the call);
- opening a network connection raises `NonDeterministicError`, pointing to
  actions. The guard is an audit hook on socket events (`sys.addaudithook`);
  the platform's own store calls run inside `platform_io()`, which lifts it.

The patches are process-wide but act only on threads inside `frozen(...)`;
every other thread (actions, the server) sees the real clock and network.
`install()` runs before the app's modules are imported, so their
`from datetime import datetime` binds the patched class. Known gaps:
`datetime.date.today()`, `time.monotonic/perf_counter` and `secrets` are not
frozen or seeded.
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
from typing import Any

from runtime.errors import PlatformError

__all__ = ["NonDeterministicError", "frozen", "install", "platform_io", "real_urandom"]


class NonDeterministicError(PlatformError):
    code = "NON_DETERMINISTIC"


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
_real_datetime = _dt.datetime
real_urandom = _real_urandom
"""The operating system's randomness, whatever thread asks."""
_NETWORK_EVENTS = frozenset(
    {"socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg", "socket.bind"}
)


@contextlib.contextmanager
def frozen(now: float, seed: int, kind: str) -> Iterator[None]:
    """Run the body as a deterministic `kind` function started at `now`."""
    saved = (_state.now, _state.rng, _state.guarded, _state.kind)
    _state.now, _state.rng, _state.guarded, _state.kind = now, random.Random(seed), True, kind
    try:
        yield
    finally:
        _state.now, _state.rng, _state.guarded, _state.kind = saved


@contextlib.contextmanager
def platform_io() -> Iterator[None]:
    """Lift the guard and the frozen clock for the platform's own I/O (store
    calls sign requests with the real time)."""
    saved = (_state.now, _state.rng, _state.guarded)
    _state.now, _state.rng, _state.guarded = None, None, False
    try:
        yield
    finally:
        _state.now, _state.rng, _state.guarded = saved


def _time() -> float:
    now = _state.now
    return _real_time() if now is None else now


def _time_ns() -> int:
    now = _state.now
    return _real_time_ns() if now is None else int(now * 1e9)


def _urandom(n: int) -> bytes:
    rng = _state.rng
    return _real_urandom(n) if rng is None else rng.randbytes(n)


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


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _state.guarded and event in _NETWORK_EVENTS:
        raise NonDeterministicError(
            f"a {_state.kind} cannot use the network ({event}): queries and mutations "
            "are deterministic transactions. Call external services from an action "
            "(@action), and pass results to a mutation with ctx.run_mutation."
        )


def install() -> None:
    """Put the patches in place (idempotent; an audit hook cannot be removed)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        time.time = _time
        time.time_ns = _time_ns
        os.urandom = _urandom
        _dt.datetime = _Datetime  # type: ignore[misc]
        instance = random._inst
        for name in dir(random.Random):
            if name.startswith("_"):
                continue
            real = getattr(random, name, None)
            if getattr(real, "__self__", None) is instance:
                setattr(random, name, _seeded(name, real))
        sys.addaudithook(_audit)
        _installed = True
