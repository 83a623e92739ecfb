"""A mutation's DynamoDB cost (`CommitPlan.items`) reaches its CallResult, and
the dev server's call log flags one past a native DynamoDB transaction
(TRANSACTION_ITEMS), so a developer sees a costly commit before deploying."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.database import Database
from runtime.functions import load_functions
from runtime.functions.executor import Executor
from runtime.limits import TRANSACTION_ITEMS
from runtime.local.calllog import CallLog
from runtime.store.sqlite import SqliteStore

APP = """
from runtime import mutation, query, v


@mutation(args={"n": v.int64()})
def add(ctx, args):
    for i in range(args["n"]):
        ctx.db.insert("notes", {"i": i})


@query(args={})
def count(ctx, args):
    return len(ctx.db.query("notes").collect())
"""


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[Executor]:
    (tmp_path / "notes.py").write_text(APP)
    store = SqliteStore(":memory:")
    yield Executor(Database(store), load_functions(tmp_path, namespace="_large_cost_app"))
    store.close()


def test_a_large_commit_runs_and_its_cost_is_logged(executor: Executor) -> None:
    out = io.StringIO()
    executor.on_call = CallLog(out)
    result = executor.call("notes:add", {"n": 600})
    assert result.ok
    # per insert: the document, its by_creation_time entry; plus the table's shards
    assert result.cost is not None and result.cost > 1200 > TRANSACTION_ITEMS
    line = out.getvalue().splitlines()[0]
    assert f"ok  [large commit: {result.cost:,} DynamoDB items]" in line
    assert re.search(r"\[large commit: \d,\d{3} DynamoDB items\]", line)
    assert executor.call("notes:count", {}).value == 600


def test_a_small_commit_and_a_query_are_not_flagged(executor: Executor) -> None:
    out = io.StringIO()
    executor.on_call = CallLog(out)
    small = executor.call("notes:add", {"n": 3})
    query = executor.call("notes:count", {})
    assert small.cost is not None and small.cost <= TRANSACTION_ITEMS
    assert query.cost is None
    assert "large commit" not in out.getvalue()


def test_environment_variables_are_written_on_a_store_of_any_size() -> None:
    """The writer split its ops by `max_transaction_items`, which is None
    (any size) on SQLite now: all 100 variables land in one commit."""
    from runtime.functions.environment import Environment
    from runtime.limits import ENV_VARS

    store = SqliteStore(":memory:")
    try:
        assert store.max_transaction_items is None
        env = Environment(store)
        try:
            names = {f"VAR_{i}": str(i) for i in range(ENV_VARS)}
            assert env.update(names) == names
            assert Environment(store).list() == names
        finally:
            env.withdraw()
    finally:
        store.close()
