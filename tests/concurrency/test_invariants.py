"""Many threads, one database, invariants checked afterwards (bounded for CI).

Runs on SQLite and DynamoDB Local (moto loses updates under concurrent
transactions, so it is not a witness here). `-m scale` runs the same
workloads bigger; `bench/database.py` runs them at scale too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from runtime.database import Database
from runtime.store.port import Store
from tests.concurrency import workloads

BACKENDS = ["sqlite", "dynamodb_local"]


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest, store_factory: Callable[[str], Iterator[Store]]
) -> Iterator[Database]:
    it = store_factory(request.param)
    store = next(it)
    yield Database(store, workloads.SCHEMA)
    for _ in it:
        pass


@pytest.mark.parametrize(
    "workload",
    ["counters", "transfers", "unique_users", "capped_groups", "capped_search", "large_transfers"],
)
def test_invariants_hold(db: Database, workload: str) -> None:
    if workload == "capped_search" and getattr(db.store, "search", None) is None:
        pytest.skip("no search engine on this store (DynamoDB's is OpenSearch, fed by the stream)")
    run = {
        "counters": lambda: workloads.counters(db, threads=8, ops=15, hot=3),
        "transfers": lambda: workloads.transfers(db, threads=8, ops=15, accounts=6),
        "unique_users": lambda: workloads.unique_users(db, threads=8, ops=15, emails=4),
        "capped_groups": lambda: workloads.capped_groups(db, threads=8, ops=15, groups=3, cap=5),
        "capped_search": lambda: workloads.capped_search(db, threads=8, ops=15, groups=3, cap=5),
        "large_transfers": lambda: workloads.large_transfers(db, threads=6, ops=15, rounds=2),
    }[workload]
    report = run()
    assert report.violations == []
    assert report.committed > 0


@pytest.mark.scale
def test_invariants_hold_at_scale(db: Database) -> None:
    for report in workloads.run_all(db, threads=16, ops=200):
        assert report.violations == [], report.name
