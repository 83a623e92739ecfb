"""Nested actions in-process: a chain of `ctx.run_action` is cut at
ACTION_CALL_DEPTH with an error naming it, shares its first action's
deadline, never waits for an action-pool worker, and an action's timeout
holds even while a worker thread of its own is stuck."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from runtime import action, v
from runtime.database import Database
from runtime.functions import FunctionRegistry
from runtime.functions.action_calls import ActionCallDepthExceeded, RunningActions
from runtime.functions.executor import CallResult, Executor
from runtime.limits import ACTION_CALL_DEPTH, ACTION_TIMEOUT_SECONDS
from runtime.store.sqlite import SqliteStore
from runtime.sync.calls import ActionPool

runs: list[str] = []


@action
def self_call(ctx: Any, args: Any) -> Any:
    runs.append("self_call")
    return ctx.run_action("m:self_call", {})


@action
async def ping(ctx: Any, args: Any) -> Any:
    runs.append("ping")
    return await ctx.run_action("m:pong", {})


@action
def pong(ctx: Any, args: Any) -> Any:
    runs.append("pong")
    return ctx.run_action("m:ping", {})


@action(args={"n": v.float64()})
def count_down(ctx: Any, args: Any) -> Any:
    if args["n"] <= 0:
        return 0.0
    return 1 + ctx.run_action("m:count_down", {"n": args["n"] - 1})


@action
def from_own_thread(ctx: Any, args: Any) -> Any:
    """Calls itself from a thread it starts: the chain still holds."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = ctx.run_action("m:from_own_thread", {})
        except Exception as e:
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


@action
def outer(ctx: Any, args: Any) -> Any:
    return ctx.run_action("m:inner", {})


@action
async def inner(ctx: Any, args: Any) -> Any:
    return "inner"


release = threading.Event()


@action
async def blocked_in_worker(ctx: Any, args: Any) -> Any:
    await asyncio.to_thread(release.wait)


@action
async def raises_timeout_error(ctx: Any, args: Any) -> Any:
    raise TimeoutError("the socket timed out")


def _executor(**kwargs: Any) -> tuple[Executor, list[CallResult]]:
    runs.clear()
    calls: list[CallResult] = []
    registry = FunctionRegistry(
        {
            "m:self_call": self_call,
            "m:ping": ping,
            "m:pong": pong,
            "m:count_down": count_down,
            "m:from_own_thread": from_own_thread,
            "m:outer": outer,
            "m:inner": inner,
            "m:blocked_in_worker": blocked_in_worker,
            "m:raises_timeout_error": raises_timeout_error,
        }
    )
    executor = Executor(Database(SqliteStore(":memory:")), registry, on_call=calls.append, **kwargs)
    return executor, calls


def _depth_error(calls: list[CallResult]) -> ActionCallDepthExceeded:
    errors = [c.error for c in calls if isinstance(c.error, ActionCallDepthExceeded)]
    assert len(errors) == 1, [c.error for c in calls]
    return errors[0]


def test_an_action_that_calls_itself_is_cut_at_the_depth_limit() -> None:
    executor, calls = _executor(action_timeout=30)
    result = executor.call("m:self_call", {})
    assert not result.ok
    assert runs == ["self_call"] * (ACTION_CALL_DEPTH + 1)  # the first, then 8 nested
    error = _depth_error(calls)
    assert error.details["depth"] == ACTION_CALL_DEPTH + 1
    assert f"the limit is {ACTION_CALL_DEPTH} (ACTION_CALL_DEPTH)" in error.message
    assert "'m:self_call' is already running in this chain" in error.message
    assert " -> ".join(["m:self_call"] * (ACTION_CALL_DEPTH + 2)) in error.message
    assert "ACTION_CALL_DEPTH" in (result.error_message or "")  # the client reads it (dev)
    assert executor.actions.running() == []


def test_two_actions_calling_each_other_are_cut_too() -> None:
    executor, calls = _executor(action_timeout=30)
    result = executor.call("m:ping", {})
    assert not result.ok
    assert runs == ["ping", "pong"] * ((ACTION_CALL_DEPTH + 1) // 2) + ["ping"]
    message = _depth_error(calls).message
    assert "m:ping -> m:pong -> m:ping" in message
    assert "already running in this chain" in message


def test_a_chain_started_from_a_thread_the_action_made_is_still_counted() -> None:
    executor, calls = _executor(action_timeout=30)
    assert not executor.call("m:from_own_thread", {}).ok
    assert _depth_error(calls).details["depth"] == ACTION_CALL_DEPTH + 1


def test_a_recursion_that_ends_within_the_limit_runs() -> None:
    executor, _ = _executor()
    result = executor.call("m:count_down", {"n": float(ACTION_CALL_DEPTH)})
    assert result.ok and result.value == ACTION_CALL_DEPTH
    executor, calls = _executor()
    assert not executor.call("m:count_down", {"n": float(ACTION_CALL_DEPTH + 1)}).ok
    assert "already running" in _depth_error(calls).message


def test_a_nested_action_shares_its_chains_deadline() -> None:
    actions = RunningActions(max_depth=2)
    with actions.run("a", 10, None) as a:
        assert (a.depth, a.parent, a.limit) == (0, None, 10)
        with actions.run("b", 1000, a) as b:
            assert b.deadline == a.deadline and b.limit == 10
            assert (b.depth, b.chain(), b.root) == (1, ["a", "b"], a)
            with actions.run("c", 1, b) as c:
                assert c.deadline < a.deadline  # its own timeout when that comes first
                assert [x.path for x in actions.running()] == ["a", "b", "c"]
                too_deep = pytest.raises(ActionCallDepthExceeded, match=r"a -> b -> c -> d\.")
                with too_deep, actions.run("d", 1, c):
                    pass
        assert [x.path for x in actions.running()] == ["a"]
    assert actions.running() == []


def test_a_nested_action_never_waits_for_an_action_pool_worker() -> None:
    """One worker, held by the outer action: the inner one runs on the
    outer's thread, so the call finishes (a nested call queued on the pool
    would wait forever)."""
    executor, _ = _executor()
    pool = ActionPool(workers=1)
    result = pool.submit(lambda: executor.call("m:outer", {})).result(timeout=60)
    assert result.ok and result.value == "inner"
    again = pool.submit(lambda: executor.call("m:outer", {})).result(timeout=60)
    assert again.ok  # the worker is free again


def test_an_action_times_out_while_a_worker_thread_of_its_own_is_stuck() -> None:
    """`asyncio.run` would wait for the stuck `to_thread` worker before
    returning; the call ends at its deadline and leaves the worker behind."""
    executor, _ = _executor(action_timeout=0.5)
    release.clear()
    box: list[CallResult] = []
    caller = threading.Thread(target=lambda: box.append(executor.call("m:blocked_in_worker", {})))
    caller.start()
    caller.join(60)  # a liveness bound: without the fix it waits for `release`
    stuck = caller.is_alive()
    release.set()
    caller.join(10)
    assert not stuck, "the call waited for its stuck worker thread"
    message = box[0].error_message or ""
    assert "Action `blocked_in_worker` execution timed out (maximum duration 0.5s)" in message


def test_a_timeout_error_raised_by_the_action_is_not_an_action_timeout() -> None:
    executor, _ = _executor()
    result = executor.call("m:raises_timeout_error", {})
    assert not result.ok
    assert "TimeoutError: the socket timed out" in (result.error_message or "")
    assert "execution timed out" not in (result.error_message or "")


def test_the_timeout_reads_as_convex_words_it() -> None:
    from runtime.functions.executor import action_timeout

    assert action_timeout(ACTION_TIMEOUT_SECONDS, "actions/simple:deadlock").message.startswith(
        "Action `deadlock` execution timed out (maximum duration 300s)"
    )
    assert "shared with the actions that called it" in action_timeout(1, "a:b", nested=True).message
