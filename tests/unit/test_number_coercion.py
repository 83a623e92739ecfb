"""The int -> float64 rule (runtime/values/coercion.py) validator by
validator: where `v.number()` is meant a Python `int` becomes its float64,
`v.int64()` and `v.any()` keep it, a union prefers a member that takes the
value as it is (a JS client's `0n` is an int64, its `0` a float64), and an
int without an exact float64 is refused with a message that says what to do,
in documents as in arguments (arguments and returns:
tests/unit/test_number_args_returns.py)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import ValidationError
from runtime.values import v
from runtime.values.coercion import SAFE_INTEGER, coerce_numbers
from runtime.values.validators import Validator


def kinds(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: kinds(y) for k, y in x.items()}
    if isinstance(x, list):
        return [kinds(y) for y in x]
    return type(x).__name__


@pytest.mark.parametrize(
    ("validator", "value", "expected"),
    [
        (v.number(), 3, "float"),
        (v.float64(), -7, "float"),
        (v.int64(), 3, "int"),
        (v.any(), 3, "int"),
        (v.optional(v.number()), 1, "float"),
        (v.array(v.number()), [1, 2.5], ["float", "float"]),
        (v.record(v.string(), v.number()), {"a": 1, "b": 2}, {"a": "float", "b": "float"}),
        (
            v.object({"n": v.number(), "i": v.int64(), "o": v.optional(v.number())}),
            {"n": 1, "i": 1, "o": 1},
            {"n": "float", "i": "int", "o": "float"},
        ),
        # A member that takes the value as it is wins: an int stays int64 ...
        (v.union(v.int64(), v.number()), 0, "int"),
        (v.union(v.number(), v.int64()), 0, "int"),
        # ... and where no member takes it as it is, the float64 member does.
        (v.union(v.string(), v.number()), 0, "float"),
        (
            v.union(v.object({"k": v.literal("a"), "n": v.number()}), v.null()),
            {"k": "a", "n": 1},
            {"k": "str", "n": "float"},
        ),
    ],
)
def test_each_validator_converts_what_it_means_as_float64(
    validator: Validator, value: Any, expected: Any
) -> None:
    got = coerce_numbers(validator, value)
    assert kinds(got) == expected
    assert got == value  # the same number, only its kind changes
    validator.validate(got, "value")


def test_a_bool_is_never_a_number() -> None:
    assert coerce_numbers(v.number(), True) is True
    with pytest.raises(ValidationError):
        v.number().validate(True, "value")


def test_nothing_to_convert_returns_the_same_object() -> None:
    doc = {"n": 1.5, "items": [{"qty": 2.0}]}
    validator = v.object({"n": v.number(), "items": v.array(v.object({"qty": v.number()}))})
    assert coerce_numbers(validator, doc) is doc


def test_the_float64_boundary_is_exact() -> None:
    assert coerce_numbers(v.number(), SAFE_INTEGER) == float(SAFE_INTEGER)
    assert coerce_numbers(v.number(), -SAFE_INTEGER) == float(-SAFE_INTEGER)
    # 2**53 + 1 has no float64 (it would round to 2**53): left as it is ...
    assert coerce_numbers(v.number(), 2**53 + 1) == 2**53 + 1
    assert type(coerce_numbers(v.number(), 2**53 + 1)) is int
    # ... and the validator refuses it, saying what to do.
    with pytest.raises(ValidationError) as refused:
        v.object({"score": v.number()}).validate({"score": 2**53 + 1}, "document")
    message = str(refused.value)
    assert "document.score" in message
    assert "no exact float64" in message and "v.int64()" in message
