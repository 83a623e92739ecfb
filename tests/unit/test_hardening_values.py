"""Client JSON that Python's json module answers with crashes (RecursionError,
a bare ValueError, lone surrogates that break the encoder later) is refused
by `loads_client` with a `ClientJsonError`; the value checker refuses lone
surrogates so a function result holding one fails as a function error."""

from __future__ import annotations

import json
import math

import pytest

from runtime.limits import CLIENT_JSON_DEPTH, CLIENT_JSON_INT_DIGITS, NESTING_DEPTH
from runtime.values import (
    ClientJsonError,
    InvalidValueError,
    check_value,
    decode_json,
    loads_client,
    loads_client_value,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_depth_cap_leaves_room_for_an_envelope_around_the_deepest_value() -> None:
    assert CLIENT_JSON_DEPTH >= NESTING_DEPTH + 8
    assert loads_client(nested(CLIENT_JSON_DEPTH)) is not None
    with pytest.raises(ClientJsonError, match="deeper than 32 levels"):
        loads_client(nested(CLIENT_JSON_DEPTH + 1))


@pytest.mark.parametrize("depth", [CLIENT_JSON_DEPTH + 1, 900, 5_000, 100_000])
def test_json_nested_thousands_deep_is_refused_not_a_recursion_error(depth: int) -> None:
    text = '{"a":' * depth + "1" + "}" * depth
    with pytest.raises(ClientJsonError, match="CLIENT_JSON_DEPTH"):
        loads_client(text)
    with pytest.raises(ClientJsonError, match="CLIENT_JSON_DEPTH"):
        loads_client_value(text.encode())


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"s": "[" * 10_000, "t": "{" * 100})
    assert loads_client(text)["s"] == "[" * 10_000


def test_integer_literals_past_the_digit_cap_are_refused_before_python_converts_them() -> None:
    assert loads_client("9" * CLIENT_JSON_INT_DIGITS) == int("9" * CLIENT_JSON_INT_DIGITS)
    for literal in ["9" * (CLIENT_JSON_INT_DIGITS + 1), "-" + "1" * 5_000, "1" * 100_000]:
        with pytest.raises(ClientJsonError, match="CLIENT_JSON_INT_DIGITS"):
            loads_client(f'{{"n": {literal}}}')


def test_a_plain_integer_too_big_for_a_float64_is_refused() -> None:
    with pytest.raises(ClientJsonError, match="too large for a float64"):
        loads_client_value("9" * 350)
    # The HTTP API decodes plain JSON with decode_json: the same refusal.
    with pytest.raises(InvalidValueError, match="too large for a float64"):
        decode_json(loads_client("9" * 350))


@pytest.mark.parametrize(
    "text",
    [
        r'"\ud800"',
        r'{"a": ["x\udfffy"]}',
        r'{"\udc00": 1}',
        r'["\ude00\ud83d"]',  # a low then a high: two lone halves
    ],
)
def test_lone_surrogate_escapes_are_refused(text: str) -> None:
    with pytest.raises(ClientJsonError, match="lone surrogate"):
        loads_client(text)
    with pytest.raises(ClientJsonError, match="lone surrogate"):
        loads_client_value(text)


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine() -> None:
    assert loads_client(r'"\ud83d\ude00"') == "\U0001f600"
    assert loads_client(r'"\\ud800"') == "\\ud800"


def test_not_utf8_and_not_json_are_client_errors_with_a_message() -> None:
    with pytest.raises(ClientJsonError, match="not UTF-8"):
        loads_client(b'"\xff"')
    with pytest.raises(ClientJsonError, match="not valid JSON"):
        loads_client("{")
    with pytest.raises(ClientJsonError, match="not Convex values"):
        loads_client_value('{"$integer": 5}')
    assert issubclass(ClientJsonError, ValueError)


def test_loads_client_value_reads_convex_encoded_json() -> None:
    value = loads_client_value('{"f": 1, "i": {"$integer": "BQAAAAAAAAA="}, "inf": 1e999}')
    assert value == {"f": 1.0, "i": 5, "inf": math.inf}
    assert type(value["f"]) is float


@pytest.mark.parametrize(
    "value", ["\ud800", ["ok", "a\udfffb"], {"k": {"nested": "\ud83d"}}, {"\udc00": 1}]
)
def test_check_value_refuses_lone_surrogates(value: object) -> None:
    with pytest.raises(InvalidValueError, match="lone surrogate"):
        check_value(value)


def test_check_value_accepts_other_text() -> None:
    check_value({"emoji": "\U0001f600", "nul": "a\x00b", "latin": "caf\xe9"})
