"""Document ids: strings that encode their table.

An id is 22 bytes in lowercase Crockford base32 (36 characters): 16 random
bytes, a 4-byte tag of the table name (blake2b), and a 2-byte checksum of the
20 before it. So `v.id("users")` and `db.normalize_id("users", s)` can tell an
id of another table (or a mistyped one) without a read. Two tables of one
schema whose tags collide are refused when the schema is defined.
"""

from __future__ import annotations

import functools
import hashlib
import re

from runtime.errors import PlatformError
from runtime.limits import TABLE_NAME_CHARS

__all__ = [
    "InvalidTableNameError",
    "check_table_name",
    "is_id_for",
    "make_id",
    "parse_id",
    "table_tag",
]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RAW_LEN = 22
_TEXT_LEN = (_RAW_LEN * 8 + 4) // 5  # 36
_TABLE_RE = re.compile(r"^[A-Za-z0-9_]+$")


class InvalidTableNameError(PlatformError):
    code = "INVALID_TABLE_NAME"


_WELL_FORMED: set[str] = set()
"""Table names seen to pass the pattern check (every write checks its table's
name; an app has few). Bounded: past _WELL_FORMED_HELD names, no more are kept."""
_WELL_FORMED_HELD = 4096


def check_table_name(name: str, *, system_ok: bool = False) -> None:
    if type(name) is str and name in _WELL_FORMED:
        pass
    elif (
        not isinstance(name, str)
        or not name
        or len(name) > TABLE_NAME_CHARS
        or not _TABLE_RE.match(name)
    ):
        raise InvalidTableNameError(
            f"invalid table name {name!r}: use 1 to {TABLE_NAME_CHARS} characters of "
            "letters, digits and underscores"
        )
    elif len(_WELL_FORMED) < _WELL_FORMED_HELD:
        _WELL_FORMED.add(name)
    if name[0] == "_" and not system_ok:
        raise InvalidTableNameError(
            f'invalid table name "{name}": names starting with "_" are reserved for system tables'
        )


@functools.lru_cache(maxsize=4096)
def table_tag(table: str) -> bytes:
    return hashlib.blake2b(table.encode(), digest_size=8).digest()[:4]


def _checksum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=2, person=b"docid").digest()


_PAIRS = [_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024)]
"""Two base32 digits per 10 bits: an id is 18 lookups."""


def _b32(data: bytes) -> str:
    # RFC 4648 base32 of 22 bytes (MSB first, the last group zero-filled:
    # 176 bits + 4) in Crockford's alphabet.
    n = int.from_bytes(data, "big") << 4
    pairs = _PAIRS
    return "".join([pairs[(n >> shift) & 1023] for shift in range(170, -1, -10)])


def make_id(table: str, random16: bytes) -> str:
    if len(random16) != 16:
        raise ValueError("make_id needs 16 random bytes")
    body = random16 + table_tag(table)
    return _b32(body + _checksum(body))


_PAIR_VALUES = {pair: i for i, pair in enumerate(_PAIRS)}


def parse_id(s: object) -> tuple[bytes, bytes] | None:
    """(random part, table tag) of a well-formed id, else None."""
    if not isinstance(s, str) or len(s) != _TEXT_LEN:
        return None
    return _parse(s if type(s) is str else str(s))


@functools.lru_cache(maxsize=65536)
def _parse(s: str) -> tuple[bytes, bytes] | None:
    # A function sees the same few ids many times (each db call checks them).
    n = 0
    values = _PAIR_VALUES
    for i in range(0, _TEXT_LEN, 2):
        v = values.get(s[i : i + 2])
        if v is None:
            return None
        n = (n << 10) | v
    pad = _TEXT_LEN * 5 - _RAW_LEN * 8
    if n & ((1 << pad) - 1):
        return None
    raw = (n >> pad).to_bytes(_RAW_LEN, "big")
    if _checksum(raw[:20]) != raw[20:]:
        return None
    return raw[:16], raw[16:20]


def is_id_for(table: str, s: object) -> bool:
    parsed = parse_id(s)
    return parsed is not None and parsed[1] == table_tag(table)
