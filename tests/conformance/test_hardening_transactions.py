"""Transaction edge cases (issue 11), on every backend: each test failed
before its fix."""

from __future__ import annotations

import os
from typing import Any

import pytest

from runtime.database import Database, Transaction, TransactionTooLargeError, layout
from runtime.values import make_id


def run(db: Database, fn: Any) -> Any:
    return db.mutation(fn).value


def by_list(tx: Transaction, li: int, order: str = "asc") -> Any:
    return tx.query("items").with_index("by_list_rank", lambda q: q.eq("list", li)).order(order)


# ---- a mutation iterating a query sees the writes it makes meanwhile ------------------


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_iteration_yields_a_document_patched_ahead_of_the_cursor(db: Database, order: str) -> None:
    ids = run(
        db,
        lambda tx: [
            tx.insert("items", {"list": 1, "rank": float(r), "name": f"n{r}"}) for r in range(5)
        ],
    )
    ahead = ids[3] if order == "asc" else ids[1]

    def fn(tx: Transaction) -> list[str]:
        seen = []
        for doc in by_list(tx, 1, order):
            if not seen:
                tx.patch(ahead, {"name": "patched"})
            seen.append(doc["name"])
        return seen

    names = [f"n{r}" for r in range(5)]
    names[ids.index(ahead)] = "patched"
    assert run(db, fn) == (names if order == "asc" else names[::-1])


def test_iteration_reflects_inserts_and_deletes_ahead_and_yields_each_document_once(
    db: Database,
) -> None:
    ids = run(
        db,
        lambda tx: [
            tx.insert("items", {"list": 1, "rank": float(r), "name": f"n{r}"}) for r in range(4)
        ],
    )

    def fn(tx: Transaction) -> list[str]:
        seen = []
        for doc in by_list(tx, 1):
            seen.append(doc["name"])
            if doc["name"] == "n0":
                tx.insert("items", {"list": 1, "rank": 2.5, "name": "ahead"})
                tx.insert("items", {"list": 1, "rank": -1.0, "name": "behind"})
                tx.delete(ids[3])
                # moves n0 itself ahead of the cursor: not yielded again
                tx.patch(ids[0], {"rank": 10.0})
        return seen

    assert run(db, fn) == ["n0", "n1", "n2", "ahead"]
    # a fresh scan in the same mutation sees the final state
    after = run(db, lambda tx: [d["name"] for d in by_list(tx, 1)])
    assert after == ["behind", "n1", "n2", "ahead", "n0"]


# ---- re-creating a deleted id does not restart its version (no ABA) ------------------


def test_restoring_a_deleted_id_conflicts_with_a_reader_of_the_old_document(
    db: Database,
) -> None:
    acct = run(db, lambda tx: tx.insert("accounts", {"owner": "a", "balance": 5}))
    old = db.query(lambda tx: tx.get(acct)).value
    target = run(db, lambda tx: tx.insert("accounts", {"owner": "t", "balance": 0}))
    (before,) = db.store.get([layout.doc_key(acct)])
    assert before is not None
    attempts = []

    def fn(tx: Transaction) -> None:
        attempts.append(1)
        seen = tx.get(acct)
        if len(attempts) == 1:
            # import --replace: the document goes, then comes back with its id
            run(db, lambda t2: t2.delete(acct))
            run(db, lambda t2: t2.restore("accounts", {**old, "balance": 99}))
        tx.patch(target, {"balance": seen["balance"] if seen else -1})

    db.mutation(fn)
    assert len(attempts) == 2, "a stale read of the re-created id committed (ABA)"
    assert db.query(lambda tx: tx.get(target)["balance"]).value == 99
    (after,) = db.store.get([layout.doc_key(acct)])
    assert after is not None and after.version > before.version


def test_restore_then_patch_in_one_transaction_keeps_the_fresh_version(db: Database) -> None:
    acct = run(db, lambda tx: tx.insert("accounts", {"owner": "a", "balance": 5}))
    old = db.query(lambda tx: tx.get(acct)).value
    run(db, lambda tx: tx.patch(acct, {"balance": 6}))
    (v2,) = db.store.get([layout.doc_key(acct)])
    run(db, lambda tx: tx.delete(acct))

    def fn(tx: Transaction) -> None:
        tx.restore("accounts", old)
        tx.patch(acct, {"balance": 7})

    run(db, fn)
    (now,) = db.store.get([layout.doc_key(acct)])
    assert v2 is not None and now is not None and now.version > v2.version + 1


# ---- reads of absent ids fold into the table's shard check ---------------------------


def test_reading_many_absent_ids_then_inserting_fits_one_transaction(db: Database) -> None:
    run(db, lambda tx: tx.insert("notes", {"n": 0}))  # a table outside the schema
    absent = [make_id("accounts", os.urandom(16)) for _ in range(120)]
    absent_notes = [make_id("notes", os.urandom(16)) for _ in range(120)]
    deleted = run(
        db, lambda tx: [tx.insert("accounts", {"owner": "d", "balance": i}) for i in range(10)]
    )
    run(db, lambda tx: [tx.delete(i) for i in deleted])

    def fn(tx: Transaction) -> int:
        found = [tx.get(i) for i in [*absent, *absent_notes, *deleted]]
        tx.insert("accounts", {"owner": "n", "balance": 0})
        return sum(d is not None for d in found)

    out = db.mutation(fn)
    assert out.value == 0
    # 5 for the insert, plus at most the 8 shards of each table read
    assert out.plan is not None and out.plan.items <= 5 + 8 + 8


def test_an_absent_id_created_meanwhile_is_caught_through_the_shards(db: Database) -> None:
    acct = run(db, lambda tx: tx.insert("accounts", {"owner": "a", "balance": 1}))
    old = db.query(lambda tx: tx.get(acct)).value
    run(db, lambda tx: tx.delete(acct))
    others = [make_id("accounts", os.urandom(16)) for _ in range(20)]
    attempts = []

    def fn(tx: Transaction) -> int:
        attempts.append(1)
        found = [tx.get(i) for i in [acct, *others]]
        if len(attempts) == 1:
            run(db, lambda t2: t2.restore("accounts", old))
        tx.insert("accounts", {"owner": "count", "balance": sum(d is not None for d in found)})
        return len(attempts)

    assert run(db, fn) == 2


# ---- TRANSACTION_TOO_LARGE from a stale attempt re-runs ------------------------------


def test_too_large_planned_from_a_stale_read_re_runs(db: Database) -> None:
    config = run(db, lambda tx: tx.insert("notes", {"batch": 40}))
    attempts = []

    def fn(tx: Transaction) -> int:
        attempts.append(1)
        n = tx.get(config)["batch"]
        if len(attempts) == 1:
            run(db, lambda t2: t2.patch(config, {"batch": 3}))
        for i in range(n):
            tx.insert("scores", {"score": float(i)})
        return n

    assert run(db, fn) == 3
    assert len(attempts) == 2


def test_too_large_from_a_current_read_still_fails(capped_db: Database) -> None:
    db = capped_db
    config = run(db, lambda tx: tx.insert("notes", {"batch": 40}))

    def fn(tx: Transaction) -> None:
        for i in range(tx.get(config)["batch"]):
            tx.insert("scores", {"score": float(i)})

    with pytest.raises(TransactionTooLargeError):
        run(db, fn)


# ---- long equality values -------------------------------------------------------------


@pytest.mark.parametrize("length", [600, 4000])
def test_eq_on_a_long_value_works_and_guards_its_range(db: Database, length: int) -> None:
    owner = "o" * length
    storable = length < 900  # indexed values are capped at INDEX_KEY_BYTES

    def read_then_insert(tx: Transaction) -> int:
        found = tx.query("accounts").with_index("by_owner", lambda q: q.eq("owner", owner))
        n = len(found.collect())
        tx.insert("accounts", {"owner": "other", "balance": n})
        return n

    assert run(db, read_then_insert) == 0
    if not storable:
        return
    attempts = []

    def racing(tx: Transaction) -> int:
        attempts.append(1)
        n = len(
            tx.query("accounts").with_index("by_owner", lambda q: q.eq("owner", owner)).collect()
        )
        if len(attempts) == 1:
            run(db, lambda t2: t2.insert("accounts", {"owner": owner, "balance": 1}))
        tx.insert("accounts", {"owner": "counter", "balance": n})
        return n

    assert run(db, racing) == 1
    assert len(attempts) == 2


def test_long_field_version_keys_are_hashed_and_distinct() -> None:
    short = layout.field_version_key("t", "f", "x" * 10)
    long_a = layout.field_version_key("t", "f", "a" * 5000)
    long_b = layout.field_version_key("t", "f", "a" * 4999 + "b")
    assert len(long_a[1]) <= layout.FIELD_VERSION_KEY_BYTES
    assert long_a != long_b and long_a[1][:1] != short[1][:1]
    assert layout.field_version_key("t", "f", "a" * 5000) == long_a


# ---- a commit checks the schema in force ------------------------------------------------


def _schemas() -> tuple[Any, Any]:
    from runtime.schema import define_schema, define_table
    from runtime.values import v

    fields = {"owner": v.string(), "balance": v.int64()}
    old = define_schema({"accounts": define_table(fields).index("by_owner", ["owner"])})
    new = define_schema(
        {
            "accounts": define_table(fields)
            .index("by_owner", ["owner"])
            .index("by_balance", ["balance"])
        }
    )
    return old, new


def test_a_process_on_an_older_schema_takes_up_a_newly_built_index(store: Any) -> None:
    """A warm Lambda still on the old schema while a deploy pushes a new
    index: its write conflicts, takes up the index in force and re-runs, so
    the new index misses nothing."""
    old_schema, new_schema = _schemas()
    old = Database(store, old_schema)
    old.set_schema(old_schema)
    run(old, lambda tx: tx.insert("accounts", {"owner": "before", "balance": 1}))
    new = Database(store, new_schema)
    new.set_schema(new_schema)  # the push: builds by_balance from what is stored
    attempts = []

    def insert(tx: Transaction) -> None:
        attempts.append(1)
        tx.insert("accounts", {"owner": "after", "balance": 2})

    old.mutation(insert)
    assert len(attempts) == 2
    found = new.query(
        lambda tx: [
            d["owner"]
            for d in tx.query("accounts").with_index("by_balance", lambda q: q.gte("balance", 0))
        ]
    ).value
    assert found == ["before", "after"]
    # and its later writes keep the new index's range versions too
    readers = []

    def read_range_then_write(tx: Transaction) -> int:
        readers.append(1)
        n = len(
            tx.query("accounts").with_index("by_balance", lambda q: q.eq("balance", 7)).collect()
        )
        if len(readers) == 1:
            run(old, lambda t2: t2.insert("accounts", {"owner": "racer", "balance": 7}))
        tx.insert("accounts", {"owner": "count", "balance": 100 + n})
        return n

    assert run(new, read_range_then_write) == 1
    assert len(readers) == 2


def test_a_process_on_a_newer_schema_than_pushed_still_writes(store: Any) -> None:
    """A Lambda that adopted a schema the deploy has not pushed yet writes
    (maintaining the extra index harmlessly) without conflicting forever."""
    old_schema, new_schema = _schemas()
    Database(store, old_schema).set_schema(old_schema)
    ahead = Database(store, new_schema)
    ahead.adopt_schema(new_schema)
    out = ahead.mutation(lambda tx: tx.insert("accounts", {"owner": "x", "balance": 3}))
    assert out.attempts == 1
