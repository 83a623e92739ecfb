"""InlineCalls: which functions the dev server's HTTP API runs on its event
loop (runtime/http/inline.py)."""

from __future__ import annotations

import time

import pytest

from runtime.functions.executor import CallResult
from runtime.http.inline import InlineCalls


def handler(ctx: object, args: object) -> None: ...


def other(ctx: object, args: object) -> None: ...


def quick() -> CallResult:
    return CallResult("m:quick", "mutation")


def busy() -> CallResult:
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass
    return quick()


def sleepy() -> CallResult:
    time.sleep(0.05)
    return quick()


def test_on_the_loop_after_enough_short_runs_in_a_row() -> None:
    inline = InlineCalls(seconds=0.01, wall_seconds=0.03, after=3)
    for _ in range(3):
        assert not inline.on_loop(handler)
        inline.run_in_worker(handler, quick)
    assert inline.on_loop(handler)
    assert not inline.on_loop(other)  # counted per function


def test_a_busy_run_anywhere_starts_the_count_again() -> None:
    inline = InlineCalls(seconds=0.01, wall_seconds=0.03, after=2)
    for _ in range(2):
        inline.run_in_worker(handler, quick)
    inline.run_on_loop(handler, busy)
    assert not inline.on_loop(handler)
    inline.run_in_worker(handler, quick)
    inline.run_in_worker(handler, busy)
    inline.run_in_worker(handler, quick)
    assert not inline.on_loop(handler)
    inline.run_in_worker(handler, quick)
    assert inline.on_loop(handler)


def test_wall_time_counts_on_the_loop_only() -> None:
    inline = InlineCalls(seconds=0.01, wall_seconds=0.03, after=2)
    for _ in range(2):
        inline.run_in_worker(handler, sleepy)  # a worker's wait is the GIL's, not counted
    assert inline.on_loop(handler)
    inline.run_on_loop(handler, sleepy)  # it held the loop
    assert not inline.on_loop(handler)


def test_a_run_that_raises_is_still_counted() -> None:
    inline = InlineCalls(seconds=0.01, wall_seconds=0.03, after=1)

    def failing() -> CallResult:
        busy()
        raise RuntimeError("refused")

    inline.run_in_worker(handler, quick)
    assert inline.on_loop(handler)
    with pytest.raises(RuntimeError):
        inline.run_on_loop(handler, failing)
    assert not inline.on_loop(handler)
