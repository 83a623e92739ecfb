"""Mutations past one DynamoDB transaction (issue 15), on every store: a
1,000-document delete, an 8,192-document insert, a 500-document patch over
three tables, each all or nothing under a failure raised by the mutation
after its writes and under a store-level fault in the middle of the commit.

Every store here commits any size in one atomic `transact`
(`max_transaction_items` None: SQLite in one SQLite transaction, DynamoDB
through its large-commit protocol). A store constructed with a cap must
refuse such a mutation with TransactionTooLargeError and write nothing; each
test asserts whichever applies (on a capped store the data set is cut to what
proves the refusal, 40 documents). On DynamoDB the sizes are bounded (BOUND);
the full 8,192-document insert runs under the `scale` marker.

Convex's own limits stay: 8,193 documents written -> DOCUMENTS_WRITTEN,
more than 8 MiB -> BYTES_WRITTEN, on every store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from runtime.database import Database, Transaction, TransactionTooLargeError
from runtime.limits import (
    BYTES_WRITTEN_PER_MUTATION,
    DOCUMENTS_WRITTEN_PER_MUTATION,
    LimitExceeded,
)
from runtime.store.port import Store, StoreError
from runtime.store.sqlite import SqliteStore
from tests.support.aws import dynamodb_local_store, moto_dynamodb_store


class Crash(Exception):
    """A committer dying in the middle of a commit (fault injection)."""


def uncapped(db: Database) -> bool:
    return db.store.max_transaction_items is None


BOUND = {"moto": 40, "dynamodb_local": 1000}
"""Documents per case on an uncapped DynamoDB: moto deep-copies the whole
table once per entry of every TransactWriteItems (quadratic: minutes for 150
documents through the large protocol; 40 documents are already past 100
items, so the large path runs, as a request-shape check), and
8,192 inserts take minutes on DynamoDB Local, so the full insert runs under
the `scale` marker there (`test_insert_8192_documents_full_size`)."""


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The conformance `store`, except that DynamoDB tables have no stream:
    these tests never read the change feed, and streams slow both fakes down
    as records pile up (DynamoDB Local for the rest of its life: a
    1,000-document insert late in the suite took minutes instead of seconds;
    moto copies a table's stream records on every transaction entry)."""
    if backend == "moto":
        yield from moto_dynamodb_store(stream=False)
        return
    if backend == "dynamodb_local":
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        yield from dynamodb_local_store(endpoint, f"t{uuid.uuid4().hex[:12]}", stream=False)
        return
    factory: Callable[[str], Iterator[Store]] = request.getfixturevalue("store_factory")
    yield from factory(backend)


def size(db: Database, backend: str, n: int, *, full: bool = False) -> int:
    """`n` on a store that commits any size (bounded on DynamoDB unless
    `full`); on a capped one, enough to be refused."""
    if not uncapped(db):
        return 40
    return n if full else min(n, BOUND.get(backend, n))


def seed(db: Database, table: str, docs: list[dict[str, Any]]) -> list[str]:
    """Insert `docs`: one mutation where any size commits, else batches of 10."""
    step = len(docs) if uncapped(db) else 10
    ids: list[str] = []
    for start in range(0, len(docs), step):
        chunk = docs[start : start + step]
        ids += db.mutation(lambda tx, c=chunk: [tx.insert(table, d) for d in c]).value
    return ids


def rows(db: Database, table: str) -> list[dict[str, Any]]:
    return db.query(lambda tx: tx.query(table).collect()).value


@contextmanager
def store_fault(db: Database) -> Iterator[type[BaseException] | tuple[type[BaseException], ...]]:
    """Make the next large commit fail inside the store, after some of its
    writes: on SQLite a statement interrupted mid-apply (the progress handler
    aborts it ~20,000 VM steps into its first writes; the store rolls its transaction back);
    on DynamoDB the large committer's `faults` hook crashes it once all its
    locks are taken. Yields what the commit raises."""
    store = db.store
    if isinstance(store, SqliteStore):
        conn = store._conn
        writing = [False]
        calls = [0]

        def trace(sql: str) -> None:
            if sql.startswith(("INSERT INTO items", "DELETE FROM items")):
                writing[0] = True

        def progress() -> int:
            if writing[0]:
                calls[0] += 1
            return 1 if calls[0] > 20 else 0

        conn.set_trace_callback(trace)
        conn.set_progress_handler(progress, 1000)
        try:
            yield StoreError
        finally:
            conn.set_progress_handler(None, 0)
            conn.set_trace_callback(None)
        assert calls[0] > 20, "the fault never fired while writing"
        return
    fired: list[str] = []

    def fault(point: str) -> None:
        if point == "locked" and not fired:
            fired.append(point)
            raise Crash(point)

    old = store.faults  # type: ignore[attr-defined]
    store.faults = fault  # type: ignore[attr-defined]
    try:
        yield Crash
    finally:
        store.faults = old  # type: ignore[attr-defined]
    assert fired, "the fault never fired"
    # The crashed commit's locks hold its keys until its deadline
    # (LARGE_COMMIT_DEADLINE_SECONDS): a writer meeting them conflicts, a reader
    # reads past them. Let that time pass, so the next writer aborts it.
    expire_commit_records(store)


def expire_commit_records(store: Any) -> None:
    """Every large-commit record's deadline moved to the past (time passing)."""
    client = store.client
    records = client.query(
        TableName=store.table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "~tx"}},
        ConsistentRead=True,
    )["Items"]
    assert records, "the crash left no commit record"
    for r in records:
        client.update_item(
            TableName=store.table,
            Key={"pk": r["pk"], "sk": r["sk"]},
            UpdateExpression="SET dl = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )


def check_all_or_nothing(
    db: Database, fn: Callable[[Transaction], Any], unchanged: Callable[[], None]
) -> None:
    """`fn` (a large mutation) leaves nothing behind when it raises after its
    writes, when the store fails mid-commit, and on a capped store is refused
    with TransactionTooLargeError."""

    def then_raise(tx: Transaction) -> None:
        fn(tx)
        raise ValueError("after the writes")

    with pytest.raises(ValueError, match="after the writes"):
        db.mutation(then_raise)
    unchanged()
    if not uncapped(db):
        with pytest.raises(TransactionTooLargeError) as err:
            db.mutation(fn)
        assert "Split the work over several mutations" in str(err.value)
        unchanged()
        return
    with store_fault(db) as raised, pytest.raises(raised):
        db.mutation(fn)
    unchanged()


def test_delete_1000_documents(db: Database, backend: str) -> None:
    n = size(db, backend, 1000)
    ids = seed(db, "scores", [{"score": float(i)} for i in range(n)])

    def delete_all(tx: Transaction) -> None:
        for d in tx.query("scores").collect():
            tx.delete(d["_id"])

    def unchanged() -> None:
        assert sorted(d["_id"] for d in rows(db, "scores")) == sorted(ids)

    check_all_or_nothing(db, delete_all, unchanged)
    if uncapped(db):
        out = db.mutation(delete_all)
        assert out.plan is not None and out.plan.large
        assert rows(db, "scores") == []


def test_insert_8192_documents(db: Database, backend: str) -> None:
    insert_case(db, size(db, backend, DOCUMENTS_WRITTEN_PER_MUTATION))


@pytest.mark.scale
def test_insert_8192_documents_full_size(db: Database, backend: str) -> None:
    if backend == "moto":
        pytest.skip("moto copies its table per transaction entry: sizes there are shape checks")
    insert_case(db, size(db, backend, DOCUMENTS_WRITTEN_PER_MUTATION, full=True))


def insert_case(db: Database, n: int) -> None:

    def insert_all(tx: Transaction) -> None:
        for i in range(n):
            tx.insert("scores", {"score": float(i)})

    def unchanged() -> None:
        assert rows(db, "scores") == []

    check_all_or_nothing(db, insert_all, unchanged)
    if uncapped(db):
        out = db.mutation(insert_all)
        assert out.plan is not None and out.plan.items > n
        assert sorted(d["score"] for d in rows(db, "scores")) == [float(i) for i in range(n)]
        by_score = db.query(
            lambda tx: (
                tx.query("scores")
                .with_index("by_score", lambda q: q.gte("score", float(n // 2)))
                .collect()
            )
        ).value
        assert len(by_score) == n - n // 2


def test_patch_500_documents_across_three_tables(db: Database, backend: str) -> None:
    n = size(db, backend, 500)
    third = -(-n // 3)
    accounts = seed(db, "accounts", [{"owner": f"o{i}", "balance": i} for i in range(third)])
    items = seed(db, "items", [{"list": i % 7, "rank": 0.0, "name": "x"} for i in range(third)])
    scores = seed(db, "scores", [{"score": float(i)} for i in range(n - 2 * third)])

    def patch_all(tx: Transaction) -> None:
        for a in accounts:
            tx.patch(a, {"balance": tx.get(a)["balance"] + 1000})
        for it in items:
            tx.patch(it, {"rank": 1.5, "name": "y"})
        for s in scores:
            tx.patch(s, {"score": -1.0})

    def unchanged() -> None:
        assert sorted(d["balance"] for d in rows(db, "accounts")) == list(range(third))
        assert {(d["rank"], d["name"]) for d in rows(db, "items")} == {(0.0, "x")}
        assert -1.0 not in {d["score"] for d in rows(db, "scores")}

    check_all_or_nothing(db, patch_all, unchanged)
    if uncapped(db):
        db.mutation(patch_all)
        assert sorted(d["balance"] for d in rows(db, "accounts")) == [
            i + 1000 for i in range(third)
        ]
        assert {(d["rank"], d["name"]) for d in rows(db, "items")} == {(1.5, "y")}
        assert {d["score"] for d in rows(db, "scores")} == {-1.0}


def test_8193_documents_written_is_the_documents_limit(db: Database) -> None:
    def insert(tx: Transaction) -> None:
        for i in range(DOCUMENTS_WRITTEN_PER_MUTATION + 1):
            tx.insert("scores", {"score": float(i)})

    with pytest.raises(LimitExceeded) as err:
        db.mutation(insert)
    assert err.value.details["limit"] == "DOCUMENTS_WRITTEN"
    assert "DOCUMENTS_WRITTEN limit exceeded: 8,193 > 8,192" in str(err.value)
    assert "schedule the rest" in str(err.value)
    assert rows(db, "scores") == []


def test_over_8_mib_written_is_the_bytes_limit(db: Database) -> None:
    body = "b" * 1_000_000  # 9 of these pass 8 MiB, each under the 1 MiB document cap

    def insert(tx: Transaction) -> None:
        for _ in range(9):
            tx.insert("messages", {"channel": "c", "body": body})

    with pytest.raises(LimitExceeded) as err:
        db.mutation(insert)
    assert err.value.details["limit"] == "BYTES_WRITTEN"
    assert f"> {BYTES_WRITTEN_PER_MUTATION:,}" in str(err.value)
    assert rows(db, "messages") == []


def test_the_bytes_limit_counts_patches_and_deletes_free(db: Database) -> None:
    """BYTES_WRITTEN counts what a patch writes (on every write path)."""
    ids = [
        db.mutation(lambda tx: tx.insert("messages", {"channel": "c", "body": "x"})).value
        for _ in range(9)
    ]
    body = "p" * 1_000_000

    def patch(tx: Transaction) -> None:
        for i in ids:
            tx.patch(i, {"body": body})

    with pytest.raises(LimitExceeded) as err:
        db.mutation(patch)
    assert err.value.details["limit"] == "BYTES_WRITTEN"
    assert {d["body"] for d in rows(db, "messages")} == {"x"}


def test_sqlite_fault_hook_is_a_real_mid_commit_failure() -> None:
    """The SQLite fault of `store_fault` interrupts the commit after some
    statements ran: the rollback is what keeps the store unchanged."""
    store = SqliteStore(":memory:")
    try:
        db = Database(store)
        with store_fault(db), pytest.raises(StoreError, match="interrupted"):
            db.mutation(lambda tx: [tx.insert("notes", {"i": i}) for i in range(3000)])
        assert rows(db, "notes") == []
        # the store is healthy afterwards
        db.mutation(lambda tx: tx.insert("notes", {"i": 1}))
        assert len(rows(db, "notes")) == 1
    finally:
        store.close()


def test_sqlite_commits_any_size() -> None:
    store = SqliteStore(":memory:")
    assert store.max_transaction_items is None
    store.close()
