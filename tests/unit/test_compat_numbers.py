"""The int/number boundary: a Python `int` where a validator says
`v.number()` is taken as a float64 (runtime/values/coercion.py)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import ValidationError
from runtime.schema import define_schema, define_table
from runtime.values import v
from runtime.values.coercion import SAFE_INTEGER, coerce_numbers


def kinds(value: Any) -> Any:
    """The value with each number replaced by its Python type's name."""
    if isinstance(value, dict):
        return {k: kinds(x) for k, x in value.items()}
    if isinstance(value, list):
        return [kinds(x) for x in value]
    return type(value).__name__


@pytest.mark.parametrize(
    ("validator", "value", "want"),
    [
        (v.number(), 0, 0.0),
        (v.float64(), -7, -7.0),
        (v.number(), SAFE_INTEGER, float(SAFE_INTEGER)),
        (v.int64(), 3, 3),
        (v.any(), 3, 3),
        (v.optional(v.number()), 2, 2.0),
        (v.array(v.number()), [1, 2.5], [1.0, 2.5]),
        (v.record(v.string(), v.number()), {"a": 1}, {"a": 1.0}),
        (v.object({"a": v.number(), "b": v.int64()}), {"a": 1, "b": 1}, {"a": 1.0, "b": 1}),
        (v.union(v.int64(), v.number()), 4, 4),  # a member takes it as it is
        (v.union(v.string(), v.number()), 4, 4.0),
        (
            v.union(v.object({"k": v.literal("x"), "n": v.number()}), v.null()),
            {"k": "x", "n": 1},
            {"k": "x", "n": 1.0},
        ),  # a member that fits once converted
    ],
)
def test_ints_become_float64_where_the_validator_says_number(
    validator: Any, value: Any, want: Any
) -> None:
    got = coerce_numbers(validator, value)
    assert got == want and kinds(got) == kinds(want)
    validator.validate(got, "x")


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        (v.number(), True),  # a bool is not a number
        (v.number(), SAFE_INTEGER + 2),  # no exact float64: left for the validator to refuse
        (v.number(), "1"),
        (v.object({"a": v.int64()}), {"a": 1, "extra": 2}),
    ],
)
def test_what_is_not_converted_is_returned_as_it_is(validator: Any, value: Any) -> None:
    assert coerce_numbers(validator, value) is value


def test_a_document_with_nothing_to_convert_is_not_copied() -> None:
    doc = {"a": 1.0, "tags": ["x"], "n": 5}
    validator = v.object({"a": v.number(), "tags": v.array(v.string()), "n": v.int64()})
    assert coerce_numbers(validator, doc) is doc
    changed = {"a": 1, "tags": ["x"], "n": 5}
    out = coerce_numbers(validator, changed)
    assert out is not changed and changed["a"] == 1 and type(changed["a"]) is int  # not mutated
    assert out["tags"] is changed["tags"]


def test_the_schema_prepares_documents_and_still_refuses_what_it_cannot_convert() -> None:
    schema = define_schema({"t": define_table({"score": v.number(), "count": v.int64()})})
    assert kinds(schema.prepare_document("t", {"score": 0, "count": 0})) == {
        "score": "float",
        "count": "int",
    }
    with pytest.raises(ValidationError, match="expected float64"):
        schema.prepare_document("t", {"score": SAFE_INTEGER + 2, "count": 0})
    with pytest.raises(ValidationError, match="expected int64"):
        schema.prepare_document("t", {"score": 0, "count": 0.0})  # never float -> int
    # Stored documents are checked as they are (a schema push): an int64 stays refused.
    with pytest.raises(ValidationError):
        schema.validate_document("t", {"score": 0, "count": 0})
    loose = define_schema({"t": define_table({"score": v.number()})}, schema_validation=False)
    assert type(loose.prepare_document("t", {"score": 0})["score"]) is int
