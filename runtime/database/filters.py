"""Filter expressions: `.filter(lambda q: q.and_(q.eq(q.field("a"), 1), q.gt(...)))`.

`q` builds an expression tree; the query evaluates it on each scanned
document. Comparisons use the total order of Convex values (so they work
across kinds: a missing field is `undefined`, less than everything).
Arithmetic needs two numbers of one kind (int64 with int64, float64 with
float64), as in Convex.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.values import UNDEFINED, check_value, compare

from .errors import InvalidQueryError
from .indexes import field_value

__all__ = ["Expression", "FilterBuilder", "evaluate"]


class Expression:
    """A node of a filter expression; build them with `FilterBuilder` (`q`)."""

    def evaluate(self, doc: dict[str, Any]) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Field(Expression):
    path: str

    def evaluate(self, doc: dict[str, Any]) -> Any:
        return field_value(doc, self.path)


@dataclass(frozen=True, slots=True)
class _Literal(Expression):
    value: Any

    def evaluate(self, doc: dict[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class _Op(Expression):
    name: str
    fn: Callable[..., Any]
    args: tuple[Expression, ...]

    def evaluate(self, doc: dict[str, Any]) -> Any:
        return self.fn(*(a.evaluate(doc) for a in self.args))


def _expr(x: Any) -> Expression:
    if isinstance(x, Expression):
        return x
    if x is not UNDEFINED:
        check_value(x)
    return _Literal(x)


def _numbers(name: str, a: Any, b: Any) -> None:
    ok = (type(a) is int and type(b) is int) or (type(a) is float and type(b) is float)
    if not ok:
        raise InvalidQueryError(
            f"q.{name} needs two numbers of one kind (int64 with int64 or float64 with "
            f"float64), got {a!r} and {b!r}"
        )


def _div(a: Any, b: Any) -> Any:
    _numbers("div", a, b)
    if type(a) is int:
        if b == 0:
            raise InvalidQueryError("q.div: int64 division by zero")
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if b == 0.0:
        return math.copysign(math.inf, a) * math.copysign(1.0, b) if a != 0 else math.nan
    return a / b


def _mod(a: Any, b: Any) -> Any:
    _numbers("mod", a, b)
    if type(a) is int:
        if b == 0:
            raise InvalidQueryError("q.mod: int64 modulo by zero")
        r = abs(a) % abs(b)  # truncated: the sign follows the dividend, as in JS
        return r if a >= 0 else -r
    return math.fmod(a, b) if b != 0.0 else math.nan


def _arith(name: str, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        _numbers(name, a, b)
        r = op(a, b)
        if type(r) is int:
            r = ((r + 2**63) % 2**64) - 2**63  # int64 wraps
        return r

    return run


def _neg(a: Any) -> Any:
    if type(a) not in (int, float):
        raise InvalidQueryError(f"q.neg needs a number, got {a!r}")
    return -a


class FilterBuilder:
    """The `q` passed to `.filter(...)`."""

    def field(self, path: str) -> Expression:
        if not isinstance(path, str) or not path:
            raise InvalidQueryError("q.field needs a non-empty field path string")
        return _Field(path)

    def _cmp(self, name: str, test: Callable[[int], bool], a: Any, b: Any) -> Expression:
        return _Op(name, lambda x, y: test(compare(x, y)), (_expr(a), _expr(b)))

    def eq(self, a: Any, b: Any) -> Expression:
        return self._cmp("eq", lambda c: c == 0, a, b)

    def neq(self, a: Any, b: Any) -> Expression:
        return self._cmp("neq", lambda c: c != 0, a, b)

    def lt(self, a: Any, b: Any) -> Expression:
        return self._cmp("lt", lambda c: c < 0, a, b)

    def lte(self, a: Any, b: Any) -> Expression:
        return self._cmp("lte", lambda c: c <= 0, a, b)

    def gt(self, a: Any, b: Any) -> Expression:
        return self._cmp("gt", lambda c: c > 0, a, b)

    def gte(self, a: Any, b: Any) -> Expression:
        return self._cmp("gte", lambda c: c >= 0, a, b)

    def add(self, a: Any, b: Any) -> Expression:
        return _Op("add", _arith("add", lambda x, y: x + y), (_expr(a), _expr(b)))

    def sub(self, a: Any, b: Any) -> Expression:
        return _Op("sub", _arith("sub", lambda x, y: x - y), (_expr(a), _expr(b)))

    def mul(self, a: Any, b: Any) -> Expression:
        return _Op("mul", _arith("mul", lambda x, y: x * y), (_expr(a), _expr(b)))

    def div(self, a: Any, b: Any) -> Expression:
        return _Op("div", _div, (_expr(a), _expr(b)))

    def mod(self, a: Any, b: Any) -> Expression:
        return _Op("mod", _mod, (_expr(a), _expr(b)))

    def neg(self, a: Any) -> Expression:
        return _Op("neg", _neg, (_expr(a),))

    def and_(self, *exprs: Any) -> Expression:
        return _Op("and", lambda *xs: all(x is True for x in xs), tuple(map(_expr, exprs)))

    def or_(self, *exprs: Any) -> Expression:
        return _Op("or", lambda *xs: any(x is True for x in xs), tuple(map(_expr, exprs)))

    def not_(self, a: Any) -> Expression:
        return _Op("not", lambda x: x is not True, (_expr(a),))


def evaluate(expr: Any, doc: dict[str, Any]) -> bool:
    """Whether `doc` passes a filter's result (an Expression or a plain value)."""
    value = expr.evaluate(doc) if isinstance(expr, Expression) else expr
    return value is True
