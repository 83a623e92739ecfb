"""Commits past 100 items on DynamoDB Local: the large-commit protocol
(`runtime/store/dynamodb_large.py`): all or nothing, crashes at every step
seen by fresh stores on the same table, readers resolving locks, competing
commits, and the change feed."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime.store.dynamodb import DynamoDBStore, create_table, item_model
from runtime.store.dynamodb_large import LargeCommits
from runtime.store.port import (
    Bump,
    Change,
    Check,
    Delete,
    Key,
    Op,
    Put,
    TransactionConflict,
    scan_all,
)
from tests.support.aws import dynamodb_local_client, fake_aws_env

pytestmark = pytest.mark.dynamodb_local

Factory = Callable[..., DynamoDBStore]


class Crash(Exception):
    """A committer dying at a fault point (not a StoreError: no cleanup runs)."""


def _stores(endpoint: str, *, stream: bool) -> Iterator[Factory]:
    client = dynamodb_local_client(endpoint)
    streams = dynamodb_local_client(endpoint, "dynamodbstreams")
    table = f"t{uuid.uuid4().hex[:12]}"
    # No stream unless asked: DynamoDB Local slows down for the rest of the
    # session as stream records pile up (a 1,000-op commit took 4 s on the
    # first streamed table, 68 s on the sixth, deleted ones included; 1-3 s
    # throughout without streams), and only the feed test reads one.
    create_table(client, table, stream=stream)

    def make(*, threads: int = 8, faults: Callable[[str], None] | None = None) -> DynamoDBStore:
        store = DynamoDBStore(
            table,
            client=client,
            streams_client=streams,
            max_transaction_items=None,
            faults=faults,
        )
        store.large = LargeCommits(client, table, threads=threads)
        return store

    yield make
    client.delete_table(TableName=table)


@pytest.fixture
def stores(dynamodb_local_endpoint: str) -> Iterator[Factory]:
    """Fresh DynamoDBStore objects on one new table (as other processes would
    be), commits of any size allowed; `threads=1` makes the batches run in
    order so a crash at batch n leaves exactly batches < n done."""
    yield from _stores(dynamodb_local_endpoint, stream=False)


@pytest.fixture
def streamed_stores(dynamodb_local_endpoint: str) -> Iterator[Factory]:
    """As `stores`, on a table with the store's stream (the change feed)."""
    yield from _stores(dynamodb_local_endpoint, stream=True)


def crash_at(point: str) -> Callable[[str], None]:
    def fault(at: str) -> None:
        if at == point:
            raise Crash(at)

    return fault


def doc(i: int) -> Key:
    return ("d:t", i.to_bytes(4, "big"))


def raw_items(store: DynamoDBStore) -> list[dict[str, Any]]:
    client = store.client
    items: list[dict[str, Any]] = []
    kw: dict[str, Any] = {"TableName": store.table, "ConsistentRead": True}
    while True:
        resp = client.scan(**kw)
        items += resp["Items"]
        if "LastEvaluatedKey" not in resp:
            return items
        kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def leftovers(store: DynamoDBStore) -> list[dict[str, Any]]:
    """Locks, placeholders, payloads and commit records left in the table."""
    return [r for r in raw_items(store) if "lk" in r or r["pk"]["S"].startswith("~tx")]


def expire_records(store: DynamoDBStore) -> None:
    """Time passing: every commit record's deadline is now in the past."""
    for r in raw_items(store):
        if r["pk"]["S"] == "~tx":
            store.client.update_item(
                TableName=store.table,
                Key={"pk": r["pk"], "sk": r["sk"]},
                UpdateExpression="SET dl = :zero",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )


def seed(store: DynamoDBStore, n: int) -> None:
    """Documents 0..n-1 at version 1 (value b"old<i>"), 50 a small commit."""
    for lo in range(0, n, 50):
        store.transact(
            [Put(doc(i), b"old%d" % i, expect=0, feed=True) for i in range(lo, min(n, lo + 50))]
        )


def values(store: DynamoDBStore, n: int) -> dict[int, tuple[bytes, int] | None]:
    got = store.get([doc(i) for i in range(n)])
    return {i: (it.value, it.version) if it else None for i, it in enumerate(got)}


# ---- all or nothing --------------------------------------------------------------


def mixed_ops(existing: int, total: int) -> list[Op]:
    """Over documents 0..existing-1 at version 1: a quarter each of updates,
    deletes, bumps and checks, then inserts up to `total` ops."""
    q = existing // 4
    ops: list[Op] = []
    for i in range(existing):
        if i < q:
            ops.append(Put(doc(i), b"new%d" % i, expect=1, feed=True))
        elif i < 2 * q:
            ops.append(Delete(doc(i), expect=1, feed=True))
        elif i < 3 * q:
            ops.append(Bump(doc(i), expect=1))
        else:
            ops.append(Check(doc(i), 1))
    ops += [Put(doc(i), b"new%d" % i, expect=0, feed=True) for i in range(existing, total)]
    return ops


def assert_applied(store: DynamoDBStore, existing: int, total: int) -> None:
    q = existing // 4
    got = values(store, total)
    for i in range(total):
        if i < q:
            assert got[i] == (b"new%d" % i, 2), i
        elif i < 2 * q:
            assert got[i] is None, i
        elif i < 3 * q:
            assert got[i] == (b"old%d" % i, 2), i
        elif i < existing:
            assert got[i] == (b"old%d" % i, 1), i
        else:
            assert got[i] == (b"new%d" % i, 1), i


def test_a_thousand_op_commit_applies_every_op(stores: Factory) -> None:
    store = stores()
    seed(store, 200)
    ops = [*mixed_ops(200, 1000), Check(doc(5000), 0)]
    ts = store.transact(ops).ts
    assert_applied(stores(), 200, 1000)
    assert store.get([doc(5000)]) == [None]
    assert leftovers(store) == []
    assert stores().versions([doc(0), doc(150), doc(999)]) == [2, 1, 1]
    item = next(r for r in raw_items(store) if r["pk"]["S"] == "d:t" and r["sk"]["B"][-1] == 0)
    assert int(item["ts"]["N"]) == ts  # doc(0), written by the commit, carries its ts


def test_one_stale_expectation_in_the_last_batch_changes_nothing(stores: Factory) -> None:
    store = stores()
    seed(store, 200)
    store.transact([Put(doc(199), b"moved", expect=1)])  # doc 199 now at version 2
    before = values(store, 1000)
    ops = mixed_ops(200, 1000)
    ops.append(ops.pop(199))  # the stale op goes last (batch 9 of 10)
    with pytest.raises(TransactionConflict) as info:
        store.transact(ops)
    assert info.value.keys == [doc(199)]
    assert values(stores(), 1000) == before
    assert leftovers(store) == []


@pytest.mark.scale
def test_a_ten_thousand_op_commit_is_all_or_nothing(stores: Factory) -> None:
    store = stores()
    seed(store, 400)
    ops = mixed_ops(400, 10_000)
    stale = [*ops[:-1], Put(doc(10_000), b"x", expect=3)]  # absent: stale
    with pytest.raises(TransactionConflict):
        store.transact(stale)
    assert [r for r in raw_items(store) if r["pk"]["S"] == "d:t"].__len__() == 400
    assert leftovers(store) == []
    store.transact(ops)
    assert_applied(stores(), 400, 10_000)
    assert leftovers(store) == []


# ---- crashes ----------------------------------------------------------------------

POINTS = ["staged", "locked:0", "locked", "committed", "applied:0"]


def crash_ops() -> list[Op]:
    """150 ops in 2 lock batches: updates 0..59, deletes 60..89 (of
    documents 0..89), inserts 90..149."""
    return [
        *[Put(doc(i), b"new%d" % i, expect=1, feed=True) for i in range(60)],
        *[Delete(doc(i), expect=1, feed=True) for i in range(60, 90)],
        *[Put(doc(i), b"new%d" % i, expect=0, feed=True) for i in range(90, 150)],
    ]


def new_state(i: int) -> tuple[bytes, int] | None:
    if i < 60:
        return (b"new%d" % i, 2)
    if i < 90:
        return None
    return (b"new%d" % i, 1)


def old_state(i: int) -> tuple[bytes, int] | None:
    return (b"old%d" % i, 1) if i < 90 else None


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_point_is_all_or_nothing_for_other_processes(
    stores: Factory, point: str
) -> None:
    seed(stores(), 90)
    with pytest.raises(Crash):
        stores(threads=1, faults=crash_at(point)).transact(crash_ops())
    committed = point.startswith(("committed", "applied"))
    other = stores()
    if committed:
        # doc 149 (last batch) is still locked: a small commit over it conflicts,
        # and its conflict rolls the key forward, so the re-run passes.
        with pytest.raises(TransactionConflict):
            other.transact([Put(doc(149), b"small", expect=1)])
        other.transact([Put(doc(149), b"small", expect=1)])
        expected = {i: new_state(i) for i in range(150)}
        expected[149] = (b"small", 2)
        assert values(stores(), 150) == expected
    else:
        locked = point != "staged"  # batch 0 (docs 0..99) is locked from "locked:0" on
        expected = {i: old_state(i) for i in range(150)}
        for _ in range(2):  # within the deadline: none of it is seen, its locks hold
            if locked:
                with pytest.raises(TransactionConflict):
                    other.transact([Put(doc(0), b"small", expect=1)])
            assert values(stores(), 150) == expected
        expire_records(other)  # the deadline passes: the next reader aborts it
        assert values(stores(), 150) == expected
        other.transact([Put(doc(0), b"small", expect=1)])
        expected[0] = (b"small", 2)
    expire_records(other)
    assert other.large.recover_expired(limit=10) <= 1
    assert leftovers(other) == []
    # Nothing applied twice: every written key grew by exactly one.
    assert values(stores(), 150) == expected
    assert stores().versions([doc(i) for i in (1, 70, 120)]) == (
        [2, 0, 1] if committed else [1, 1, 0]
    )


# ---- readers ----------------------------------------------------------------------


def test_readers_see_a_pending_commit_as_not_happened(stores: Factory) -> None:
    seed(stores(), 90)
    with pytest.raises(Crash):
        stores(threads=1, faults=crash_at("locked")).transact(crash_ops())
    reader = stores()
    # Placeholders of the inserts lie between the old documents' keys... and past them.
    page = reader.scan("d:t", limit=200)
    assert [it.key for it in page] == [doc(i) for i in range(90)]
    assert [it.key for it in reader.scan("d:t", doc(89)[1], limit=5)] == [doc(89)]
    assert [it.value for it in reader.scan("d:t", reverse=True, limit=3)] == [
        b"old89",
        b"old88",
        b"old87",
    ]
    assert reader.versions([doc(0), doc(120)]) == [1, 0]
    assert sum(1 for r in raw_items(reader) if "lk" in r) == 150  # nobody aborted it


def test_the_pynamodb_model_reads_locks_and_placeholders(stores: Factory) -> None:
    seed(stores(), 90)
    with pytest.raises(Crash):
        stores(threads=1, faults=crash_at("locked")).transact(crash_ops())
    store = stores()
    meta = store.client.meta
    with fake_aws_env(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local"):
        os.environ.pop("AWS_SESSION_TOKEN", None)
        model: Any = item_model(store.table, host=meta.endpoint_url, region=meta.region_name)
        locked = model.get("d:t", b"\x00" + doc(0)[1], consistent_read=True)
        placeholder = model.get("d:t", b"\x00" + doc(120)[1], consistent_read=True)
    assert locked.lk and locked.lk == placeholder.lk
    assert (locked.n, locked.v, locked.li) == (1, b"old0", 0)
    assert placeholder.n is None and placeholder.v is None and placeholder.lts > 0


def test_readers_roll_a_committed_commit_forward(stores: Factory) -> None:
    seed(stores(), 90)
    with pytest.raises(Crash):
        stores(threads=1, faults=crash_at("committed")).transact(crash_ops())
    # A scan meets placeholders of inserts: it rolls them forward and counts them.
    got = stores().scan("d:t", doc(80)[1], limit=20)
    assert [(it.key, it.value, it.version) for it in got] == [
        (doc(i), b"new%d" % i, 1) for i in range(90, 110)
    ]
    assert stores().versions([doc(0), doc(75), doc(149)]) == [2, 0, 1]
    assert [it.value for it in scan_all(stores(), "d:t")] == [
        b"new%d" % i for i in [*range(60), *range(90, 150)]
    ]
    assert not any("lk" in r for r in raw_items(stores()))


def test_a_reader_aborts_an_expired_pending_commit(stores: Factory) -> None:
    seed(stores(), 90)
    with pytest.raises(Crash):
        stores(threads=1, faults=crash_at("locked")).transact(crash_ops())
    reader = stores()
    expire_records(reader)
    assert reader.get([doc(0), doc(120)])[0] is not None
    records = [r for r in raw_items(reader) if r["pk"]["S"] == "~tx"]
    assert [r["st"]["S"] for r in records] == ["aborted"]
    raw = reader.client.get_item(
        TableName=reader.table, Key={"pk": {"S": "d:t"}, "sk": {"B": b"\x00" + doc(0)[1]}}
    )
    assert "lk" not in raw["Item"]
    assert reader.large.recover_expired() == 1
    assert leftovers(reader) == []


# ---- competing commits --------------------------------------------------------------


def test_a_large_commit_over_another_ones_locks_conflicts_and_leaves_nothing(
    stores: Factory,
) -> None:
    seed(stores(), 90)
    loser_ops: list[Op] = [Put(doc(i), b"loser", expect=1) for i in range(60, 90)]
    loser_ops += [Put(doc(i), b"loser", expect=0) for i in range(300, 400)]
    outcome: list[BaseException] = []

    def meanwhile(point: str) -> None:
        if point == "locked":  # the winner holds every lock, not yet committed
            try:
                stores().transact(loser_ops)
            except TransactionConflict as e:
                outcome.append(e)

    stores(faults=meanwhile).transact(crash_ops())
    assert len(outcome) == 1
    got = values(stores(), 400)
    assert got == {i: new_state(i) if i < 150 else None for i in range(400)}
    assert leftovers(stores()) == []


def test_concurrent_large_commits_over_the_same_keys_at_most_one_wins(stores: Factory) -> None:
    seed(stores(), 90)
    results: dict[str, BaseException | None] = {}

    def run(name: str) -> None:
        ops: list[Op] = [Put(doc(i), name.encode(), expect=1) for i in range(90)]
        ops += [Put(doc(i), name.encode(), expect=0) for i in range(90, 150)]
        try:
            stores().transact(ops)
            results[name] = None
        except TransactionConflict as e:
            results[name] = e

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, e in results.items() if e is None]
    assert len(winners) <= 1
    got = [it.value for it in scan_all(stores(), "d:t")]
    assert got == ([winners[0].encode()] * 150 if winners else [b"old%d" % i for i in range(90)])
    assert leftovers(stores()) == []


# ---- the change feed ------------------------------------------------------------------


def feed_after(store: DynamoDBStore, position: str | None) -> tuple[list[Change], str | None]:
    changes: list[Change] = []
    while True:
        batch = store.read_changes(position, limit=1000)
        changes += batch.changes
        if batch.position == position or not batch.changes:
            return changes, batch.position
        position = batch.position


def test_the_feed_carries_a_large_commit_at_its_ts_and_no_lock_writes(
    streamed_stores: Factory,
) -> None:
    store = streamed_stores()
    seed(store, 90)
    _, position = feed_after(store, None)
    with pytest.raises(TransactionConflict):  # locks taken, then undone: no change
        store.transact([*crash_ops()[1:], Put(doc(0), b"x", expect=7)])
    ts = store.transact(crash_ops()).ts
    changes, _ = feed_after(store, position)
    assert len(changes) == 150
    assert {c.ts for c in changes} == {ts}
    by_key = {c.key: c for c in changes}
    assert by_key[doc(0)].old_value == b"old0" and by_key[doc(0)].new_value == b"new0"
    assert by_key[doc(70)].old_value == b"old70" and by_key[doc(70)].new_value is None
    assert by_key[doc(120)].old_value is None and by_key[doc(120)].new_value == b"new120"


# ---- large values, re-creation, range versions ------------------------------------------


def test_a_large_commit_writes_chunked_values_and_retires_the_old_chunks(
    stores: Factory,
) -> None:
    store = stores()
    big_old, big_new = b"o" * 800_000, b"n" * 900_000  # 3 chunks each
    a, b, c = ("d:big", b"a"), ("d:big", b"b"), ("d:re", b"c")
    store.transact([Put(a, big_old, expect=0, feed=True), Put(c, b"gone", expect=0)])
    store.transact([Delete(c, expect=1)])
    ops: list[Op] = [
        Put(a, big_new, expect=1, feed=True),  # over a chunked value: its chunks pinned
        Put(b, big_new),
        Put(c, b"again", expect=0, recreate=True),
        Bump(("v:r", b"1"), value=b""),
        *[Bump(("v:t", i.to_bytes(2, "big"))) for i in range(100)],
    ]
    ts = store.transact(ops).ts
    got = stores().get([a, b, c, ("v:r", b"1")])
    assert [(it.value, it.version) for it in got if it] == [
        (big_new, 2),
        (big_new, 1),
        (b"again", ts),
        (b"", 1),
    ]
    chunks = [r for r in raw_items(store) if r["pk"]["S"].startswith("~chunk:")]
    assert len(chunks) == 2 + 2 + 2  # the old value's 2, each new value's 2
    assert sum(1 for r in chunks if "x" in r) == 2  # the old ones expire
    assert leftovers(store) == []


def test_an_aborted_large_commit_removes_its_staged_chunks(stores: Factory) -> None:
    store = stores()
    ops: list[Op] = [Put(("d:big", b"a"), b"n" * 900_000, expect=0)]
    ops += [Bump(("v:t", i.to_bytes(2, "big")), expect=5) for i in range(100)]  # stale
    with pytest.raises(TransactionConflict):
        store.transact(ops)
    assert raw_items(store) == []


def test_a_commit_past_4_mb_under_100_items_takes_the_large_path(stores: Factory) -> None:
    store = stores()
    ops: list[Op] = [Put(("d:big", bytes([i])), bytes([i]) * 1_000_000) for i in range(5)]
    store.transact(ops)  # 15 items, 5 MB: one TransactWriteItems takes at most 4 MB
    got = stores().get([op.key for op in ops])
    assert [it.value[:1] * len(it.value) if it else None for it in got] == [
        bytes([i]) * 1_000_000 for i in range(5)
    ]
    assert leftovers(store) == []
