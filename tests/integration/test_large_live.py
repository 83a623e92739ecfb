"""A live query over the range a large mutation changes sees the whole change
at once (issue 15), on both shells: the dev server (one SQLite transaction)
and the local AWS harness (DynamoDB Local, the large-commit protocol, the
stream Lambda invalidating from a commit whose records arrive in many stream
batches). The official Python client's subscription yields every value the
server pushes, in order; a push of half a commit would show up as a count
between the before and after states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from convex import ConvexClient

from tests.support.shells import Backend, app_on_shell

APP = Path(__file__).parent / "apps" / "large"
ROWS = 200
"""200 inserts are about 600 DynamoDB items: six native transactions' worth."""


@pytest.fixture(scope="module")
def large(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "large", shell, dynamodb_for, tmp_path_factory)


def summary(count: int, first: int = 0) -> dict[str, float]:
    return {"count": float(count), "total": float(sum(range(first, first + count)))}


def test_a_subscription_sees_a_large_insert_and_delete_whole(large: Backend) -> None:
    watcher = ConvexClient(large.url)
    writer = ConvexClient(large.url)
    updates = iter(watcher.subscribe("rows:summary", {"batch": "b"}))
    assert next(updates) == summary(0)

    writer.mutation("rows:insert_many", {"batch": "b", "count": ROWS})
    # The next value pushed is the whole insert: never a part of it.
    assert next(updates) == summary(ROWS)

    # A small write after it: if a partial state had been pushed late, it
    # would come before this one (pushes arrive in commit order).
    writer.mutation("rows:insert_many", {"batch": "b", "count": 1, "first": ROWS})
    assert next(updates) == summary(ROWS + 1)

    writer.mutation("rows:delete_all", {"batch": "b"})
    assert next(updates) == summary(0)
    writer.mutation("rows:insert_many", {"batch": "b", "count": 1, "first": 7})
    assert next(updates) == summary(1, 7)
