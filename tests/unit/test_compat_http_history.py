"""The database as of a past commit timestamp (runtime/database/history.py)
on a real SQLite store: point reads, index ranges in both directions, pages,
inserts, deletes, moved index keys, the change log's window."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database
from runtime.database.history import HistoryUnavailable, database_at, latest_ts
from runtime.database.transaction import Transaction
from runtime.schema import define_schema, define_table
from runtime.store.sqlite import SqliteStore
from runtime.values import v

SCHEMA = define_schema(
    {
        "items": define_table({"list": v.int64(), "rank": v.float64(), "name": v.string()})
        .index("by_list", ["list"])
        .index("by_list_rank", ["list", "rank"]),
    }
)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(str(tmp_path / "db.sqlite3"))
    yield s  # type: ignore[misc]
    s.close()


def _names(docs: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in docs]


def _view(tx: Transaction) -> dict[str, Any]:
    items = tx.query("items")
    return {
        "all": _names(items.collect()),
        "desc": _names(tx.query("items").order("desc").collect()),
        "list1": _names(
            tx.query("items").with_index("by_list_rank", lambda q: q.eq("list", 1)).collect()
        ),
        "list2_desc": _names(
            tx.query("items")
            .with_index("by_list", lambda q: q.eq("list", 2))
            .order("desc")
            .collect()
        ),
        "first2": _names(tx.query("items").take(2)),
        "ranked": _names(
            tx.query("items")
            .with_index("by_list_rank", lambda q: q.eq("list", 1).gt("rank", 1.5))
            .collect()
        ),
    }


def _insert(db: Database, *specs: tuple[int, float, str]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(specs), 10):  # 10 documents fit one transaction
        chunk = specs[start : start + 10]
        ids += db.mutation(
            lambda tx, chunk=chunk: [
                tx.insert("items", {"list": li, "rank": r, "name": n}) for li, r, n in chunk
            ]
        ).value
    return ids


def test_a_query_at_a_timestamp_sees_the_database_as_of_then(store: SqliteStore) -> None:
    db = Database(store, SCHEMA)
    db.set_schema(SCHEMA)
    a, b, c, d = _insert(db, (1, 1.0, "a"), (1, 2.0, "b"), (2, 3.0, "c"), (1, 4.0, "d"))
    ts = latest_ts(store.snapshot)
    before = db.query(_view).value

    # After ts: a moves to list 2, b is renamed twice, c is deleted, e is inserted
    # (into list 1, between b and d), d's rank moves below a's.
    db.mutation(lambda tx: tx.patch(a, {"list": 2}))
    db.mutation(lambda tx: tx.patch(b, {"name": "b2"}))
    db.mutation(lambda tx: tx.patch(b, {"name": "b3"}))
    db.mutation(lambda tx: tx.delete(c))
    (e,) = _insert(db, (1, 3.0, "e"))
    db.mutation(lambda tx: tx.patch(d, {"rank": 0.5}))
    now = db.query(_view).value
    assert now != before

    with database_at(db, store.snapshot, ts) as then:
        assert then.query(_view).value == before
        got = then.query(lambda tx: [tx.get(x) for x in (a, b, c, d, e)]).value
    assert [g["name"] if g else None for g in got] == ["a", "b", "c", "d", None]
    assert got[0]["list"] == 1 and got[3]["rank"] == 4.0
    # The present is unchanged by the view.
    assert db.query(_view).value == now


def test_pages_at_a_timestamp_are_the_pages_of_then(store: SqliteStore) -> None:
    db = Database(store, SCHEMA)
    db.set_schema(SCHEMA)
    ids = _insert(db, *[(1, float(i), f"n{i}") for i in range(30)])
    ts = latest_ts(store.snapshot)
    # Delete every other document and insert as many new ones, all after ts.
    for x in ids[::2]:
        db.mutation(lambda tx, x=x: tx.delete(x))
    _insert(db, *[(1, i + 0.5, f"new{i}") for i in range(15)])

    def pages(tx: Transaction) -> list[list[str]]:
        out: list[list[str]] = []
        for limit in (1, 4, 7):
            q = tx.query("items").with_index("by_list_rank", lambda q: q.eq("list", 1))
            out.append(_names(q.take(limit)))
            out.append(_names(tx.query("items").order("desc").take(limit)))
        return out

    with database_at(db, store.snapshot, ts) as then:
        assert then.query(pages).value == [
            ["n0"],
            ["n29"],
            ["n0", "n1", "n2", "n3"],
            ["n29", "n28", "n27", "n26"],
            [f"n{i}" for i in range(7)],
            [f"n{i}" for i in range(29, 22, -1)],
        ]


def test_the_latest_timestamp_sees_what_a_query_now_sees(store: SqliteStore) -> None:
    db = Database(store, SCHEMA)
    db.set_schema(SCHEMA)
    _insert(db, (1, 1.0, "a"), (2, 2.0, "b"))
    ts = latest_ts(store.snapshot)
    with database_at(db, store.snapshot, ts) as then:
        assert then.query(_view).value == db.query(_view).value


def test_a_timestamp_after_the_latest_commit_is_refused(store: SqliteStore) -> None:
    db = Database(store, SCHEMA)
    db.set_schema(SCHEMA)
    _insert(db, (1, 1.0, "a"))
    ts = latest_ts(store.snapshot)
    with (
        pytest.raises(HistoryUnavailable, match="newer than the latest commit"),
        database_at(db, store.snapshot, ts + 1),
    ):
        pass


def test_a_timestamp_older_than_the_change_log_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "db.sqlite3"), change_log_entries=10)
    try:
        db = Database(store, SCHEMA)
        db.set_schema(SCHEMA)
        (doc,) = _insert(db, (1, 1.0, "a"))
        old = latest_ts(store.snapshot)
        for i in range(30):  # more writes than the log keeps
            db.mutation(lambda tx, i=i: tx.patch(doc, {"name": f"a{i}"}))
        with (
            pytest.raises(HistoryUnavailable, match="older than the change log reaches back"),
            database_at(db, store.snapshot, old),
        ):
            pass
        # A recent timestamp inside the window still works.
        recent = latest_ts(store.snapshot)
        db.mutation(lambda tx: tx.patch(doc, {"name": "later"}))
        with database_at(db, store.snapshot, recent) as then:
            assert then.query(lambda tx: tx.get(doc)["name"]).value == "a29"
    finally:
        store.close()


def test_a_timestamp_before_any_write_shows_an_empty_database(store: SqliteStore) -> None:
    db = Database(store, SCHEMA)
    db.set_schema(SCHEMA)
    ts = latest_ts(store.snapshot)
    _insert(db, (1, 1.0, "a"), (1, 2.0, "b"))
    with database_at(db, store.snapshot, ts) as then:
        assert then.query(_view).value == {
            "all": [], "desc": [], "list1": [], "list2_desc": [], "first2": [], "ranked": []
        }  # fmt: skip


def test_random_writes_after_a_timestamp_are_all_undone(store: SqliteStore) -> None:
    rng = random.Random(12)
    db = Database(store, SCHEMA)
    db.set_schema(SCHEMA)
    ids = _insert(db, *[(rng.randint(1, 3), rng.random(), f"d{i}") for i in range(40)])

    def reads(tx: Transaction) -> list[list[str]]:
        out = []
        for li in (1, 2, 3):
            for order in ("asc", "desc"):
                for limit in (1, 3, 10, 100):
                    q = tx.query("items").with_index(
                        "by_list_rank", lambda q, li=li: q.eq("list", li)
                    )
                    out.append(_names(q.order(order).take(limit)))
        out.append(
            _names(
                tx.query("items").with_index("by_list_rank", lambda q: q.gt("list", 1)).collect()
            )
        )
        out.append([d["name"] if d else "-" for d in (tx.get(x) for x in ids)])
        return out

    ts = latest_ts(store.snapshot)
    expected = db.query(reads).value
    alive = list(ids)
    for step in range(80):
        op = rng.random()
        if op < 0.5 and alive:
            x = rng.choice(alive)
            change = rng.choice(
                [{"list": rng.randint(1, 3)}, {"rank": rng.random()}, {"name": f"e{step}"}]
            )
            db.mutation(lambda tx, x=x, change=change: tx.patch(x, change))
        elif op < 0.75 and alive:
            x = alive.pop(rng.randrange(len(alive)))
            db.mutation(lambda tx, x=x: tx.delete(x))
        else:
            alive += _insert(db, (rng.randint(1, 3), rng.random(), f"n{step}"))
    assert db.query(reads).value != expected
    with database_at(db, store.snapshot, ts) as then:
        assert then.query(reads).value == expected
