"""Validators: what they accept, and the path and expectation in each error."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import ValidationError
from runtime.values import make_id, v


def err(validator: Any, value: Any, path: str = "args") -> str:
    with pytest.raises(ValidationError) as e:
        validator.validate(value, path)
    return str(e.value)


def test_scalars() -> None:
    v.string().validate("x", "a")
    v.number().validate(1.0, "a")
    v.int64().validate(3, "a")
    v.boolean().validate(False, "a")
    v.null().validate(None, "a")
    v.bytes().validate(b"", "a")
    v.any().validate({"x": [1]}, "a")
    assert err(v.number(), 1) == "args: expected float64, got int64 1"
    assert err(v.int64(), True) == "args: expected int64, got boolean true"
    assert err(v.int64(), 1.0).startswith("args: expected int64, got float64 1.0 (clients send")
    assert "ConvexInt64" in err(v.int64(), 1.0)
    assert err(v.int64(), 1.5) == "args: expected int64, got float64 1.5"
    assert err(v.string(), None) == "args: expected string, got null"


def test_nested_path() -> None:
    validator = v.object({"items": v.array(v.object({"qty": v.int64()}))})
    value = {"items": [{"qty": 1}, {"qty": 2}, {"qty": "3"}]}
    assert err(validator, value) == 'args.items[2].qty: expected int64, got string "3"'


def test_objects_missing_extra_optional() -> None:
    validator = v.object({"a": v.string(), "b": v.optional(v.int64())})
    validator.validate({"a": "x"}, "args")
    validator.validate({"a": "x", "b": 1}, "args")
    assert err(validator, {"b": 1}) == "args.a: missing required field (string)"
    assert err(validator, {"a": "x", "c": 1}) == 'args: unexpected field "c"'
    v.object({"a": v.string()}, allow_extra_fields=True).validate({"a": "x", "c": 1}, "args")


def test_union_literal_record_id() -> None:
    u = v.union(v.string(), v.number())
    u.validate("x", "a")
    u.validate(1.0, "a")
    assert err(u, True) == "args: expected string | float64, got boolean true"
    lit = v.union(v.literal("one"), v.literal("two"))
    lit.validate("two", "a")
    assert 'expected "one" | "two"' in err(lit, "three")
    rec = v.record(v.string(), v.int64())
    rec.validate({"a": 1, "b": 2}, "a")
    assert err(rec, {"a": 1, "b": "x"}) == 'args.b: expected int64, got string "x"'
    users = make_id("users", bytes(range(16)))
    v.id("users").validate(users, "a")
    assert "another table" in err(v.id("posts"), users)
    assert err(v.id("posts"), "nope") == 'args: expected id("posts"), got string "nope"'


def test_dict_is_an_object_and_json() -> None:
    validator = v.array({"x": v.string()})
    validator.validate([{"x": "y"}], "a")
    assert v.object({"a": v.optional(v.int64())}).to_json() == {
        "type": "object",
        "value": {"a": {"fieldType": {"type": "bigint", "optional": True}, "optional": True}},
    }
    with pytest.raises(TypeError):
        v.array(3)
