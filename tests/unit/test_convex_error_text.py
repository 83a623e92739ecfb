"""A ConvexError's message is its data as Convex's clients print it
(`Uncaught ConvexError: {"code":"x"}`): JSON, never Python's repr (no
`{'code': 'x'}`, `None`, `True`); a string as it is; floats as JavaScript
prints them; int64s as `"5n"` (a JS client's data holds a BigInt); data that
is no Convex value is named as such instead of sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.errors import ConvexError
from runtime.store.sqlite import SqliteStore

APP = """
from runtime import ConvexError, query, v

class NotFound(ConvexError):
    pass

DATA = {
    "dict": {"code": "NOT_FOUND", "ok": False, "missing": None, "n": 1.0, "x": 0.5},
    "list": ["a", True, None, [2.5]],
    "text": "plain words, no quotes",
    "none": None,
    "int64": {"count": 5},
    "nan": [float("nan"), float("inf")],
    "unicode": {"name": "Zoë ✓"},
}

@query(args={"which": v.string()})
def fail(ctx, args):
    raise ConvexError(DATA[args["which"]])

@query(args={})
def not_found(ctx, args):
    raise NotFound({"id": "abc"})

@query(args={})
def bad_data(ctx, args):
    raise ConvexError({"when": ("a", "tuple")})
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "errs.py").write_text(APP)
    b = Backend(SqliteStore(":memory:"), functions, admin_key=None)
    assert b.reload().ok
    yield b
    b.close()


def header(backend: Backend, path: str, args: dict[str, Any]) -> str:
    result = backend.executor.call(path, args)
    assert not result.ok
    assert result.error_message is not None
    return result.error_message.split("\n")[1]  # after `[Request ID: ...] Server Error`


@pytest.mark.parametrize(
    ("which", "text"),
    [
        ("dict", '{"code":"NOT_FOUND","ok":false,"missing":null,"n":1,"x":0.5}'),
        ("list", '["a",true,null,[2.5]]'),
        ("text", "plain words, no quotes"),
        ("none", "null"),
        ("int64", '{"count":"5n"}'),
        ("nan", "[null,null]"),
        ("unicode", '{"name":"Zoë ✓"}'),
    ],
)
def test_the_message_is_the_data_as_json(backend: Backend, which: str, text: str) -> None:
    assert header(backend, "errs:fail", {"which": which}) == f"Uncaught ConvexError: {text}"


def test_a_subclass_keeps_its_name_and_the_json(backend: Backend) -> None:
    assert header(backend, "errs:not_found", {}) == 'Uncaught NotFound: {"id":"abc"}'


def test_data_that_is_no_convex_value_is_named_not_repred(backend: Backend) -> None:
    line = header(backend, "errs:bad_data", {})
    assert "ConvexError" in line and "tuple is not a Convex value" in line
    assert "('a', 'tuple')" not in line


def test_str_of_the_exception_is_the_json_too() -> None:
    assert str(ConvexError({"a": [1.5, None, True]})) == '{"a":[1.5,null,true]}'
    assert ConvexError({"a": 1.0}).message == '{"a":1}'
