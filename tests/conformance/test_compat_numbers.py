"""A Python `int` written where the schema says `v.number()` is stored as a
float64 (as a JS client's `0` is), on every backend: insert, patch, replace
and restore (import). `v.int64()` keeps int64. (Before, the write was
refused: `document.score: expected float64, got int64 0`.)"""

from __future__ import annotations

from typing import Any

from runtime.database import Database, Transaction


def stored(db: Database, doc_id: str) -> Any:
    return db.query(lambda tx: tx.get(doc_id)).value


def test_an_int_under_number_is_stored_as_float64(db: Database) -> None:
    doc_id = db.mutation(lambda tx: tx.insert("scores", {"score": 0})).value
    doc = stored(db, doc_id)
    assert doc["score"] == 0.0 and type(doc["score"]) is float
    # It is indexed as the float64 it is: an equality on 0.0 finds it.
    found = db.query(
        lambda tx: tx.query("scores").with_index("by_score", lambda q: q.eq("score", 0.0)).unique()
    ).value
    assert found is not None and found["_id"] == doc_id


def test_patch_and_replace_convert_too_and_int64_fields_stay_int64(db: Database) -> None:
    item = db.mutation(
        lambda tx: tx.insert("items", {"list": 1, "rank": 3, "name": "a", "tags": ["x"]})
    ).value
    doc = stored(db, item)
    assert type(doc["rank"]) is float and type(doc["list"]) is int  # v.float64 / v.int64
    db.mutation(lambda tx: tx.patch(item, {"rank": 5}))
    assert type(stored(db, item)["rank"]) is float and stored(db, item)["rank"] == 5.0
    db.mutation(lambda tx: tx.replace(item, {"list": 2, "rank": -1, "name": "b"}))
    doc = stored(db, item)
    assert (doc["list"], doc["rank"]) == (2, -1.0)
    assert type(doc["list"]) is int and type(doc["rank"]) is float


def test_restore_converts_as_insert_does(db: Database) -> None:
    original = db.mutation(lambda tx: tx.insert("scores", {"score": 1.0})).value
    doc = stored(db, original)
    db.mutation(lambda tx: tx.delete(original))

    def restore(tx: Transaction) -> str:
        return tx.restore("scores", {**doc, "score": 9})

    db.mutation(restore)
    assert stored(db, original)["score"] == 9.0 and type(stored(db, original)["score"]) is float


def test_an_int_in_an_index_range_on_a_number_field_finds_what_a_write_of_it_stored(
    db: Database,
) -> None:
    doc_id = db.mutation(lambda tx: tx.insert("scores", {"score": 0})).value
    db.mutation(lambda tx: tx.insert("scores", {"score": 7}))

    def by_score(rng: Any) -> Any:
        return db.query(
            lambda tx: [d["score"] for d in tx.query("scores").with_index("by_score", rng)]
        ).value

    assert by_score(lambda q: q.eq("score", 0)) == [0.0]
    assert by_score(lambda q: q.gt("score", 0).lte("score", 7)) == [7.0]
    found = db.query(
        lambda tx: tx.query("scores").with_index("by_score", lambda q: q.eq("score", 0)).unique()
    ).value
    assert found["_id"] == doc_id
    # an int64 field keeps its ints: list 1 finds the int64 1, not a float
    db.mutation(lambda tx: tx.insert("items", {"list": 1, "rank": 0.0, "name": "i"}))
    names = db.query(
        lambda tx: [
            d["name"] for d in tx.query("items").with_index("by_list", lambda q: q.eq("list", 1))
        ]
    ).value
    assert names == ["i"]
