"""Only the committed attempt's log lines reach the caller (issue 11,
"Transactions"): a query or mutation re-run after a conflict does not leave
the earlier attempts' print/logging lines in the call's lines."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from runtime import action, mutation, query
from runtime.database import Database
from runtime.functions import FunctionRegistry
from runtime.functions.determinism import platform_io
from runtime.functions.executor import Executor
from runtime.functions.logs import install as install_logs
from runtime.store.sqlite import SqliteStore

_attempts: list[int] = []
_interfere: list[Callable[[], None]] = []
"""Run once, by the first attempt: commits a write the attempt read."""


def _read_and_maybe_interfere(ctx: Any, doc_id: str) -> float:
    doc = ctx.db.get(doc_id)
    _attempts.append(1)
    print(f"attempt {len(_attempts)} saw {doc['n']}")
    logging.getLogger("app").warning("warned on attempt %d", len(_attempts))
    if _interfere:
        with platform_io():
            _interfere.pop()()
    n: float = doc["n"]
    return n


@mutation
def _bump(ctx: Any, args: Any) -> float:
    n = _read_and_maybe_interfere(ctx, args["id"])
    ctx.db.patch(args["id"], {"n": n + 1})
    return n + 1


@query
def _read(ctx: Any, args: Any) -> float:
    return _read_and_maybe_interfere(ctx, args["id"])


@mutation
def _fail(ctx: Any, args: Any) -> None:
    _read_and_maybe_interfere(ctx, args["id"])
    raise ValueError("gave up")


@action
def _calls_bump(ctx: Any, args: Any) -> Any:
    print("action before")
    value = ctx.run_mutation(_bump, {"id": args["id"]})
    print("action after")
    return value


@mutation
def _create(ctx: Any, args: Any) -> str:
    doc_id: str = ctx.db.insert("counters", {"n": 0.0})
    return doc_id


@pytest.fixture
def setup() -> Any:
    store = SqliteStore(":memory:")
    registry = FunctionRegistry(
        {"c:bump": _bump, "c:read": _read, "c:fail": _fail, "c:act": _calls_bump, "c:new": _create}
    )
    ex = Executor(Database(store), registry)
    doc_id = ex.call("c:new", {}).value
    other = Database(store)

    def concurrent_write() -> None:
        other.mutation(lambda tx: tx.patch(doc_id, {"n": tx.get(doc_id)["n"] + 1}))  # type: ignore[index]

    _attempts.clear()
    _interfere[:] = [concurrent_write]
    yield _Calls(ex), doc_id
    _interfere.clear()
    store.close()


class _Calls:
    def __init__(self, ex: Executor) -> None:
        self._ex = ex

    def call(self, fn: str, args: Any) -> Any:
        install_logs()  # over the stdout pytest swapped in for this test
        return self._ex.call(fn, args)


def test_a_mutation_rerun_after_a_conflict_reports_one_attempts_lines(setup: Any) -> None:
    ex, doc_id = setup
    result = ex.call("c:bump", {"id": doc_id})
    assert result.ok and result.value == 2.0
    assert len(_attempts) == 2
    assert result.log_lines == ["[LOG] attempt 2 saw 1.0", "[WARN] warned on attempt 2"]


def test_a_query_rerun_after_its_reads_moved_reports_one_attempts_lines(setup: Any) -> None:
    ex, doc_id = setup
    result = ex.call("c:read", {"id": doc_id})
    assert result.ok and result.value == 1.0 and len(_attempts) == 2
    assert result.log_lines == ["[LOG] attempt 2 saw 1.0", "[WARN] warned on attempt 2"]


def test_an_error_keeps_the_lines_of_the_attempt_that_raised_it(setup: Any) -> None:
    ex, doc_id = setup
    result = ex.call("c:fail", {"id": doc_id})
    assert not result.ok and "gave up" in (result.error_message or "")
    assert len(_attempts) == 2  # the first attempt's error came from a moved read
    assert result.log_lines == ["[LOG] attempt 2 saw 1.0", "[WARN] warned on attempt 2"]


def test_an_actions_nested_mutation_adds_only_its_committed_attempt(setup: Any) -> None:
    ex, doc_id = setup
    result = ex.call("c:act", {"id": doc_id})
    assert result.ok and result.value == 2.0 and len(_attempts) == 2
    assert result.log_lines == [
        "[LOG] action before",
        "[LOG] attempt 2 saw 1.0",
        "[WARN] warned on attempt 2",
        "[LOG] action after",
    ]
