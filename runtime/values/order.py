"""The total order of Convex values (indexes, sorting, filter comparisons).

undefined < null < int64 < float64 < boolean < string < bytes < array < object.
Within a kind: numbers numerically (floats: -inf < ... < -0.0 < 0.0 < ... <
inf < NaN, all NaNs equal), false < true, strings by UTF-8 bytes, bytes
bytewise, arrays element by element (a prefix first), objects as their
(key, value) pairs sorted by key, compared pairwise.
"""

from __future__ import annotations

import math
from typing import Any

from .model import kind_of

__all__ = ["KIND_RANK", "compare", "values_equal"]

KIND_RANK = {
    "undefined": 0,
    "null": 1,
    "int64": 2,
    "float64": 3,
    "boolean": 4,
    "string": 5,
    "bytes": 6,
    "array": 7,
    "object": 8,
}


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _float_key(x: float) -> tuple[int, float]:
    if math.isnan(x):
        return (2, 0.0)
    if x == 0.0:
        return (1, 0.0) if math.copysign(1.0, x) > 0 else (0, 0.0)
    return (1, x) if x > 0 else (0, x)


def compare(a: Any, b: Any) -> int:
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        return _cmp(KIND_RANK[ka], KIND_RANK[kb])
    if ka in ("undefined", "null"):
        return 0
    if ka == "float64":
        return _cmp(_float_key(a), _float_key(b))
    if ka == "string":
        return _cmp(a.encode("utf-8"), b.encode("utf-8"))
    if ka == "array":
        for x, y in zip(a, b, strict=False):
            c = compare(x, y)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ka == "object":
        pa = sorted(a.items(), key=lambda kv: kv[0].encode("utf-8"))
        pb = sorted(b.items(), key=lambda kv: kv[0].encode("utf-8"))
        for (xk, xv), (yk, yv) in zip(pa, pb, strict=False):
            c = _cmp(xk.encode("utf-8"), yk.encode("utf-8")) or compare(xv, yv)
            if c:
                return c
        return _cmp(len(pa), len(pb))
    return _cmp(a, b)


def values_equal(a: Any, b: Any) -> bool:
    """Equality in the Convex sense: 1 != 1.0, -0.0 != 0.0, NaN == NaN."""
    return compare(a, b) == 0
