"""A schema push builds new indexes from existing documents and drops removed ones."""

from __future__ import annotations

import pytest

from runtime.database import Database, InvalidQueryError, Transaction
from runtime.schema import define_schema, define_table
from runtime.store.port import Store
from runtime.values import v


def by_tag(tx: Transaction, tag: str) -> list[int]:
    return [
        d["n"]
        for d in tx.query("things").with_index("tag_idx", lambda q: q.eq("tag", tag)).collect()
    ]


def test_new_index_is_built_from_existing_documents(store: Store) -> None:
    plain = define_schema({"things": define_table({"tag": v.string(), "n": v.int64()})})
    db = Database(store, plain)
    db.set_schema(plain)
    ids = db.mutation(
        lambda tx: [tx.insert("things", {"tag": "ab"[i % 2], "n": i}) for i in range(30)]
    ).value
    db.mutation(lambda tx: tx.delete(ids[0]))

    indexed = define_schema(
        {"things": define_table({"tag": v.string(), "n": v.int64()}).index("tag_idx", ["tag"])}
    )
    seen: list[int] = []
    db.set_schema(indexed, progress=lambda table, index, n: seen.append(n))
    assert seen and seen[-1] == 29
    assert db.query(lambda tx: by_tag(tx, "a")).value == list(range(2, 30, 2))
    db.mutation(lambda tx: tx.patch(ids[1], {"tag": "a"}))
    assert db.query(lambda tx: by_tag(tx, "a")).value == [1, *range(2, 30, 2)]

    # A second process with the same schema sees it built: nothing to redo.
    again = Database(store, indexed)
    again.set_schema(indexed, progress=lambda *a: pytest.fail("rebuilt an index that was built"))

    # Redefining the index rebuilds it with the new fields.
    by_n = define_schema(
        {"things": define_table({"tag": v.string(), "n": v.int64()}).index("tag_idx", ["n"])}
    )
    db.set_schema(by_n)
    got = db.query(
        lambda tx: [
            d["n"]
            for d in tx.query("things").with_index("tag_idx", lambda q: q.gte("n", 27)).collect()
        ]
    ).value
    assert got == [27, 28, 29]

    # Dropped: queries on it say so, and its entries are gone.
    db.set_schema(plain)
    with pytest.raises(InvalidQueryError):
        db.query(lambda tx: tx.query("things").with_index("tag_idx").collect())
    assert store.scan("i:things:tag_idx") == []


def test_a_failed_build_leaves_the_index_unqueryable(store: Store) -> None:
    loose = define_schema({"things": define_table({"x": v.any()})})
    db = Database(store, loose)
    db.mutation(lambda tx: tx.insert("things", {"x": float("nan")}))
    strict = define_schema({"things": define_table({"x": v.any()}).index("x_idx", ["x"])})
    with pytest.raises(Exception, match="NaN"):
        db.set_schema(strict)
    with pytest.raises(InvalidQueryError, match="building it failed"):
        db.query(lambda tx: tx.query("things").with_index("x_idx").collect())
