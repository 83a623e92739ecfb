"""Numbers as Convex users expect them: a Python `int` where a validator
says `v.number()` (float64) is taken as the float64 of the same value.

Convex keeps int64 and float64 apart (they compare and sort as different
kinds, and clients see a JS `number` for one and a `bigint` for the other).
JavaScript code writes `0` and gets a float64; Python code writes `0` and
gets an `int`, which is an int64 here. Where a validator says which kind is
meant, the platform converts Python's `int` to float64 instead of refusing
it, so `{"score": 0}` under `score: v.number()` is stored as `0.0`:

- `v.number()` / `v.float64()`: an `int` within ±(2**53 - 1) (every one of
  them has an exact float64) becomes that float; a larger one is left as it
  is, and the validator refuses it (converting it would change its value).
- `v.int64()` keeps `int`s; `v.any()` keeps whatever it is given; `bool` is
  never a number.
- Containers (`v.object`, `v.array`, `v.record`, `v.optional`) convert what
  their validators say, field by field.
- `v.union(...)`: a value that a member accepts as it is stays as it is
  (`0` under `v.union(v.int64(), v.number())` stays int64); otherwise the
  first member that accepts its converted form decides.

The conversion only ever turns a value the validator would refuse into one
it accepts; values it accepts already come back unchanged (the same object,
so a document with nothing to convert is not copied).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.errors import ValidationError

from .validators import Validator, _Array, _Kind, _Object, _Optional, _Record, _Union

__all__ = ["SAFE_INTEGER", "coerce_numbers"]

SAFE_INTEGER = 2**53 - 1
"""The largest integer n such that every integer in [-n, n] is a float64."""


def coerce_numbers(validator: Validator, value: Any) -> Any:
    """`value` with each Python `int` that `validator` expects as a float64
    turned into that float (see the module docstring); `value` itself when
    there is nothing to convert."""
    kind = type(validator)
    if kind is _Kind:
        assert isinstance(validator, _Kind)
        if (
            validator.kind == "float64"
            and type(value) is int
            and -SAFE_INTEGER <= value <= SAFE_INTEGER
        ):
            return float(value)
        return value
    if kind is _Optional:
        assert isinstance(validator, _Optional)
        return coerce_numbers(validator.inner, value)
    if kind is _Array:
        assert isinstance(validator, _Array)
        if type(value) is not list:
            return value
        items = [coerce_numbers(validator.item, x) for x in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if kind is _Object:
        assert isinstance(validator, _Object)
        return _fields(value, validator.fields.get)
    if kind is _Record:
        assert isinstance(validator, _Record)
        values = validator.values
        return _fields(value, lambda _: values)
    if kind is _Union:
        assert isinstance(validator, _Union)
        return _union(validator, value)
    return value


def _fields(value: Any, validator_of: Callable[[str], Validator | None]) -> Any:
    if type(value) is not dict:
        return value
    changed: dict[str, Any] | None = None
    for name, x in value.items():
        field = validator_of(name)
        if field is None:
            continue
        got = coerce_numbers(field, x)
        if got is not x:
            if changed is None:
                changed = dict(value)
            changed[name] = got
    return value if changed is None else changed


def _union(validator: _Union, value: Any) -> Any:
    try:
        validator.validate(value, "")
        return value  # a member takes it as it is
    except ValidationError:
        pass
    for member in validator.members:
        got = coerce_numbers(member, value)
        if got is value:
            continue
        try:
            member.validate(got, "")
        except ValidationError:
            continue
        return got
    return value
