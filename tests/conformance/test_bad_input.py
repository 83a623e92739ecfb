"""Bad input never corrupts data: each bad write fails with its error and the
database is exactly as it was (documents, index entries and all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runtime.database import Database, Transaction
from runtime.errors import PlatformError


def snapshot(db: Database) -> dict[str, Any]:
    def fn(tx: Transaction) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table in ("accounts", "items", "messages", "scores", "notes"):
            out[table] = tx.query(table).collect()
        out["by_owner"] = [d["_id"] for d in tx.query("accounts").with_index("by_owner").collect()]
        out["by_list_rank"] = [
            d["_id"] for d in tx.query("items").with_index("by_list_rank").collect()
        ]
        out["by_score"] = [d["_id"] for d in tx.query("scores").with_index("by_score").collect()]
        return out

    return db.query(fn).value


@pytest.fixture
def seeded(db: Database) -> dict[str, str]:
    def fn(tx: Transaction) -> dict[str, str]:
        acct = tx.insert("accounts", {"owner": "ann", "balance": 10})
        item = tx.insert("items", {"list": 1, "rank": 1.0, "name": "i"})
        score = tx.insert("scores", {"score": 2.0})
        note = tx.insert("notes", {"n": 1})
        return {"acct": acct, "item": item, "score": score, "note": note}

    return db.mutation(fn).value


def deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"x": value}
    return value


CASES: dict[str, tuple[str, Callable[[Transaction, dict[str, str]], Any]]] = {
    "schema: wrong type": (
        "VALIDATION_FAILED",
        lambda tx, ids: tx.insert("accounts", {"owner": "bob", "balance": "10"}),
    ),
    "schema: missing field": (
        "VALIDATION_FAILED",
        lambda tx, ids: tx.insert("accounts", {"owner": "bob"}),
    ),
    "schema: extra field": (
        "VALIDATION_FAILED",
        lambda tx, ids: tx.insert("accounts", {"owner": "b", "balance": 1, "x": 1}),
    ),
    "wrong-table id in a v.id field": (
        "VALIDATION_FAILED",
        lambda tx, ids: tx.insert("messages", {"channel": "c", "body": "b", "author": ids["item"]}),
    ),
    "malformed id passed to patch": ("INVALID_ID", lambda tx, ids: tx.patch("garbage", {"a": 1})),
    "oversize document": (
        "INVALID_DOCUMENT",
        lambda tx, ids: tx.insert("notes", {"big": "x" * (1 << 20)}),
    ),
    "$-prefixed field": ("INVALID_DOCUMENT", lambda tx, ids: tx.insert("notes", {"$bad": 1})),
    "$-prefixed nested field": (
        "INVALID_DOCUMENT",
        lambda tx, ids: tx.insert("notes", {"a": {"$b": 1}}),
    ),
    "_-prefixed top-level field": (
        "INVALID_DOCUMENT",
        lambda tx, ids: tx.insert("notes", {"_x": 1}),
    ),
    "deep nesting": ("INVALID_DOCUMENT", lambda tx, ids: tx.insert("notes", {"d": deep(16)})),
    "not a Convex value": ("INVALID_DOCUMENT", lambda tx, ids: tx.insert("notes", {"s": {1, 2}})),
    "int out of int64": ("INVALID_DOCUMENT", lambda tx, ids: tx.insert("notes", {"i": 2**63})),
    "NaN in an index": (
        "INVALID_DOCUMENT",
        lambda tx, ids: tx.insert("scores", {"score": float("nan")}),
    ),
    "patch that breaks the schema": (
        "VALIDATION_FAILED",
        lambda tx, ids: tx.patch(ids["acct"], {"balance": 1.5}),
    ),
    "patch that changes _id": (
        "INVALID_DOCUMENT",
        lambda tx, ids: tx.patch(ids["acct"], {"_id": ids["item"]}),
    ),
    "replace that breaks the schema": (
        "VALIDATION_FAILED",
        lambda tx, ids: tx.replace(ids["item"], {"list": 1}),
    ),
    "bad table name": ("INVALID_TABLE_NAME", lambda tx, ids: tx.insert("bad-name", {"a": 1})),
    "system table name": ("INVALID_TABLE_NAME", lambda tx, ids: tx.insert("_storage", {"a": 1})),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_write_fails_and_changes_nothing(
    db: Database, seeded: dict[str, str], case: str
) -> None:
    code, bad = CASES[case]
    before = snapshot(db)

    def fn(tx: Transaction) -> None:
        # A good write first: it must be rolled back with the bad one.
        tx.patch(seeded["acct"], {"balance": 11})
        tx.insert("notes", {"good": True})
        bad(tx, seeded)

    with pytest.raises(PlatformError) as err:
        db.mutation(fn)
    assert err.value.code == code, str(err.value)
    assert snapshot(db) == before


def test_validation_error_names_the_path(db: Database) -> None:
    with pytest.raises(PlatformError, match=r"document\.balance: expected int64, got string"):
        db.mutation(lambda tx: tx.insert("accounts", {"owner": "x", "balance": "3"}))
