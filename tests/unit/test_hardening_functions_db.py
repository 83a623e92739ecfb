"""`ctx.db` is a user-facing facade over the transaction (issue 11, "Shape"):
user code reaches get/query/normalize_id/system (and the writes in a
mutation), never the transaction's platform internals."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from runtime import mutation, query
from runtime.database import Database
from runtime.functions import FunctionRegistry
from runtime.functions.executor import CallResult, Executor
from runtime.store.sqlite import SqliteStore
from runtime.values import make_id

INTERNALS = [
    "system_put",
    "system_get",
    "restore",
    "scan",
    "table_indexes",
    "record_point_reads",
    "reads",
    "writes",
    "journal_in",
    "journal_out",
    "read_only",
    "_store",
    "_tx",
    "tx",
    "_transaction",
    "transaction",
    "__dict__",
]


def _reachable(db: Any) -> list[str]:
    return [name for name in INTERNALS if hasattr(db, name)]


def _attempt(fn: Any) -> str:
    try:
        fn()
    except Exception as e:
        return f"{getattr(e, 'code', type(e).__name__)}: {e}"
    return "ok"


@query
def _query_probe(ctx: Any, args: Any) -> Any:
    db = ctx.db
    return {
        "reachable": _reachable(db),
        "system_reachable": _reachable(db.system)
        + [n for n in ("insert",) if hasattr(db.system, n)],
        "query_reachable": _reachable(db.query("messages"))
        + _reachable(db.query("messages").with_index("by_creation_time"))
        + _reachable(db.system.query("_storage")),
        "insert": _attempt(lambda: db.insert("messages", {"body": "x"})),
        "patch": _attempt(lambda: db.patch(args["id"], {"body": "y"})),
        "delete": _attempt(lambda: db.delete(args["id"])),
        "set": _attempt(lambda: setattr(db, "extra", 1)),
        "get": db.get(args["id"])["body"],
        "collect": [d["body"] for d in db.query("messages").collect()],
        "normalize": db.normalize_id("messages", args["id"]),
    }


@mutation
def _mutation_probe(ctx: Any, args: Any) -> Any:
    db = ctx.db
    new = db.insert("messages", {"body": "second"})
    db.patch(new, {"body": "patched"})
    db.replace(args["id"], {"body": "replaced"})
    gone = db.insert("messages", {"body": "gone"})
    db.delete(gone)
    return {
        "reachable": _reachable(db),
        "bodies": sorted(d["body"] for d in db.query("messages").collect()),
        "restore": _attempt(lambda: db.restore("messages", {"_id": new})),
    }


@mutation
def _seed(ctx: Any, args: Any) -> str:
    doc_id: str = ctx.db.insert("messages", {"body": "first"})
    return doc_id


def _system(ctx: Any, args: Any) -> Any:
    db = ctx.db
    storage_id = make_id("_storage", b"\x01" * 16)
    return {
        "storage": db.system.query("_storage").collect(),
        "scheduled": db.system.query("_scheduled_functions").take(5),
        "get": db.system.get(storage_id),
        "normalize": db.system.normalize_id("_storage", storage_id),
        "user_query": _attempt(lambda: db.query("_storage")),
        "user_get": _attempt(lambda: db.get(storage_id)),
        "user_normalize": _attempt(lambda: db.normalize_id("_storage", storage_id)),
        "system_user_table": _attempt(lambda: db.system.query("messages")),
        "system_user_id": _attempt(lambda: db.system.get(args["id"])),
        "unknown_system_table": _attempt(lambda: db.system.query("_nothing")),
    }


_system_query = query(_system)
_system_mutation = mutation(_system)


def _executor() -> Executor:
    registry = FunctionRegistry(
        {
            "db:seed": _seed,
            "db:query_probe": _query_probe,
            "db:mutation_probe": _mutation_probe,
            "db:system_query": _system_query,
            "db:system_mutation": _system_mutation,
        }
    )
    return Executor(Database(SqliteStore(":memory:")), registry)


def _ok(result: CallResult) -> Any:
    assert result.ok, result.error_message
    return result.value


def test_a_query_reaches_only_the_read_api() -> None:
    ex = _executor()
    doc_id = _ok(ex.call("db:seed", {}))
    got = _ok(ex.call("db:query_probe", {"id": doc_id}))
    assert got["reachable"] == [] and got["system_reachable"] == []
    assert got["query_reachable"] == []  # query builders hold the transaction out of reach too
    for op in ("insert", "patch", "delete"):
        assert got[op].startswith("READ_ONLY: ") and "queries are read-only" in got[op]
    assert got["set"].startswith("AttributeError")
    assert got["get"] == "first" and got["collect"] == ["first"]
    assert got["normalize"] == doc_id


def test_a_mutation_reaches_reads_and_writes_but_no_internals() -> None:
    ex = _executor()
    doc_id = _ok(ex.call("db:seed", {}))
    got = _ok(ex.call("db:mutation_probe", {"id": doc_id}))
    assert got["reachable"] == []
    assert got["bodies"] == ["patched", "replaced"]
    assert got["restore"].startswith("AttributeError") and "insert, patch" in got["restore"]


@pytest.mark.parametrize("fn", ["db:system_query", "db:system_mutation"])
def test_system_tables_are_read_through_ctx_db_system(fn: str) -> None:
    ex = _executor()
    doc_id = _ok(ex.call("db:seed", {}))
    got = _ok(ex.call(fn, {"id": doc_id}))
    assert got["storage"] == [] and got["scheduled"] == [] and got["get"] is None
    assert got["normalize"] is not None
    for key in ("user_query", "user_get", "user_normalize"):
        assert "ctx.db.system." in got[key], got[key]
    assert got["user_query"].startswith("INVALID_TABLE_NAME")
    assert got["system_user_table"].startswith("INVALID_TABLE_NAME")
    assert "ctx.db.query" in got["system_user_table"]
    assert got["system_user_id"].startswith("INVALID_ID") and "ctx.db.get" in got["system_user_id"]
    assert "not a system table" in got["unknown_system_table"]


def test_system_table_documents_cannot_be_written_from_ctx_db() -> None:
    storage_id = make_id("_storage", os.urandom(16))

    @mutation
    def write(ctx: Any, args: Any) -> Any:
        return [
            _attempt(lambda: ctx.db.patch(storage_id, {"x": 1})),
            _attempt(lambda: ctx.db.delete(storage_id)),
            _attempt(lambda: ctx.db.insert("_storage", {"x": 1})),
        ]

    ex = Executor(Database(SqliteStore(":memory:")), FunctionRegistry({"w:write": write}))
    patch, delete, insert = _ok(ex.call("w:write", {}))
    assert patch.startswith("INVALID_ID") and "only the platform writes" in patch
    assert delete.startswith("INVALID_ID")
    assert insert.startswith("INVALID_TABLE_NAME") and "reserved for system tables" in insert


def test_invoke_returns_one_frozen_outcome() -> None:
    ex = _executor()
    defn = ex.registry.get("db:seed")
    assert defn is not None
    outcome = ex._invoke(defn, {}, None)
    assert dataclasses.is_dataclass(outcome) and not isinstance(outcome, tuple)
    assert isinstance(outcome.value, str) and outcome.ts is not None and outcome.writes
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.value = "x"  # type: ignore[misc]
