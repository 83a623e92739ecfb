"""The one parser for JSON that comes from a client (HTTP bodies, socket
messages, import lines).

Python's `json.loads` is fine for trusted text but answers hostile text
with exceptions a server turns into 500s, or with values that break it
later: JSON nested thousands deep raises `RecursionError`, an integer
literal over 4,300 digits raises a bare `ValueError`, and `"\\ud800"`
escapes decode to lone surrogates that no UTF-8 encoder accepts, so the
failure surfaces when the value is stored or answered. `loads_client`
refuses all three with a `ClientJsonError` (a `ValueError`) whose message
says what was wrong, so every caller can answer a 4xx.

Limits (`runtime/limits.py`): `CLIENT_JSON_DEPTH` levels of nesting,
`CLIENT_JSON_INT_DIGITS` digits per integer literal. Text must be UTF-8.
`NaN` and `Infinity` literals are accepted, as Python's json reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from runtime.limits import CLIENT_JSON_DEPTH, CLIENT_JSON_INT_DIGITS

from .json_codec import object_hook
from .model import InvalidValueError, Value, has_lone_surrogate

__all__ = ["ClientJsonError", "loads_client", "loads_client_value"]


class ClientJsonError(ValueError):
    """Client JSON that is refused: not UTF-8, not JSON, or past a limit."""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > CLIENT_JSON_INT_DIGITS:
        raise ClientJsonError(
            f"an integer literal has {digits:,} digits; the limit is {CLIENT_JSON_INT_DIGITS} "
            '(CLIENT_JSON_INT_DIGITS). Send big integers as int64 ({"$integer": ...}) or as '
            "strings"
        )
    return int(text)


def _float_int(text: str) -> float:
    """A plain JSON integer as convex_encoded_json reads it: a float64."""
    n = _int(text)
    try:
        return float(n)
    except OverflowError:
        raise ClientJsonError(
            f"the integer literal {text[:20]}... is too large for a float64"
        ) from None


_PLAIN = json.JSONDecoder(parse_int=_int)
_CONVEX = json.JSONDecoder(object_hook=object_hook, parse_int=_float_int)


def loads_client(data: str | bytes) -> Any:
    """Parse client JSON into plain Python (dict, list, str, int, float,
    bool, None); raise `ClientJsonError` for anything refused."""
    return _parse(data, _PLAIN.decode)


def loads_client_value(data: str | bytes) -> Value:
    """Parse client convex_encoded_json into a Convex value (what
    `values.loads` does for trusted text), with the same refusals."""
    return _parse(data, _CONVEX.decode)


def _parse(data: str | bytes, decode: Callable[[str], Any]) -> Any:
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ClientJsonError(f"the JSON text is not UTF-8: {e}") from None
    else:
        text = data
    try:
        value = decode(text)
    except RecursionError:
        raise _too_deep() from None
    except ClientJsonError:
        raise
    except InvalidValueError as e:  # a bad tagged value (`loads_client_value`)
        raise ClientJsonError(f"not Convex values: {e}") from None
    except ValueError as e:  # JSONDecodeError, and the value checks of the hook
        raise ClientJsonError(f"not valid JSON: {e}") from None
    # The C parser's recursion is bounded (RecursionError above, ~1,000
    # levels); the exact cap is checked on the result, and only when the text
    # could break it (more openers than the cap; a surrogate escape). The
    # depth walk visits containers only: ~10 ms for 1.5 MB of objects.
    if type(value) in (dict, list) and text.count("[") + text.count("{") > CLIENT_JSON_DEPTH:
        _check_depth(value)
    if _SURROGATE_ESCAPE.search(text) is not None or has_lone_surrogate(text):
        _check_strings(value)
    return value


def _too_deep() -> ClientJsonError:
    return ClientJsonError(
        f"the JSON nests deeper than {CLIENT_JSON_DEPTH} levels (CLIENT_JSON_DEPTH); "
        "values nest at most 16 levels"
    )


def _check_depth(value: Any) -> None:
    """Refuse nesting past the cap, walking the containers without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth >= CLIENT_JSON_DEPTH:
            raise _too_deep()
        for item in node.values() if type(node) is dict else node:
            if type(item) is dict or type(item) is list:
                stack.append((item, depth + 1))


def _check_strings(value: Any) -> None:
    """Refuse strings (values or keys) that hold a lone surrogate."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if has_lone_surrogate(node):
                raise _surrogate()
        elif type(node) is dict:
            for key, item in node.items():
                if has_lone_surrogate(key):
                    raise _surrogate()
                stack.append(item)
        elif type(node) is list:
            stack.extend(node)


def _surrogate() -> ClientJsonError:
    return ClientJsonError(
        "a string holds a lone surrogate (a \\ud800-\\udfff escape without its pair): "
        "strings must be valid Unicode"
    )
