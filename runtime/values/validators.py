"""Validators (`v.*`): the shapes of function arguments and documents.

Each validator checks a value and, on failure, raises `ValidationError` with
the path that failed and what was expected there:
`args.items[2].qty: expected int64, got string "3"`, and Convex's wording of
the same failure for function arguments and return values
(`ValidationError.convex_message()`: `Value does not match validator.` /
`Path: .items[2].qty` / `Value: "3"` / `Validator: v.int64()`; values and
validators printed as Convex prints them, `display_value` and
`Validator.convex()`). Object validators refuse fields they do not declare
unless built with `allow_extra_fields=True`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from runtime.errors import ValidationError

from .ids import is_id_for, parse_id
from .model import describe, kind_of
from .order import values_equal

__all__ = ["Validator", "as_validator", "display_value", "pagination_opts_validator", "v"]


def _kind(value: Any) -> str | None:
    try:
        return kind_of(value)
    except TypeError:
        return None


class Validator:
    is_optional = False

    def validate(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def convex(self) -> str:
        """The validator as Convex prints it in messages: `v.array(v.string())`."""
        raise NotImplementedError

    def _fail(self, value: Any, path: str) -> ValidationError:
        return ValidationError(
            path,
            f"expected {self.describe()}, got {describe(value)}",
            head="Value does not match validator.",
            tail=self._no_match_tail(value),
        )

    def _no_match_tail(self, value: Any) -> str:
        return f"Value: {display_value(value)}\nValidator: {self.convex()}"

    def __repr__(self) -> str:
        return f"v<{self.describe()}>"


class _Kind(Validator):
    def __init__(self, kind: str, json_type: str) -> None:
        self.kind = kind
        self.json_type = json_type

    def validate(self, value: Any, path: str) -> None:
        if _kind(value) != self.kind:
            error = self._fail(value, path)
            hint = None
            if self.kind == "int64" and isinstance(value, float) and value.is_integer():
                hint = (
                    "clients send plain numbers as float64: send an int64, "
                    "e.g. ConvexInt64(n) from the Python client, BigInt in JavaScript, "
                    '{"$integer": ...} in JSON, or declare the argument v.number()'
                )
            elif self.kind == "float64" and type(value) is int and abs(value) > 2**53 - 1:
                hint = (
                    "an int beyond ±(2**53 - 1) has no exact float64: "
                    "send a float, or declare the field v.int64()"
                )
            if hint is not None:
                # In both wordings: the path-naming one and Convex's (a last
                # line after `Validator: ...`), which is what clients read.
                error = ValidationError(
                    path,
                    f"{error.problem} ({hint})",
                    head=error.head,
                    tail=f"{error.tail}\nHint: {hint}",
                )
            raise error

    def describe(self) -> str:
        return self.kind

    def convex(self) -> str:
        return f"v.{self.kind}()"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.json_type}


class _Any(Validator):
    def validate(self, value: Any, path: str) -> None:
        if _kind(value) in (None, "undefined"):
            raise self._fail(value, path)

    def describe(self) -> str:
        return "any Convex value"

    def convex(self) -> str:
        return "v.any()"

    def to_json(self) -> dict[str, Any]:
        return {"type": "any"}


class _Id(Validator):
    def __init__(self, table: str) -> None:
        self.table = table

    def validate(self, value: Any, path: str) -> None:
        if is_id_for(self.table, value):
            return
        if isinstance(value, str) and parse_id(value) is not None:
            raise ValidationError(
                path,
                f'expected an id of table "{self.table}", got an id of another table',
                head=f'Found ID "{value}" from another table, which does not match the table '
                f"name in validator `{self.convex()}`.",
            )
        raise self._fail(value, path)

    def describe(self) -> str:
        return f'id("{self.table}")'

    def convex(self) -> str:
        return f'v.id("{self.table}")'

    def to_json(self) -> dict[str, Any]:
        return {"type": "id", "tableName": self.table}


class _Literal(Validator):
    def __init__(self, value: Any) -> None:
        if _kind(value) not in ("string", "int64", "float64", "boolean"):
            raise TypeError("v.literal takes a string, number or boolean")
        self.value = value

    def validate(self, value: Any, path: str) -> None:
        if _kind(value) != _kind(self.value) or not values_equal(value, self.value):
            error = self._fail(value, path)
            error.reword(
                f"`{display_value(value)}` does not match literal validator `{self.convex()}`.",
                None,
            )
            raise error

    def describe(self) -> str:
        return f'"{self.value}"' if isinstance(self.value, str) else f"literal {self.value!r}"

    def to_json(self) -> dict[str, Any]:
        from .json_codec import encode_json

        return {"type": "literal", "value": encode_json(self.value)}

    def convex(self) -> str:
        value = self.value
        if _kind(value) == "int64":
            shown = "<bigint>"
        elif isinstance(value, float) and not math.isfinite(value):
            shown = "<number>"
        else:
            shown = json.dumps(value, ensure_ascii=False)
        return f"v.literal({shown})"


class _Optional(Validator):
    is_optional = True

    def __init__(self, inner: Validator) -> None:
        self.inner = inner

    def validate(self, value: Any, path: str) -> None:
        self.inner.validate(value, path)

    def describe(self) -> str:
        return f"optional {self.inner.describe()}"

    def convex(self) -> str:
        return f"v.optional({self.inner.convex()})"

    def to_json(self) -> dict[str, Any]:
        return {**self.inner.to_json(), "optional": True}


class _Array(Validator):
    def __init__(self, item: Validator) -> None:
        self.item = item

    def validate(self, value: Any, path: str) -> None:
        if type(value) is not list:
            raise self._fail(value, path)
        for i, x in enumerate(value):
            try:
                self.item.validate(x, f"{path}[{i}]")
            except ValidationError as e:
                raise e.within(f"[{i}]") from None

    def describe(self) -> str:
        return f"array of {self.item.describe()}"

    def convex(self) -> str:
        return f"v.array({self.item.convex()})"

    def to_json(self) -> dict[str, Any]:
        return {"type": "array", "value": self.item.to_json()}


class _Object(Validator):
    def __init__(self, fields: Mapping[str, Any], allow_extra_fields: bool) -> None:
        self.fields = {k: as_validator(x) for k, x in fields.items()}
        self.allow_extra_fields = allow_extra_fields

    def _tail(self, value: Any) -> str:
        """The error's last lines, built only when a check fails."""
        return f"Object: {display_value(value)}\nValidator: {self.convex()}"

    def validate(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise self._fail(value, path)
        for name, validator in self.fields.items():
            if name not in value:
                if not validator.is_optional:
                    raise ValidationError(
                        f"{path}.{name}",
                        f"missing required field ({validator.describe()})",
                        head=f"Object is missing the required field `{name}`. Consider "
                        "wrapping the field validator in `v.optional(...)` if this is expected.",
                        tail=self._tail(value),
                    )
                continue
            try:
                validator.validate(value[name], f"{path}.{name}")
            except ValidationError as e:
                raise e.within(f".{name}") from None
        if not self.allow_extra_fields:
            for name in value:
                if name not in self.fields:
                    raise ValidationError(
                        path,
                        f'unexpected field "{name}"',
                        head=f"Object contains extra field `{name}` that is not in the validator.",
                        tail=self._tail(value),
                    )

    def describe(self) -> str:
        return "object"

    def convex(self) -> str:
        fields = ", ".join(f"{k}: {self.fields[k].convex()}" for k in sorted(self.fields))
        return f"v.object({{{fields}}})"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "value": {
                k: {"fieldType": x.to_json(), "optional": x.is_optional}
                for k, x in self.fields.items()
            },
        }


class _Record(Validator):
    def __init__(self, keys: Validator, values: Validator) -> None:
        self.keys = keys
        self.values = values

    def validate(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise self._fail(value, path)
        for k, x in value.items():
            try:
                self.keys.validate(k, f"{path} key {k!r}")
            except ValidationError as e:
                raise e.within(".keys()") from None
            try:
                self.values.validate(x, f"{path}.{k}")
            except ValidationError as e:
                raise e.within(".values()") from None

    def describe(self) -> str:
        return f"record of {self.values.describe()}"

    def convex(self) -> str:
        return f"v.record({self.keys.convex()}, {self.values.convex()})"

    def to_json(self) -> dict[str, Any]:
        return {"type": "record", "keys": self.keys.to_json(), "values": self.values.to_json()}


class _Union(Validator):
    def __init__(self, members: tuple[Validator, ...]) -> None:
        if not members:
            raise TypeError("v.union needs at least one member")
        self.members = members

    def validate(self, value: Any, path: str) -> None:
        errors = []
        for m in self.members:
            try:
                m.validate(value, path)
                return
            except ValidationError as e:
                errors.append(e)
        if len(self.members) == 1:
            raise errors[0]
        # A value of the right kind that failed deeper: report the deeper
        # error; Convex words any union failure as the union's no-match.
        deeper = [e for e in errors if e.path != path]
        if len(deeper) == 1:
            deeper[0].reword("Value does not match validator.", self._no_match_tail(value))
            raise deeper[0]
        raise self._fail(value, path)

    def describe(self) -> str:
        return " | ".join(m.describe() for m in self.members)

    def convex(self) -> str:
        return f"v.union({', '.join(m.convex() for m in self.members)})"

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "value": [m.to_json() for m in self.members]}


def display_value(value: Any) -> str:
    """A value as Convex prints it in validation messages: `{a: 1, b: "x"}`
    (fields sorted, unquoted), floats always with a point (`1.0`), bytes as
    `b"<base64>"`."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _display_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        return f'b"{base64.b64encode(bytes(value)).decode()}"'
    if isinstance(value, list):
        return "[" + ", ".join(display_value(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {display_value(value[k])}" for k in sorted(value)) + "}"
    return describe(value)


def _display_float(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    mantissa, _, exponent = repr(x).partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def as_validator(x: Any) -> Validator:
    """A validator, or a dict of them (= v.object)."""
    if isinstance(x, Validator):
        return x
    if isinstance(x, dict):
        return _Object(x, False)
    raise TypeError(f"expected a validator (v.*) or a dict of them, got {type(x).__name__}")


class _V:
    """The validator builder, imported as `v`."""

    def string(self) -> Validator:
        return _Kind("string", "string")

    def number(self) -> Validator:
        return _Kind("float64", "number")

    float64 = number

    def int64(self) -> Validator:
        return _Kind("int64", "bigint")

    bigint = int64

    def boolean(self) -> Validator:
        return _Kind("boolean", "boolean")

    def null(self) -> Validator:
        return _Kind("null", "null")

    def bytes(self) -> Validator:
        return _Kind("bytes", "bytes")

    def any(self) -> Validator:
        return _Any()

    def id(self, table: str) -> Validator:
        return _Id(table)

    def literal(self, value: Any) -> Validator:
        return _Literal(value)

    def optional(self, inner: Any) -> Validator:
        return _Optional(as_validator(inner))

    def array(self, item: Any) -> Validator:
        return _Array(as_validator(item))

    def object(self, fields: Mapping[str, Any], *, allow_extra_fields: bool = False) -> Validator:
        return _Object(fields, allow_extra_fields)

    def record(self, keys: Any, values: Any) -> Validator:
        return _Record(as_validator(keys), as_validator(values))

    def union(self, *members: Any) -> Validator:
        return _Union(tuple(as_validator(m) for m in members))


v = _V()

pagination_opts_validator = v.object(
    {
        "numItems": v.number(),
        "cursor": v.union(v.string(), v.null()),
        "endCursor": v.optional(v.union(v.string(), v.null())),
        "id": v.optional(v.number()),
        "maximumRowsRead": v.optional(v.number()),
        "maximumBytesRead": v.optional(v.number()),
    }
)
"""Convex's `paginationOptsValidator`, field for field: the argument a paginated
query takes (`args={"paginationOpts": pagination_opts_validator}`), as the
clients' paginated subscriptions send it (`id` is the React client's)."""
