"""convex_encoded_json: Convex values as JSON, with three tagged forms.

int64 -> {"$integer": base64(8 bytes little-endian)}, bytes -> {"$bytes":
base64}, NaN / +-inf / -0.0 -> {"$float": base64(8 bytes little-endian
IEEE)}; every other value is plain JSON. A plain JSON number decodes to a
float64 (the JS client sends numbers that way).
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable
from typing import Any

from .model import INT64_MAX, INT64_MIN, InvalidValueError, Value

__all__ = ["decode_json", "dumps", "encode_json", "encode_plain_json", "loads", "object_hook"]

_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_json(value: Value) -> Any:
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidValueError(f"integer {value} is outside int64")
        return {"$integer": _b64(_I64.pack(value))}
    if t is float:
        if math.isfinite(value) and not (value == 0.0 and math.copysign(1.0, value) < 0):
            return value
        return {"$float": _b64(_F64.pack(value))}
    if t is bytes:
        return {"$bytes": _b64(value)}
    if t is list:
        return [encode_json(x) for x in value]
    if t is dict:
        out = {}
        for k, x in value.items():
            if type(k) is not str:
                raise InvalidValueError(f"object keys must be strings, got {k!r}")
            if k.startswith("$"):
                raise InvalidValueError(f'object key "{k}" starts with "$" (reserved)')
            tx = type(x)
            if tx is str or x is None or tx is bool or (tx is float and x and _finite(x)):
                out[k] = x  # plain JSON as it is (a document's usual fields)
            else:
                out[k] = encode_json(x)
        return out
    raise InvalidValueError(f"{t.__name__} is not a Convex value")


_finite = math.isfinite


_SAFE_INTEGER = 2**53


def encode_plain_json(value: Value) -> Any:
    """The HTTP API's `json` format: plain JSON, lossy where JSON has no form.
    int64 -> a number (a decimal string beyond 2^53), bytes -> base64 string,
    NaN / +-inf -> "NaN" / "Infinity" / "-Infinity", -0.0 -> 0."""
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else str(value)
    if t is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value + 0.0
    if t is bytes:
        return _b64(value)
    if t is list:
        return [encode_plain_json(x) for x in value]
    if t is dict:
        return {k: encode_plain_json(x) for k, x in value.items()}
    raise InvalidValueError(f"{t.__name__} is not a Convex value")


def _unb64(s: object, size: int | None) -> bytes:
    if not isinstance(s, str):
        raise InvalidValueError("a tagged value must hold a base64 string")
    try:
        data = base64.b64decode(s, validate=True)
    except ValueError as e:
        raise InvalidValueError(f"bad base64 in a tagged value: {s[:20]!r}") from e
    if size is not None and len(data) != size:
        raise InvalidValueError(f"a tagged number needs {size} bytes, got {len(data)}")
    return data


def decode_json(obj: Any) -> Value:
    t = type(obj)
    if obj is None or t is bool or t is str or t is float:
        return obj
    if t is int:
        try:
            return float(obj)
        except OverflowError:
            raise InvalidValueError(
                f"the number {str(obj)[:20]}... is too large for a float64"
            ) from None
    if t is list:
        return [decode_json(x) for x in obj]
    if t is dict:
        if len(obj) == 1:
            ((k, x),) = obj.items()
            if k == "$integer":
                return int(_I64.unpack(_unb64(x, 8))[0])
            if k == "$float":
                return float(_F64.unpack(_unb64(x, 8))[0])
            if k == "$bytes":
                return _unb64(x, None)
        out = {}
        for k, x in obj.items():
            if k.startswith("$"):
                raise InvalidValueError(f'object key "{k}" starts with "$" (reserved)')
            out[k] = decode_json(x)
        return out
    raise InvalidValueError(f"{t.__name__} is not JSON")


def dumps(value: Value) -> bytes:
    """Compact convex_encoded_json text (how documents are stored)."""
    return _ENCODER.encode(encode_json(value)).encode("utf-8")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def object_hook(obj: dict[str, Any]) -> Any:
    """`json` decoder hook: decode tagged objects, refuse other `$` keys."""
    if len(obj) == 1:
        k = next(iter(obj))
        if k == "$integer":
            return int(_I64.unpack(_unb64(obj[k], 8))[0])
        if k == "$float":
            return float(_F64.unpack(_unb64(obj[k], 8))[0])
        if k == "$bytes":
            return _unb64(obj[k], None)
    for k in obj:
        if k.startswith("$"):
            raise InvalidValueError(f'object key "{k}" starts with "$" (reserved)')
    return obj


def loads(data: bytes | str, *, int64_literals: bool = False) -> Value:
    """Parse convex_encoded_json text: the same result as decode_json(json.loads(data)),
    done in the C parser (plain JSON integers become floats, tagged objects decode).
    `int64_literals`: integer literals (`5`, not `5.0`) become int64 instead,
    as Python's json module reads them (the CLI's argument syntax)."""
    decoder, scan = _INT64_DECODING if int64_literals else _DECODING
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        # The C scanner itself: `decode` adds two regex matches (surrounding
        # whitespace) and Python frames, a fifth of a stored document's cost.
        value, end = scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # whitespace around it, or not JSON: decode says which
        return decoder.decode(text)
    return value


def _int64(text: str) -> int:
    n = int(text)
    if not INT64_MIN <= n <= INT64_MAX:
        raise InvalidValueError(f"integer {text} is outside int64")
    return n


def _decoding(parse_int: Callable[[str], Any]) -> tuple[json.JSONDecoder, _Scan]:
    """A decoder and its scanner (`scan_once`, which typeshed does not declare)."""
    decoder = json.JSONDecoder(object_hook=object_hook, parse_int=parse_int)
    return decoder, decoder.scan_once  # type: ignore[attr-defined]


_Scan = Callable[[str, int], tuple[Any, int]]
_DECODING = _decoding(float)
_INT64_DECODING = _decoding(_int64)
