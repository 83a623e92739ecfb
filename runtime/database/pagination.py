"""Cursor pagination: `query.paginate({"num_items": 10, "cursor": None})`.

A cursor is the index key of the last entry the page walked (matching its
filter or not), so the next page starts strictly after it: pages never skip
or repeat a document, however many are inserted or deleted around them.
Cursors are opaque strings bound to their table, index and order; using one
with another query is an INVALID_CURSOR error. `end_cursor` asks for exactly
the entries up to and including that cursor (how a reactive page keeps its
boundaries while documents come and go).

The result is Convex's PaginationResult, `{"page", "isDone",
"continueCursor"}`: it goes to clients as it is, and their code reads those
names.

In a live query, each `paginate` call's end is kept in the subscription's
journal: when the query re-runs, a page that was not the last one ends at
the same cursor (it grows or shrinks as documents come and go, and the next
page still starts right after it), so pages never overlap or leave gaps.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, TypedDict

from runtime.values import successor

from .errors import InvalidCursorError, InvalidQueryError
from .index_range import KeyRange
from .indexes import IndexSpec

__all__ = ["Page", "PageOptions", "decode_cursor", "encode_cursor", "parse_options", "read_page"]

_START = b"s"  # "before the first entry"
_AFTER = b"k"  # "after this key"


class Page(TypedDict):
    """Convex's PaginationResult, keys as the clients read them (the JS
    client's `usePaginatedQuery` reads `isDone` and `continueCursor`)."""

    page: list[dict[str, Any]]
    isDone: bool
    continueCursor: str


@dataclass(frozen=True, slots=True)
class PageOptions:
    num_items: int
    cursor: str | None
    end_cursor: str | None


def _get(options: dict[str, Any], snake: str, camel: str) -> Any:
    return options[snake] if snake in options else options.get(camel)


def parse_options(options: Any) -> PageOptions:
    """Accept the Python spelling and the clients' camelCase (`numItems`, `endCursor`)."""
    if not isinstance(options, dict):
        raise InvalidQueryError('paginate takes a dict: {"num_items": 10, "cursor": None}')
    n = _get(options, "num_items", "numItems")
    if type(n) is float and n.is_integer():
        n = int(n)
    if type(n) is not int or n < 0:
        raise InvalidQueryError(f"paginate: num_items must be a non-negative integer, got {n!r}")
    cursor = options.get("cursor")
    end = _get(options, "end_cursor", "endCursor")
    for name, c in (("cursor", cursor), ("end_cursor", end)):
        if c is not None and not isinstance(c, str):
            raise InvalidQueryError(f"paginate: {name} must be a string or None, got {c!r}")
    return PageOptions(n, cursor, end)


def encode_cursor(spec: IndexSpec, reverse: bool, key: bytes | None) -> str:
    head = f"{spec.table}\x00{spec.name}\x00{'d' if reverse else 'a'}\x00".encode()
    body = _START if key is None else _AFTER + key
    return base64.urlsafe_b64encode(head + body).decode().rstrip("=")


def decode_cursor(cursor: str, spec: IndexSpec, reverse: bool) -> bytes | None:
    """The key a cursor points after (None: the start of the range)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        table, index, order, body = raw.split(b"\x00", 3)
    except ValueError as e:
        raise InvalidCursorError(f"not a cursor: {cursor[:40]!r}") from e
    want = (spec.table, spec.name, "d" if reverse else "a")
    got = (table.decode(errors="replace"), index.decode(errors="replace"), order.decode())
    if got != want:
        raise InvalidCursorError(
            f"this cursor belongs to another query ({got[0]}.{got[1]}, order {got[2]}), "
            f"not {want[0]}.{want[1]} order {want[2]}: pass the cursor back to the query that made it"
        )
    if body[:1] == _START:
        return None
    if body[:1] == _AFTER:
        return body[1:]
    raise InvalidCursorError(f"not a cursor: {cursor[:40]!r}")


def read_page(
    spec: IndexSpec,
    rng: KeyRange,
    reverse: bool,
    opts: PageOptions,
    rows: Callable[[KeyRange, int], Generator[tuple[bytes, dict[str, Any] | None], None, None]],
) -> Page:
    lo, hi = rng.lo, rng.hi
    after = decode_cursor(opts.cursor, spec, reverse) if opts.cursor is not None else None
    if after is not None:
        if reverse:
            hi = after if hi is None else min(hi, after)
        else:
            lo = max(lo, successor(after))
    bounded = opts.end_cursor is not None
    if bounded:
        assert opts.end_cursor is not None
        end = decode_cursor(opts.end_cursor, spec, reverse)
        if end is None:
            hi = lo  # an end cursor at the start: an empty page
        elif reverse:
            lo = max(lo, end)
        else:
            hi = successor(end) if hi is None else min(hi, successor(end))
    page: list[dict[str, Any]] = []
    last = after
    done = True
    if hi is None or lo < hi:
        want = opts.num_items
        with closing(rows(KeyRange(lo, hi, rng.equalities), max(want, 1) + 1)) as it:
            for key, doc in it:
                if not bounded and len(page) >= want:
                    done = False
                    break
                last = key
                if doc is not None:
                    page.append(doc)
    if bounded:
        # The page ends where the caller said; it is done only if the
        # underlying range ends there too.
        assert opts.end_cursor is not None
        return {"page": page, "isDone": False, "continueCursor": opts.end_cursor}
    return {"page": page, "isDone": done, "continueCursor": encode_cursor(spec, reverse, last)}
