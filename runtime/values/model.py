"""The Convex value model in Python.

| Convex   | Python  |
|----------|---------|
| null     | None    |
| boolean  | bool    |
| float64  | float   |
| int64    | int (within int64; `bool` is not an int here) |
| string   | str     |
| bytes    | bytes   |
| array    | list    |
| object   | dict with str keys |

`UNDEFINED` stands for a missing field (in index keys and filters it sorts
before everything, as in Convex) and, in `db.patch`, removes a field.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeAlias

from runtime.errors import PlatformError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UNDEFINED",
    "InvalidValueError",
    "Undefined",
    "Value",
    "check_value",
    "describe",
    "has_lone_surrogate",
    "kind_of",
]

Value: TypeAlias = Any
"""A Convex value (see the table above); `Any` because Python's type system
cannot express the recursive union usefully for callers."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class Undefined:
    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


class InvalidValueError(PlatformError):
    code = "INVALID_VALUE"


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True if `text` holds a surrogate code point. Text decoded from UTF-8
    never does, but a JSON `\\ud800` escape or Python code can make one, and
    no UTF-8 encoder (the store, the wire) accepts it."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def kind_of(value: object) -> str:
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "boolean"
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
            raise TypeError(f"integer {value} is outside int64")
        return "int64"
    if t is float:
        return "float64"
    if t is str:
        return "string"
    if t is bytes:
        return "bytes"
    if t is list:
        return "array"
    if t is dict:
        return "object"
    if value is UNDEFINED:
        return "undefined"
    raise TypeError(f"{t.__name__} is not a Convex value")


def describe(value: object) -> str:
    """A short description for error messages: `string "3"`, `int64 5`, `array of 3`."""
    try:
        kind = kind_of(value)
    except TypeError:
        return f"Python {type(value).__name__}"
    if kind == "string":
        s = str(value)
        shown = s if len(s) <= 40 else s[:37] + "..."
        return f'string "{shown}"'
    if kind in ("int64", "float64"):
        return f"{kind} {value!r}"
    if kind == "boolean":
        return f"boolean {'true' if value else 'false'}"
    if kind == "bytes":
        return f"bytes of length {len(value)}"  # type: ignore[arg-type]
    if kind == "array":
        return f"array of {len(value)}"  # type: ignore[arg-type]
    return kind


_SURROGATE_ADVICE = (
    "holds a lone surrogate (a code point in U+D800..U+DFFF without its pair), "
    "which is not valid Unicode; strings must encode as UTF-8"
)


def check_value(value: object, *, max_depth: int = 16, path: str = "value") -> None:
    """Raise InvalidValueError unless `value` is a Convex value nested at most `max_depth` deep."""
    _check(value, path, 0, max_depth)


def _check(value: object, path: str, depth: int, max_depth: int) -> None:
    t = type(value)
    if isinstance(value, list | dict) and t in (list, dict):
        if depth >= max_depth:
            raise InvalidValueError(f"{path}: nested deeper than {max_depth} levels")
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, f"{path}[{i}]", depth + 1, max_depth)
        else:
            for k, item in value.items():
                if type(k) is not str:
                    raise InvalidValueError(f"{path}: object keys must be strings, got {k!r}")
                if has_lone_surrogate(k):
                    raise InvalidValueError(f"{path}: an object key {_SURROGATE_ADVICE}")
                _check(item, f"{path}.{k}", depth + 1, max_depth)
        return
    if t is str and has_lone_surrogate(value):  # type: ignore[arg-type]
        raise InvalidValueError(f"{path}: the string {_SURROGATE_ADVICE}")
    try:
        kind_of(value)
    except TypeError as e:
        raise InvalidValueError(f"{path}: {e}") from None
    if value is UNDEFINED:
        raise InvalidValueError(f"{path}: UNDEFINED is not a value (it marks a missing field)")
