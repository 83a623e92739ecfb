"""Store-level guarantees the core relies on (issue 11): validation reads as
one snapshot, and commit timestamps that follow what a transaction read."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.database import Database, Transaction
from runtime.store.port import Bump, Put, Store
from tests.conformance.conftest import SCHEMA
from tests.support.aws import observe_dynamodb_calls


def test_versions_are_current_and_zero_for_absent_keys(store: Store) -> None:
    keys = [("v:t", bytes([i])) for i in range(150)]  # past one TransactGetItems call
    before = store.versions(keys[:1])[0]  # a range key never written
    store.transact([Bump(k) for k in keys[:50]])
    store.transact([Bump(k) for k in keys[:50] if k[1][0] % 2 == 0])
    store.transact([Put(("d:x", b""), b"doc")])
    got = store.versions([*keys, ("d:x", b""), ("d:none", b""), keys[0]])
    # Range versions (RANGE_VERSION_PARTITIONS) promise to grow with each
    # write and stay put otherwise (DynamoDB counts 0, 1, 2; SQLite's
    # committer uses commit timestamps): bumped twice > once > never.
    twice, once, never = got[0], got[1], got[50]
    assert never == before and never < once < twice
    expected = [(twice if i % 2 == 0 else once) if i < 50 else never for i in range(150)]
    assert got == [*expected, 1, 0, twice]


def _dynamodb(store: Store) -> Any:
    from runtime.store.dynamodb import DynamoDBStore

    if not isinstance(store, DynamoDBStore):
        pytest.skip("DynamoDB only")
    return store


def test_query_validation_rereads_with_transact_get_items(store: Store) -> None:
    """A query's re-read of its versions is one TransactGetItems (serializable
    against commits), not a BatchGetItem (read-committed: it can see half a
    commit and pass a torn read)."""
    dstore = _dynamodb(store)
    db = Database(store, SCHEMA)
    ids = db.mutation(
        lambda tx: [tx.insert("accounts", {"owner": f"o{i}", "balance": i}) for i in range(3)]
    ).value
    calls: list[tuple[str, int]] = []

    def observe(operation: str, params: dict[str, Any]) -> None:
        if operation == "TransactGetItems":
            calls.append((operation, len(params["TransactItems"])))
        elif operation == "BatchGetItem":
            calls.append((operation, sum(len(r["Keys"]) for r in params["RequestItems"].values())))

    observe_dynamodb_calls(dstore.client, observe)
    out = db.query(lambda tx: [tx.get(i)["balance"] for i in ids])
    assert out.value == [0, 1, 2]
    # the run's reads (one by id each), then the validation: 3 versions in one snapshot
    assert calls == [("BatchGetItem", 1)] * 3 + [("TransactGetItems", 3)]


def _two_processes(store: Store, behind: int) -> tuple[Store, Store]:
    """The fixture's store, and a second store on the same table whose clock
    is far behind (another Lambda with a skewed clock)."""
    from runtime.store.dynamodb import DynamoDBStore

    dstore = _dynamodb(store)
    other = DynamoDBStore(dstore.table, client=dstore.client, clock=lambda: behind)
    return dstore, other


def test_a_commit_that_read_another_process_write_gets_a_larger_timestamp(
    store: Store,
) -> None:
    ahead, behind = _two_processes(store, behind=1_000)
    db_a, db_b = Database(ahead, SCHEMA), Database(behind, SCHEMA)
    written = db_a.mutation(lambda tx: tx.insert("accounts", {"owner": "a", "balance": 1}))
    assert written.ts is not None and written.ts > 10**18

    def copy(tx: Transaction) -> None:
        tx.insert("accounts", {"owner": "b", "balance": tx.get(written.value)["balance"]})

    out = db_b.mutation(copy)
    assert out.ts is not None and out.ts > written.ts


def test_a_commit_that_saw_a_range_emptied_elsewhere_gets_a_larger_timestamp(
    store: Store,
) -> None:
    ahead, behind = _two_processes(store, behind=1_000)
    db_a, db_b = Database(ahead, SCHEMA), Database(behind, SCHEMA)
    doc = db_a.mutation(lambda tx: tx.insert("accounts", {"owner": "x", "balance": 1})).value
    deleted = db_a.mutation(lambda tx: tx.delete(doc))
    assert deleted.ts is not None

    def count_then_insert(tx: Transaction) -> int:
        found = tx.query("accounts").with_index("by_owner", lambda q: q.eq("owner", "x"))
        n = len(found.collect())
        tx.insert("accounts", {"owner": "y", "balance": n})
        return n

    out = db_b.mutation(count_then_insert)
    assert out.value == 0
    assert out.ts is not None and out.ts > deleted.ts
