"""Validators as TypeScript types, the way the official `convex` package
types values: `v.number()` is `number`, `v.int64()` is `bigint`, `v.bytes()`
is `ArrayBuffer`, `v.id("t")` is `Id<"t">`, `v.optional` an optional
property. Works on `Validator.to_json()` (Convex's validator JSON), so the
types follow exactly what the server checks."""

from __future__ import annotations

import json
import re
from typing import Any

from runtime.values import decode_json

__all__ = ["object_type", "property_name", "ts_type"]

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_SCALARS = {
    "string": "string",
    "number": "number",
    "bigint": "bigint",
    "boolean": "boolean",
    "null": "null",
    "bytes": "ArrayBuffer",
    "any": "any",
}


def property_name(name: str) -> str:
    """A property key: bare when it is an identifier, else quoted."""
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _literal(encoded: Any) -> str:
    value = decode_json(encoded)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}n"  # an int64 literal: a bigint on the client
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return json.dumps(value, ensure_ascii=False)


def object_type(fields: dict[str, Any], indent: str = "") -> str:
    """`{ a: string; b?: number }` from an object validator's "value"."""
    if not fields:
        return "Record<string, never>"
    inner = indent + "  "
    lines = []
    for name in sorted(fields):
        field = fields[name]
        optional = "?" if field.get("optional") or field["fieldType"].get("optional") else ""
        lines.append(
            f"{inner}{property_name(name)}{optional}: {ts_type(field['fieldType'], inner)};"
        )
    return "{\n" + "\n".join(lines) + f"\n{indent}}}"


def ts_type(validator: dict[str, Any], indent: str = "") -> str:
    """The TypeScript type of values a validator (its JSON) accepts."""
    kind = validator["type"]
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "id":
        return f"Id<{json.dumps(validator['tableName'])}>"
    if kind == "literal":
        return _literal(validator["value"])
    if kind == "array":
        return f"Array<{ts_type(validator['value'], indent)}>"
    if kind == "object":
        return object_type(validator["value"], indent)
    if kind == "record":
        keys, values = ts_type(validator["keys"], indent), ts_type(validator["values"], indent)
        return f"Record<{keys}, {values}>"
    if kind == "union":
        members = [ts_type(m, indent) for m in validator["value"]]
        return " | ".join(f"({m})" if " | " in m else m for m in members) or "never"
    raise ValueError(f"no TypeScript type for validator {validator!r}")
