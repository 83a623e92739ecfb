"""Index range expressions: `lambda q: q.eq("a", 1).gt("b", 2).lt("b", 9)`.

Equalities on a prefix of the index's fields, in order, then at most one lower
and one upper bound on the next field. The result is a half-open byte range
[lo, hi) over the index's sort keys, plus the equality values (the database
uses the first one to choose the range version to check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.values import check_value, encode_key, prefix_end

from .errors import InvalidQueryError

__all__ = ["IndexRangeBuilder", "KeyRange", "build_range"]


@dataclass(frozen=True, slots=True)
class KeyRange:
    lo: bytes
    hi: bytes | None
    equalities: tuple[Any, ...]


@dataclass
class IndexRangeBuilder:
    """The `q` passed to a `with_index` range function."""

    index: str
    fields: tuple[str, ...]
    as_stored: Callable[[str, Any], Any] = lambda field, value: value
    """(field, value) -> the value as a write would store it (the schema's
    int -> float64 rule for `v.number()` fields)."""
    _eq: list[Any] = field(default_factory=list)
    _lower: tuple[str, str, Any] | None = None
    """(op, field, value)"""
    _upper: tuple[str, str, Any] | None = None

    def _next_field(self, op: str, name: str) -> None:
        if (self._lower is not None or self._upper is not None) and op == "eq":
            raise InvalidQueryError(
                f'index {self.index}: .eq("{name}") after a range bound; equalities '
                "come first, then at most one lower and one upper bound on the next field"
            )
        pos = len(self._eq)
        if pos >= len(self.fields):
            raise InvalidQueryError(
                f'index {self.index} has fields {list(self.fields)}: no field left for .{op}("{name}")'
            )
        expected = self.fields[pos]
        if name != expected:
            raise InvalidQueryError(
                f'index {self.index} has fields {list(self.fields)}: .{op}("{name}") must '
                f'name "{expected}" here (fields are constrained in index order)'
            )

    def eq(self, name: str, value: Any) -> IndexRangeBuilder:
        self._next_field("eq", name)
        check_value(value)
        self._eq.append(self.as_stored(name, value))
        return self

    def _bound(self, op: str, name: str, value: Any, lower: bool) -> IndexRangeBuilder:
        current = self._lower if lower else self._upper
        if current is not None:
            raise InvalidQueryError(
                f"index {self.index}: two {'lower' if lower else 'upper'} bounds "
                f'(.{current[0]} and .{op} on "{name}"); use one of gt/gte and one of lt/lte'
            )
        other = self._upper if lower else self._lower
        if other is None:
            self._next_field(op, name)
        elif other[1] != name:
            raise InvalidQueryError(
                f'index {self.index}: the bounds must be on one field ("{other[1]}" and "{name}")'
            )
        check_value(value)
        value = self.as_stored(name, value)
        if lower:
            self._lower = (op, name, value)
        else:
            self._upper = (op, name, value)
        return self

    def gt(self, name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("gt", name, value, lower=True)

    def gte(self, name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("gte", name, value, lower=True)

    def lt(self, name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("lt", name, value, lower=False)

    def lte(self, name: str, value: Any) -> IndexRangeBuilder:
        return self._bound("lte", name, value, lower=False)


def build_range(builder: IndexRangeBuilder) -> KeyRange:
    """Turn the builder's constraints into a byte range over the index keys."""
    eqs = list(builder._eq)
    prefix = encode_key(eqs)
    lo = prefix
    hi = prefix_end(prefix) if eqs else None
    if builder._lower is not None:
        op, _, value = builder._lower
        k = encode_key([*eqs, value])
        # Every key whose field equals `value` starts with k (the encoding is
        # self-delimiting), so prefix_end(k) is the first key past them.
        lo = k if op == "gte" else (prefix_end(k) or k)
    if builder._upper is not None:
        op, _, value = builder._upper
        k = encode_key([*eqs, value])
        hi = k if op == "lt" else prefix_end(k)
    return KeyRange(lo, hi, tuple(eqs))
