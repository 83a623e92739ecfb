"""Error classes shared by every layer.

`PlatformError` subclasses carry a stable `code` (clients and tests match on
it) and a message that says what went wrong and what to do. `ConvexError` is
the application's own error: its `data` reaches the caller as `errorData`,
and its message is the data as Convex's clients print it
(`stringify_for_error`: JSON, an int64 as `"123n"`), never a Python repr.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

__all__ = [
    "ConvexError",
    "FunctionCallError",
    "InvalidIdError",
    "PlatformError",
    "SchemaError",
    "ValidationError",
    "stringify_for_error",
]


class PlatformError(Exception):
    code: str = "INTERNAL"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = details

    def __str__(self) -> str:
        return self.message


class ValidationError(PlatformError):
    """A value did not match a validator.

    Two renderings of one failure: `message` names the path from the root
    the caller gave (`document.items[2].qty: expected int64, got string "3"`:
    schema checks and the platform's own messages), and `convex_message()`
    words it as Convex does for function arguments and return values
    (`Value does not match validator.\\nPath: .items[2].qty\\nValue: "3"\\n
    Validator: v.int64()`). Containers add their step of the Convex path as
    the error passes through them (`within`), as Convex's validator does."""

    code = "VALIDATION_FAILED"

    def __init__(
        self, path: str, problem: str, *, head: str | None = None, tail: str | None = None
    ) -> None:
        super().__init__(f"{path}: {problem}", path=path)
        self.path = path
        self.problem = problem
        self.head = head if head is not None else problem
        """Convex's first sentence."""
        self.tail = tail
        """Convex's lines after the path (`Value: ...`), None for the
        one-line forms (`... does not match literal validator ....Path: .a`)."""
        self.steps: list[str] = []
        """Convex path steps, innermost first."""

    def within(self, step: str) -> ValidationError:
        self.steps.append(step)
        return self

    def reword(self, head: str, tail: str | None) -> None:
        """Convex's wording of this failure is another (a union's no-match)."""
        self.head, self.tail, self.steps = head, tail, []

    def convex_message(self) -> str:
        context = f"Path: {''.join(reversed(self.steps))}" if self.steps else ""
        if self.tail is None:
            return f"{self.head}{context}"
        return f"{self.head}\n{context}\n{self.tail}"


class InvalidIdError(PlatformError):
    code = "INVALID_ID"


class SchemaError(PlatformError):
    code = "SCHEMA_INVALID"


class ConvexError(Exception):
    """Raise from a function to send `data` (any Convex value) to the caller.

    Subclass it to name your errors: the caller reads `Uncaught FooError: ...`.
    The message is the data as Convex's clients print it: a string as is,
    anything else as JSON with int64s as `"123n"`."""

    data: Any

    def __init__(self, data: Any = None) -> None:
        self.data = data
        super().__init__(data if isinstance(data, str) else stringify_for_error(data))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.message

    @classmethod
    def forwarded(cls, data: Any, message: str) -> ConvexError:
        """The error a caller of `run_query`/`run_mutation`/`run_action`
        receives for a ConvexError the called function raised: the same
        data, its whole message (`Uncaught FooError: ...` and where), as
        Convex hands it to the calling action."""
        error = cls.__new__(cls)
        Exception.__init__(error, message)
        error.data = data
        return error


class FunctionCallError(Exception):
    """What `ctx.run_query`/`run_mutation`/`run_action` raise in the calling
    action when the called function failed with anything but a ConvexError
    (a ConvexError arrives as a ConvexError, its data kept): the message is
    the called function's error text (`Uncaught ValueError: ...` and where
    it was raised), "Server Error" in production."""


def stringify_for_error(value: Any) -> str:
    """`value` as Convex's clients show it in an error message
    (`stringifyValueForError`): compact JSON, int64s as `"123n"`, bytes as
    `{}`, NaN and infinities as `null`, cut past limits.ERROR_VALUE_CHARS."""
    from runtime.limits import ERROR_VALUE_CHARS  # limits imports this module

    text = _js_json(value)
    if len(text) > ERROR_VALUE_CHARS:
        rest = "[...truncated]"
        text = text[: ERROR_VALUE_CHARS - len(rest)] + rest
    return text


def _js_json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return json.dumps(f"{value}n")
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        return "{}"  # JSON.stringify(ArrayBuffer)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_js_json(x) for x in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(str(k), ensure_ascii=False)}:{_js_json(x)}" for k, x in value.items()
            )
            + "}"
        )
    if repr(value) == "UNDEFINED":
        return '"undefined"'
    return json.dumps(repr(value), ensure_ascii=False)


def _js_number(x: float) -> str:
    """A float64 as JavaScript prints it (`Number.prototype.toString`)."""
    if math.isnan(x) or math.isinf(x):
        return "null"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    if 1e-6 <= abs(x) < 1e21:
        return format(Decimal(repr(x)), "f")
    mantissa, _, exponent = repr(x).partition("e")
    return f"{mantissa}e{'+' if int(exponent) > 0 else '-'}{abs(int(exponent))}"
