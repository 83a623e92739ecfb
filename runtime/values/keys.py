"""Order-preserving byte encoding of value tuples (index keys).

For tuples a, b: encode_key(a) < encode_key(b) bytewise iff a < b in the
total order (element by element, a prefix first), and decode_key inverts it.
Each element is a kind tag (ascending in kind order) and a self-delimiting
payload, so the encoding of a tuple prefix is a byte prefix of the whole and
no element's encoding is a prefix of another's.

- int64: 8 bytes big-endian with the sign bit flipped
- float64: 8 bytes big-endian, all bits flipped when negative, else the sign
  bit flipped (NaN canonicalized, so it sorts last)
- boolean: the tag alone (false and true have their own tags)
- string, bytes: the bytes with 0x00 escaped as 0x00 0xFF, ended by 0x00 0x00
- array: elements, then 0x00; object: 0x01 + (key, value) per pair, sorted
  by key, then 0x00
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

from .model import UNDEFINED

__all__ = ["component_prefixes", "decode_key", "encode_key", "prefix_end", "successor"]

T_UNDEFINED, T_NULL, T_INT, T_FLOAT, T_FALSE, T_TRUE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
T_STRING, T_BYTES, T_ARRAY, T_OBJECT = 0x07, 0x08, 0x09, 0x0A
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_SIGN = 1 << 63
_MASK = (1 << 64) - 1
_NAN = struct.unpack(">Q", struct.pack(">d", math.nan))[0]


def _escaped(data: bytes) -> bytes:
    return data.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _enc(value: Any, out: bytearray) -> None:
    t = type(value)
    if value is None:
        out.append(T_NULL)
    elif t is bool:
        out.append(T_TRUE if value else T_FALSE)
    elif t is int:
        out.append(T_INT)
        out += _U64.pack((value + _SIGN) & _MASK)
    elif t is float:
        out.append(T_FLOAT)
        bits = _NAN if math.isnan(value) else _U64.unpack(_F64.pack(value))[0]
        bits = (~bits & _MASK) if bits & _SIGN else bits | _SIGN
        out += _U64.pack(bits)
    elif t is str:
        out.append(T_STRING)
        out += _escaped(value.encode("utf-8"))
    elif t is bytes:
        out.append(T_BYTES)
        out += _escaped(value)
    elif t is list:
        out.append(T_ARRAY)
        for x in value:
            _enc(x, out)
        out.append(0)
    elif t is dict:
        out.append(T_OBJECT)
        for k in sorted(value, key=lambda k: k.encode("utf-8")):
            out.append(0x01)  # a pair follows (the terminator 0x00 sorts first)
            out += _escaped(k.encode("utf-8"))
            _enc(value[k], out)
        out.append(0)
    elif value is UNDEFINED:
        out.append(T_UNDEFINED)
    else:
        raise TypeError(f"{t.__name__} is not a Convex value")


def encode_key(values: Sequence[Any]) -> bytes:
    out = bytearray()
    for value in values:
        _enc(value, out)
    return bytes(out)


def _unescape(data: bytes, i: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        j = data.index(b"\x00", i)
        out += data[i:j]
        if data[j + 1] == 0x00:
            return bytes(out), j + 2
        out.append(0)  # 0x00 0xFF
        i = j + 2


def _dec(data: bytes, i: int) -> tuple[Any, int]:
    tag = data[i]
    i += 1
    if tag == T_NULL:
        return None, i
    if tag == T_UNDEFINED:
        return UNDEFINED, i
    if tag in (T_FALSE, T_TRUE):
        return tag == T_TRUE, i
    if tag == T_INT:
        return _U64.unpack_from(data, i)[0] - _SIGN, i + 8
    if tag == T_FLOAT:
        bits = _U64.unpack_from(data, i)[0]
        bits = bits & ~_SIGN & _MASK if bits & _SIGN else ~bits & _MASK
        return _F64.unpack(_U64.pack(bits))[0], i + 8
    if tag == T_STRING:
        raw, i = _unescape(data, i)
        return raw.decode("utf-8"), i
    if tag == T_BYTES:
        return _unescape(data, i)
    if tag == T_ARRAY:
        items = []
        while data[i] != 0:
            x, i = _dec(data, i)
            items.append(x)
        return items, i + 1
    if tag == T_OBJECT:
        obj = {}
        while data[i] != 0:
            k, i = _unescape(data, i + 1)
            obj[k.decode("utf-8")], i = _dec(data, i)
        return obj, i + 1
    raise ValueError(f"bad key tag {tag:#x} at {i - 1}")


def decode_key(data: bytes) -> tuple[Any, ...]:
    out = []
    i = 0
    while i < len(data):
        x, i = _dec(data, i)
        out.append(x)
    return tuple(out)


def component_prefixes(data: bytes) -> list[bytes]:
    """The byte prefixes of a key that end at an element boundary, shortest
    first (b"" included): the encodings of its tuple's prefixes. Bytes that
    do not decode (a range bound such as `successor(key)`) end the list."""
    out = [b""]
    i = 0
    while i < len(data):
        try:
            _, i = _dec(data, i)
        except (ValueError, IndexError, struct.error):
            break
        out.append(data[:i])
    return out


def successor(key: bytes) -> bytes:
    """The smallest byte string greater than `key`."""
    return key + b"\x00"


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with
    `prefix` (None if there is none: `prefix` is empty or all 0xFF)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)
