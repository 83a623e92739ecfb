"""The rules a document must meet before it is written, checked in one walk.

Value kinds, nesting depth, field names, object and array sizes; the path of
the first offence is in the error (`document.items[2].$x: ...`). Schema
validation (the table's validator) is separate: `SchemaDefinition.validate_document`.
"""

from __future__ import annotations

from typing import Any

from runtime.limits import ARRAY_ELEMENTS, FIELD_NAME_CHARS, FIELDS_PER_OBJECT, NESTING_DEPTH
from runtime.values.model import has_lone_surrogate

from .errors import InvalidDocumentError

__all__ = ["SYSTEM_FIELDS", "check_document"]

SYSTEM_FIELDS = ("_id", "_creationTime")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _fail(path: str, what: str, **details: object) -> InvalidDocumentError:
    return InvalidDocumentError(f"{path}: {what}", path=path, **details)


def _check_name(path: str, name: object, top: bool) -> None:
    if not isinstance(name, str):
        raise _fail(path, f"field names must be strings, got {type(name).__name__}")
    if not name:
        raise _fail(path, "empty field name")
    if len(name) > FIELD_NAME_CHARS:
        raise _fail(
            path, f"field name longer than {FIELD_NAME_CHARS} characters (FIELD_NAME_CHARS)"
        )
    if name[0] == "$":
        raise _fail(
            f"{path}.{name}", 'field names may not start with "$" (reserved for the wire encoding)'
        )
    if top and name[0] == "_":
        raise _fail(
            f"{path}.{name}",
            'top-level field names starting with "_" are reserved for system fields',
        )
    if not (name.isascii() and name.isprintable()):  # " " to "~"
        raise _fail(f"{path}.{name!r}", "field names must be printable ASCII")


def _walk(value: Any, path: str, depth: int) -> None:
    t = type(value)
    if value is None or t is bool or t is bytes:
        return
    if t is str:
        if has_lone_surrogate(value):  # no UTF-8 encoder (the store's) accepts one
            raise _fail(path, "the string holds a lone surrogate (U+D800..U+DFFF without its pair)")
        return
    if t is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _fail(path, f"integer {value} is outside int64; store it as a float or string")
        return
    if t is float:
        return
    if t is list:
        if depth >= NESTING_DEPTH:
            raise _fail(path, f"nested deeper than {NESTING_DEPTH} levels (NESTING_DEPTH)")
        if len(value) > ARRAY_ELEMENTS:
            raise _fail(
                path, f"array of {len(value):,} elements, over {ARRAY_ELEMENTS:,} (ARRAY_ELEMENTS)"
            )
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", depth + 1)
        return
    if t is dict:
        if depth >= NESTING_DEPTH:
            raise _fail(path, f"nested deeper than {NESTING_DEPTH} levels (NESTING_DEPTH)")
        if len(value) > FIELDS_PER_OBJECT:
            raise _fail(
                path,
                f"object of {len(value):,} fields, over {FIELDS_PER_OBJECT:,} (FIELDS_PER_OBJECT)",
            )
        for k, item in value.items():
            _check_name(path, k, top=False)
            _walk(item, f"{path}.{k}", depth + 1)
        return
    raise _fail(
        path,
        f"{t.__name__} is not a Convex value (use None, bool, int, float, str, bytes, list or dict)",
    )


def check_document(doc: object, path: str = "document") -> None:
    """Raise InvalidDocumentError unless `doc` is a storable user document
    (system fields are not allowed here: the database adds them)."""
    if type(doc) is not dict:
        raise _fail(path, f"a document must be a dict, got {type(doc).__name__}")
    if len(doc) > FIELDS_PER_OBJECT:
        raise _fail(
            path, f"object of {len(doc):,} fields, over {FIELDS_PER_OBJECT:,} (FIELDS_PER_OBJECT)"
        )
    for k, item in doc.items():
        _check_name(path, k, top=True)
        t = type(item)
        if t is not float and t is not bool and item is not None:  # those need no walk
            _walk(item, f"{path}.{k}", 1)
