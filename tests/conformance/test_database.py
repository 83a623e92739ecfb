"""The ctx.db API and its transactions, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.database import (
    Database,
    DocumentNotFoundError,
    InvalidCursorError,
    InvalidQueryError,
    NotUniqueError,
    ReadOnlyError,
    Transaction,
)
from runtime.errors import InvalidIdError
from runtime.values import UNDEFINED


def run(db: Database, fn: Any) -> Any:
    return db.mutation(fn).value


def rows(db: Database, table: str) -> list[dict[str, Any]]:
    return db.query(lambda tx: tx.query(table).collect()).value


def add_items(db: Database, specs: list[tuple[int, float, str]]) -> list[str]:
    def fn(tx: Transaction) -> list[str]:
        return [tx.insert("items", {"list": li, "rank": r, "name": n}) for li, r, n in specs]

    return run(db, fn)


# ---- documents ---------------------------------------------------------------


def test_insert_get_and_system_fields(db: Database) -> None:
    doc_id = run(db, lambda tx: tx.insert("accounts", {"owner": "ann", "balance": 5}))
    doc = db.query(lambda tx: tx.get(doc_id)).value
    assert doc["_id"] == doc_id
    assert isinstance(doc["_creationTime"], float)
    assert doc["owner"] == "ann" and doc["balance"] == 5 and type(doc["balance"]) is int
    assert db.query(lambda tx: tx.normalize_id("accounts", doc_id)).value == doc_id
    assert db.query(lambda tx: tx.normalize_id("messages", doc_id)).value is None
    assert db.query(lambda tx: tx.normalize_id("accounts", "nope")).value is None
    with pytest.raises(InvalidIdError):
        db.query(lambda tx: tx.get("not-an-id"))


def test_values_round_trip_through_the_store(db: Database) -> None:
    value = {
        "i": -(2**63),
        "f": -0.0,
        "inf": float("inf"),
        "b": b"\x00\xff",
        "s": "h\u00e9llo \U0001f600 \x00",
        "n": None,
        "t": True,
        "nested": {"a": [1, 2.5, {"deep": [b"x"]}]},
    }
    doc_id = run(db, lambda tx: tx.insert("notes", value))
    got = db.query(lambda tx: tx.get(doc_id)).value
    for k, val in value.items():
        assert got[k] == val and type(got[k]) is type(val), k
    assert str(got["f"]) == "-0.0"


def test_patch_replace_delete(db: Database) -> None:
    doc_id = run(db, lambda tx: tx.insert("notes", {"a": 1, "b": 2}))
    run(db, lambda tx: tx.patch(doc_id, {"b": UNDEFINED, "c": {"x": True}}))
    doc = db.query(lambda tx: tx.get(doc_id)).value
    assert {k: doc[k] for k in doc if not k.startswith("_")} == {"a": 1, "c": {"x": True}}
    created = doc["_creationTime"]
    run(db, lambda tx: tx.replace(doc_id, {"z": "only"}))
    doc = db.query(lambda tx: tx.get(doc_id)).value
    assert {k: doc[k] for k in doc if not k.startswith("_")} == {"z": "only"}
    assert doc["_creationTime"] == created and doc["_id"] == doc_id
    run(db, lambda tx: tx.delete(doc_id))
    assert db.query(lambda tx: tx.get(doc_id)).value is None
    with pytest.raises(DocumentNotFoundError):
        run(db, lambda tx: tx.patch(doc_id, {"a": 1}))


def test_queries_are_read_only(db: Database) -> None:
    with pytest.raises(ReadOnlyError):
        db.query(lambda tx: tx.insert("notes", {"a": 1}))
    assert rows(db, "notes") == []


def test_reads_see_own_writes_in_point_reads_and_ranges(db: Database) -> None:
    _, move, gone = add_items(db, [(1, 1.0, "keep"), (1, 2.0, "move"), (1, 3.0, "gone")])

    def fn(tx: Transaction) -> dict[str, Any]:
        new = tx.insert("items", {"list": 1, "rank": 1.5, "name": "new"})
        tx.patch(move, {"list": 2})
        tx.delete(gone)
        q1 = tx.query("items").with_index("by_list_rank", lambda q: q.eq("list", 1)).collect()
        q2 = tx.query("items").with_index("by_list", lambda q: q.eq("list", 2)).collect()
        desc = tx.query("items").order("desc").collect()
        return {
            "new": tx.get(new)["name"],
            "gone": tx.get(gone),
            "list1": [d["name"] for d in q1],
            "list2": [d["name"] for d in q2],
            "desc": [d["name"] for d in desc],
        }

    got = run(db, fn)
    assert got == {
        "new": "new",
        "gone": None,
        "list1": ["keep", "new"],
        "list2": ["move"],
        "desc": ["new", "move", "keep"],
    }


def test_returned_documents_are_fresh_objects(db: Database) -> None:
    doc_id = run(db, lambda tx: tx.insert("notes", {"a": [1]}))

    def fn(tx: Transaction) -> Any:
        d = tx.get(doc_id)
        d["a"].append(2)
        return tx.get(doc_id)["a"]

    assert run(db, fn) == [1]


# ---- queries -----------------------------------------------------------------


def test_order_take_first_unique(db: Database) -> None:
    ids = add_items(db, [(1, float(i), f"n{i}") for i in range(5)])
    asc = db.query(lambda tx: [d["_id"] for d in tx.query("items").collect()]).value
    assert asc == ids
    desc = db.query(lambda tx: [d["_id"] for d in tx.query("items").order("desc").take(2)]).value
    assert desc == ids[::-1][:2]
    assert db.query(lambda tx: tx.query("items").first()["_id"]).value == ids[0]
    assert db.query(lambda tx: tx.query("accounts").first()).value is None
    with pytest.raises(NotUniqueError):
        db.query(lambda tx: tx.query("items").unique())
    one = db.query(
        lambda tx: (
            tx.query("items")
            .with_index("by_list_rank", lambda q: q.eq("list", 1).eq("rank", 3.0))
            .unique()
        )
    ).value
    assert one["name"] == "n3"
    assert db.query(lambda tx: [d["name"] for d in tx.query("items")]).value == [
        f"n{i}" for i in range(5)
    ]


def test_index_ranges(db: Database) -> None:
    add_items(db, [(li, float(r), f"{li}-{r}") for li in (1, 2, 3) for r in range(5)])

    def names(fn: Any) -> list[str]:
        return db.query(lambda tx: [d["name"] for d in fn(tx)]).value

    idx = lambda tx, f: tx.query("items").with_index("by_list_rank", f)  # noqa: E731
    assert names(lambda tx: idx(tx, lambda q: q.eq("list", 2)).collect()) == [
        f"2-{r}" for r in range(5)
    ]
    assert names(
        lambda tx: idx(tx, lambda q: q.eq("list", 2).gt("rank", 1.0).lte("rank", 3.0)).collect()
    ) == ["2-2", "2-3"]
    assert names(
        lambda tx: (
            idx(tx, lambda q: q.eq("list", 2).gte("rank", 1.0).lt("rank", 3.0))
            .order("desc")
            .collect()
        )
    ) == ["2-2", "2-1"]
    assert names(lambda tx: idx(tx, lambda q: q.gt("list", 2)).take(2)) == ["3-0", "3-1"]
    assert names(lambda tx: idx(tx, lambda q: q.lt("list", 2)).order("desc").take(1)) == ["1-4"]
    assert names(lambda tx: idx(tx, None).order("desc").take(1)) == ["3-4"]
    with pytest.raises(InvalidQueryError, match='must name "list"'):
        db.query(lambda tx: idx(tx, lambda q: q.eq("rank", 1.0)).collect())
    with pytest.raises(InvalidQueryError, match="not found"):
        db.query(lambda tx: tx.query("items").with_index("by_nothing").collect())


def test_creation_time_index_and_mixed_kinds(db: Database) -> None:
    def fn(tx: Transaction) -> None:
        for value in ["s", 2.0, None, True, b"b", [1], {"o": 1}, 3]:
            tx.insert("notes", {"k": value})

    run(db, fn)
    ordered = db.query(lambda tx: [d["k"] for d in tx.query("notes").collect()]).value
    assert ordered == ["s", 2.0, None, True, b"b", [1], {"o": 1}, 3]
    t = db.query(lambda tx: tx.query("notes").collect()[3]["_creationTime"]).value
    later = db.query(
        lambda tx: [
            d["k"]
            for d in tx.query("notes")
            .with_index("by_creation_time", lambda q: q.gt("_creationTime", t))
            .collect()
        ]
    ).value
    assert later == [b"b", [1], {"o": 1}, 3]


def test_filters(db: Database) -> None:
    add_items(db, [(1, float(i), f"n{i}") for i in range(10)])

    def names(f: Any) -> list[str]:
        return db.query(lambda tx: [d["name"] for d in tx.query("items").filter(f).collect()]).value

    assert names(lambda q: q.eq(q.field("name"), "n3")) == ["n3"]
    assert names(lambda q: q.and_(q.gte(q.field("rank"), 2.0), q.lt(q.field("rank"), 4.0))) == [
        "n2",
        "n3",
    ]
    assert names(lambda q: q.or_(q.eq(q.field("rank"), 1.0), q.eq(q.field("rank"), 8.0))) == [
        "n1",
        "n8",
    ]
    assert names(lambda q: q.not_(q.lt(q.field("rank"), 8.0))) == ["n8", "n9"]
    assert names(lambda q: q.gt(q.mul(q.field("rank"), 2.0), 15.0)) == ["n8", "n9"]
    assert names(lambda q: q.eq(q.mod(q.field("list"), 2), 1)) == [f"n{i}" for i in range(10)]
    assert names(lambda q: q.eq(q.field("missing"), None)) == []
    assert names(lambda q: q.neq(q.field("rank"), q.sub(q.field("rank"), 0.0))) == []
    with pytest.raises(InvalidQueryError):
        names(lambda q: q.add(q.field("rank"), 1))  # float64 + int64


def test_paginate_walks_everything_once_under_concurrent_inserts(db: Database) -> None:
    original = add_items(db, [(1, float(i), f"n{i}") for i in range(11)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = db.query(
            lambda tx, cursor=cursor: (
                tx.query("items")
                .with_index("by_list", lambda q: q.eq("list", 1))
                .paginate({"num_items": 4, "cursor": cursor})
            )
        ).value
        seen += [d["_id"] for d in page["page"]]
        cursor = page["continueCursor"]
        pages += 1
        if pages == 1:
            # Inserted around the page boundary while paging.
            add_items(db, [(1, 99.0, "late"), (2, 0.0, "other list")])
        if page["isDone"]:
            break
        assert pages < 10
    assert seen[: len(original)] == original
    assert len(seen) == len(set(seen)) == len(original) + 1
    with pytest.raises(InvalidCursorError):
        db.query(
            lambda tx: tx.query("items").order("desc").paginate({"num_items": 1, "cursor": cursor})
        )


def test_paginate_desc_with_filter_and_end_cursor(db: Database) -> None:
    add_items(db, [(1, float(i), f"n{i}") for i in range(8)])

    def page(opts: dict[str, Any]) -> Any:
        return db.query(
            lambda tx: (
                tx.query("items")
                .order("desc")
                .filter(lambda q: q.neq(q.field("name"), "n5"))
                .paginate(opts)
            )
        ).value

    first = page({"numItems": 3, "cursor": None})
    assert [d["name"] for d in first["page"]] == ["n7", "n6", "n4"]
    second = page({"num_items": 3, "cursor": first["continueCursor"]})
    assert [d["name"] for d in second["page"]] == ["n3", "n2", "n1"]
    again = page({"num_items": 1, "cursor": None, "end_cursor": first["continueCursor"]})
    assert [d["name"] for d in again["page"]] == ["n7", "n6", "n4"]


# ---- transactions --------------------------------------------------------------


def test_phantom_insert_into_a_read_range_is_a_conflict(db: Database) -> None:
    """'count a range, insert if under N' with a concurrent insert between
    the read and the commit: the first attempt must be re-run."""
    attempts = []

    def fn(tx: Transaction) -> int:
        attempts.append(1)
        n = len(tx.query("items").with_index("by_list", lambda q: q.eq("list", 7)).collect())
        if len(attempts) == 1:
            add_items(db, [(7, 0.0, "sneaky")])  # commits while we are running
        if n < 2:
            tx.insert("items", {"list": 7, "rank": 1.0, "name": "mine"})
        return n

    assert run(db, fn) == 1
    assert len(attempts) == 2
    names = db.query(
        lambda tx: sorted(
            d["name"]
            for d in tx.query("items").with_index("by_list", lambda q: q.eq("list", 7)).collect()
        )
    ).value
    assert names == ["mine", "sneaky"]


def test_write_to_another_range_is_not_a_conflict(db: Database) -> None:
    attempts = []

    def fn(tx: Transaction) -> None:
        attempts.append(1)
        tx.query("items").with_index("by_list", lambda q: q.eq("list", 1)).collect()
        if len(attempts) == 1:
            add_items(db, [(2, 0.0, "elsewhere")])
        tx.insert("items", {"list": 1, "rank": 0.0, "name": "x"})

    run(db, fn)
    assert len(attempts) == 1


def test_lost_update_is_prevented(db: Database) -> None:
    acct = run(db, lambda tx: tx.insert("accounts", {"owner": "a", "balance": 0}))
    attempts = []

    def fn(tx: Transaction) -> None:
        attempts.append(1)
        bal = tx.get(acct)["balance"]
        if len(attempts) == 1:
            run(db, lambda t2: t2.patch(acct, {"balance": t2.get(acct)["balance"] + 10}))
        tx.patch(acct, {"balance": bal + 1})

    run(db, fn)
    assert db.query(lambda tx: tx.get(acct)["balance"]).value == 11
    assert len(attempts) == 2


def test_error_from_an_inconsistent_view_is_retried(db: Database) -> None:
    run(db, lambda tx: tx.insert("accounts", {"owner": "u", "balance": 1}))
    attempts = []

    def fn(tx: Transaction) -> Any:
        attempts.append(1)
        found = tx.query("accounts").with_index("by_owner", lambda q: q.eq("owner", "u")).collect()
        if len(attempts) == 1:
            run(db, lambda t2: t2.insert("accounts", {"owner": "u", "balance": 2}))
            raise RuntimeError("saw a state that is already stale")
        return len(found)

    assert db.query(fn).value == 2
    assert len(attempts) == 2


def test_occ_conflict_after_bounded_retries(store: Any) -> None:
    from runtime.database import OccConflictError
    from tests.conformance.conftest import SCHEMA

    db = Database(store, SCHEMA, max_attempts=3, backoff_base=0.0)
    acct = run(db, lambda tx: tx.insert("accounts", {"owner": "a", "balance": 0}))

    def fn(tx: Transaction) -> None:
        bal = tx.get(acct)["balance"]
        run(db, lambda t2: t2.patch(acct, {"balance": t2.get(acct)["balance"] + 1}))
        tx.patch(acct, {"balance": bal + 100})

    with pytest.raises(OccConflictError) as err:
        run(db, fn)
    assert err.value.code == "OCC_CONFLICT"
    assert "accounts" in str(err.value) or acct in str(err.value)
    assert db.query(lambda tx: tx.get(acct)["balance"]).value == 3


def test_transaction_too_large_names_the_item_count_and_writes_nothing(
    capped_db: Database,
) -> None:
    from runtime.database import TransactionTooLargeError

    db = capped_db

    def fn(tx: Transaction) -> None:
        for i in range(20):
            tx.insert("items", {"list": i, "rank": 0.0, "name": "x"})

    with pytest.raises(TransactionTooLargeError) as err:
        run(db, fn)
    assert err.value.code == "TRANSACTION_TOO_LARGE"
    # 20 documents + 60 index entries + 20 field versions + up to 8 table shards
    assert 100 < err.value.details["items"] <= 108  # type: ignore[operator]
    assert "20 documents written, 60 index entries changed" in str(err.value)
    assert rows(db, "items") == []


def test_item_costs_of_common_shapes(db: Database) -> None:
    out = db.mutation(lambda tx: tx.insert("items", {"list": 1, "rank": 0.0, "name": "a"}))
    # 1 document + 3 index entries + 1 table shard + 1 field version ("list"
    # is the first field of both indexes)
    assert out.plan is not None and out.plan.items == 6
    doc_id = out.value
    out = db.mutation(lambda tx: tx.patch(doc_id, {"name": "b"}))
    assert out.plan is not None and out.plan.items == 3
    out = db.mutation(
        lambda tx: (
            tx.query("items").with_index("by_list", lambda q: q.eq("list", 1)).collect(),
            tx.insert("items", {"list": 1, "rank": 1.0, "name": "c"}),
        )
    )
    assert out.plan is not None and out.plan.items == 6


def test_many_point_reads_cost_the_table_shards_not_one_item_each(db: Database) -> None:
    ids: list[str] = []
    for _ in range(4):
        ids += run(db, lambda tx: [tx.insert("notes", {"n": i}) for i in range(40)])
    target = run(db, lambda tx: tx.insert("accounts", {"owner": "t", "balance": 0}))
    attempts = []

    def total_into(tx: Transaction) -> int:
        attempts.append(1)
        total = sum(tx.get(i)["n"] for i in ids)  # 160 reads by id: past DynamoDB's 100 items
        if len(attempts) == 1:
            run(db, lambda t2: t2.patch(ids[77], {"n": 1000}))  # moves one of them meanwhile
        tx.patch(target, {"balance": total})
        return total

    out = db.mutation(total_into)
    assert len(attempts) == 2  # the concurrent patch was caught through the shard versions
    assert out.value == sum(i % 40 for i in range(160)) - 77 % 40 + 1000
    assert out.plan is not None and out.plan.items <= 8 + 3
