"""Property and known-answer tests of the value model, wire codec, order and key encoding."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.values import (
    INT64_MAX,
    INT64_MIN,
    UNDEFINED,
    InvalidValueError,
    check_value,
    compare,
    decode_json,
    decode_key,
    dumps,
    encode_json,
    encode_key,
    loads,
    prefix_end,
    values_equal,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 0.0, math.nan, math.inf, -math.inf]),
    st.text(),
    st.sampled_from(["", "\x00", "a\x00b", "\U0001f600", "\xff"]),
    st.binary(max_size=20),
    st.sampled_from([b"", b"\x00", b"\xff", b"\x00\xff"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(max_size=5).filter(lambda k: not k.startswith("$")), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
key_elements = st.one_of(values, st.just(UNDEFINED))


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def bytes_cmp(a: bytes, b: bytes) -> int:
    return sign((a > b) - (a < b))


@settings(max_examples=300)
@given(values)
def test_json_round_trip(x: Any) -> None:
    assert values_equal(decode_json(encode_json(x)), x)
    assert values_equal(loads(dumps(x)), x)


@settings(max_examples=300)
@given(st.lists(key_elements, max_size=3))
def test_key_round_trip(t: list[Any]) -> None:
    back = decode_key(encode_key(t))
    assert len(back) == len(t)
    assert all(
        values_equal(a, b) if a is not UNDEFINED else b is UNDEFINED
        for a, b in zip(back, t, strict=True)
    )


@settings(max_examples=500)
@given(key_elements, key_elements)
def test_byte_order_is_value_order(a: Any, b: Any) -> None:
    assert bytes_cmp(encode_key([a]), encode_key([b])) == compare(a, b)


@settings(max_examples=300)
@given(st.lists(values, max_size=3), st.lists(values, max_size=3))
def test_tuple_order_and_prefix(a: list[Any], b: list[Any]) -> None:
    expected = 0
    for x, y in zip(a, b, strict=False):
        expected = compare(x, y)
        if expected:
            break
    else:
        expected = sign(len(a) - len(b))
    assert bytes_cmp(encode_key(a), encode_key(b)) == expected
    full = encode_key(a)
    for k in range(len(a)):
        prefix = encode_key(a[:k])
        assert full.startswith(prefix)
        end = prefix_end(prefix)
        assert end is None or full < end


def test_known_wire_forms() -> None:
    assert encode_json(1) == {"$integer": "AQAAAAAAAAA="}
    assert encode_json(-1) == {"$integer": "//////////8="}
    assert encode_json(-0.0) == {"$float": "AAAAAAAAAIA="}
    assert encode_json(b"\x01\x02") == {"$bytes": "AQI="}
    assert encode_json(1.5) == 1.5
    assert decode_json(3) == 3.0 and type(decode_json(3)) is float
    assert math.isnan(decode_json(encode_json(math.nan)))
    assert dumps({"a": [True, None, "é"]}) == '{"a":[true,null,"é"]}'.encode()


def test_order_across_kinds() -> None:
    ordered = [
        UNDEFINED,
        None,
        -5,
        7,
        -math.inf,
        -0.0,
        0.0,
        2.5,
        math.nan,
        False,
        True,
        "",
        "a",
        b"",
        [],
        [1],
        {},
    ]
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert compare(a, b) == sign(i - j), (a, b)
    assert not values_equal(1, 1.0)
    assert values_equal(math.nan, math.nan)
    assert values_equal({"a": 1, "b": 2}, {"b": 2, "a": 1})


@pytest.mark.parametrize(
    "bad",
    [2**63, {1: 2}, (1, 2), {"s": {1}}, UNDEFINED],
)
def test_check_value_refuses_non_values(bad: Any) -> None:
    with pytest.raises(InvalidValueError):
        check_value(bad)


def test_nesting_limit() -> None:
    deep: Any = 1
    for _ in range(16):
        deep = [deep]
    check_value(deep)
    with pytest.raises(InvalidValueError, match="nested deeper"):
        check_value([deep])


def test_decode_refuses_dollar_keys_and_bad_tags() -> None:
    with pytest.raises(InvalidValueError):
        decode_json({"$x": 1})
    with pytest.raises(InvalidValueError):
        decode_json({"$integer": "AQ=="})
    with pytest.raises(InvalidValueError):
        encode_json({"$x": 1})
