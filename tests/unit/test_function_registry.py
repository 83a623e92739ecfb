"""Decorators and the loader of a `functions/` folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import action, internal_mutation, mutation, query, v
from runtime.database import Database
from runtime.functions import load_functions, normalize_path
from runtime.functions.registry import FunctionLoadError
from runtime.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def test_decorators_with_and_without_arguments() -> None:
    @query
    def plain(ctx: object, args: dict[str, object]) -> int:
        return 1

    @mutation(args={"x": v.int64()}, returns=v.int64())
    def typed(ctx: object, args: dict[str, object]) -> object:
        return args["x"]

    @action(args={})
    async def act(ctx: object, args: dict[str, object]) -> None:
        return None

    @internal_mutation
    def hidden(ctx: object, args: dict[str, object]) -> None:
        return None

    assert (plain.kind, plain.args, plain.internal) == ("query", None, False)
    assert typed.kind == "mutation" and typed.args is not None and typed.returns is not None
    assert act.is_async and hidden.internal
    with pytest.raises(TypeError, match="plain def"):

        @query
        async def bad(ctx: object, args: dict[str, object]) -> None:
            return None


def test_paths() -> None:
    assert normalize_path("chat/messages:send") == "chat/messages:send"
    assert normalize_path("chat/messages.js:send") == "chat/messages:send"
    assert normalize_path("bank") == "bank:default"


def test_loads_nested_modules_and_the_schema(tmp_path: Path) -> None:
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "messages.py").write_text(
        "from runtime import query, internal_query\n"
        "@query\ndef list(ctx, args):\n    return []\n"
        "@internal_query\ndef secret(ctx, args):\n    return 1\n"
        "helper = 3\n"
    )
    (tmp_path / "_private.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "schema.py").write_text(
        "from runtime import define_schema, define_table, v\n"
        "schema = define_schema({'messages': define_table({'body': v.string()})})\n"
    )
    registry = load_functions(tmp_path, namespace="_t1")
    assert list(registry) == ["chat/messages:list", "chat/messages:secret"]
    assert registry.get("chat/messages.js:secret").internal  # type: ignore[union-attr]
    assert registry.schema is not None and registry.schema.table("messages") is not None


def test_a_broken_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import nothing_here\n")
    with pytest.raises(FunctionLoadError, match=r"bad\.py:1: ModuleNotFoundError"):
        load_functions(tmp_path, namespace="_t2")


def test_the_example_app_runs_on_the_database_core() -> None:
    registry = load_functions(ROOT / "functions", namespace="_example")
    assert {"bank:open", "bank:balance", "bank:transfer", "bank:audit", "bank:close"} <= set(
        registry
    )
    db = Database(SqliteStore(":memory:"), registry.schema)

    def call(path: str, args: dict[str, object]) -> object:
        fn = registry.get(path)
        assert fn is not None and fn.args is not None
        fn.args.validate(args, "args")
        run = db.query if fn.kind == "query" else db.mutation
        return run(lambda tx: fn(type("Ctx", (), {"db": tx})(), args)).value

    call("bank:open", {"owner": "ann"})
    call("bank:open", {"owner": "bob"})
    call("bank:deposit", {"owner": "ann", "amount": 10})
    call("bank:transfer", {"source": "ann", "target": "bob", "amount": 4})
    assert call("bank:balance", {"owner": "bob"}) == 4
    assert call("bank:total", {}) == 10
