"""Numbers as Convex users expect them, in function arguments and return
values: a Python `int` under `v.number()` is taken as its float64 (what a JS
client's `1` is), so `returns=v.number()` with `len(...)` works and every
client sees a number; `v.int64()` keeps int64 (schema fields:
tests/conformance/test_compat_numbers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.backend import Backend
from runtime.functions.executor import ArgumentsInvalid
from runtime.store.sqlite import SqliteStore

APP = """
from runtime import mutation, query, v

@query(args={"n": v.number(), "big": v.int64(), "any": v.any(),
             "items": v.array(v.object({"qty": v.number()}))})
def kinds(ctx, args):
    return [type(args[k]).__name__ for k in ("n", "big", "any")] + [
        type(i["qty"]).__name__ for i in args["items"]]

@mutation(args={"body": v.string()})
def send(ctx, args):
    ctx.db.insert("messages", {"body": args["body"]})

@query(args={}, returns=v.number())
def count(ctx, args):
    return len(ctx.db.query("messages").collect())

@query(args={}, returns=v.int64())
def count64(ctx, args):
    return len(ctx.db.query("messages").collect())

@query(args={"n": v.number()})
def echo(ctx, args):
    return args["n"]
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "nums.py").write_text(APP)
    b = Backend(SqliteStore(":memory:"), functions, admin_key=None)
    assert b.reload().ok
    yield b
    b.close()


def test_an_int_argument_under_number_arrives_as_float(backend: Backend) -> None:
    result = backend.executor.call(
        "nums:kinds", {"n": 1, "big": 2, "any": 3, "items": [{"qty": 4}, {"qty": 4.5}]}
    )
    assert result.ok, result.error_message
    assert result.value == ["float", "int", "int", "float", "float"]


def test_a_returned_int_under_number_is_a_float(backend: Backend) -> None:
    for body in ("a", "b"):
        assert backend.executor.call("nums:send", {"body": body}).ok
    counted = backend.executor.call("nums:count", {})
    assert counted.ok, counted.error_message
    assert type(counted.value) is float and counted.value == 2.0
    counted64 = backend.executor.call("nums:count64", {})
    assert type(counted64.value) is int and counted64.value == 2


def test_an_int_a_float64_cannot_hold_is_refused_not_rounded(backend: Backend) -> None:
    with pytest.raises(ArgumentsInvalid) as refused:
        backend.executor.call("nums:echo", {"n": 2**53 + 1})
    assert "ArgumentValidationError" in str(refused.value)
    assert backend.executor.call("nums:echo", {"n": 2**53 - 1}).value == float(2**53 - 1)
