"""Cursor pagination: `query.paginate({"num_items": 10, "cursor": None})`.

A cursor is a position in one query's index order: the start, "after this
index key" (the last entry a page walked, matching its filter or not), or
the end. The next page starts strictly after it, so pages never skip or
repeat a document, however many are inserted or deleted around them.
Cursors are opaque strings bound to their table, index and order; using one
with another query is an INVALID_CURSOR error.

The result is Convex's PaginationResult, `{"page", "isDone",
"continueCursor", "splitCursor", "pageStatus"}`: it goes to clients as it
is, and their code reads those names (the JS client's paginated subscription
splits a page at `splitCursor` when `pageStatus` asks for it or the page
has grown past twice its first size).

Options, as Convex's PaginationOptions (snake_case or the clients' camelCase):
- `num_items`: the page size of a new page.
- `end_cursor`: the page is exactly the entries up to and including that
  cursor, whatever their number; the read limits below do not apply (the
  page must cover its range to stay gapless).
- `maximum_rows_read` / `maximum_bytes_read`: without an end cursor, the
  page ends early, with `isDone` false, a cursor after the last entry read
  and `pageStatus` "SplitRequired", once it has read that many index
  entries (those its filter drops count: they are what the limit bounds) or
  that many bytes of documents (their stored size; the entry that crosses
  the limit is kept, so a page always makes progress).

A page that reaches the end of the range ends at the *end* cursor, not
after its last entry: that is `isDone` (Convex: `isDone` means "the cursor
is the end"). In a live query each `paginate` call's end cursor is kept in
the subscription's journal, and a re-run of the query pages up to the same
cursor: a page that was not the last one keeps its boundary (it grows or
shrinks as documents come and go, and the next page still starts right
after it), and the last page, whose end is the end cursor, takes in every
document inserted after it, however many. So a live query whose first page
was empty shows every later insert.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from runtime.limits import (
    ARRAY_ELEMENTS,
    BYTES_READ_PER_FUNCTION,
    DOCUMENTS_SCANNED_PER_FUNCTION,
    PAGE_SPLIT_RECOMMENDED_FRACTION,
)
from runtime.values import dumps, successor

from .errors import InvalidCursorError, InvalidQueryError
from .index_range import KeyRange
from .indexes import IndexSpec

__all__ = [
    "END",
    "START",
    "Page",
    "PageOptions",
    "Position",
    "decode_cursor",
    "encode_cursor",
    "parse_options",
    "read_page",
]

_START = b"s"  # "before the first entry"
_AFTER = b"k"  # "after this key"
_END = b"e"  # "after the last entry, wherever that is"

PageStatus = Literal["SplitRecommended", "SplitRequired"]

Rows = Callable[[KeyRange, int], Generator[tuple[bytes, dict[str, Any], bool], None, None]]
"""(range, prefetch hint) -> (index key, document, whether the filter keeps it), in order."""


class Page(TypedDict):
    """Convex's PaginationResult, keys as the clients read them (the JS
    client's paginated subscription reads all five)."""

    page: list[dict[str, Any]]
    isDone: bool
    continueCursor: str
    splitCursor: str | None
    pageStatus: PageStatus | None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a cursor points: after `key`, or the start (key None), or the end."""

    key: bytes | None
    end: bool = False


START = Position(None)
END = Position(None, end=True)


@dataclass(frozen=True, slots=True)
class PageOptions:
    num_items: int
    cursor: str | None
    end_cursor: str | None
    maximum_rows_read: int | None = None
    maximum_bytes_read: int | None = None


def _get(options: dict[str, Any], snake: str, camel: str) -> Any:
    return options[snake] if snake in options else options.get(camel)


def _count(value: Any) -> Any:
    """Clients send numbers as float64: 10.0 is the count 10."""
    return int(value) if type(value) is float and value.is_integer() else value


def parse_options(options: Any) -> PageOptions:
    """Accept the Python spelling and the clients' camelCase (`numItems`,
    `endCursor`, `maximumRowsRead`, `maximumBytesRead`); other keys (the
    React client's `id`) are ignored."""
    if not isinstance(options, dict):
        raise InvalidQueryError('paginate takes a dict: {"num_items": 10, "cursor": None}')
    n = _count(_get(options, "num_items", "numItems"))
    if type(n) is not int or n < 0:
        raise InvalidQueryError(f"paginate: num_items must be a non-negative integer, got {n!r}")
    cursor = options.get("cursor")
    end = _get(options, "end_cursor", "endCursor")
    for name, c in (("cursor", cursor), ("end_cursor", end)):
        if c is not None and not isinstance(c, str):
            raise InvalidQueryError(f"paginate: {name} must be a string or None, got {c!r}")
    limits: list[int | None] = []
    for snake, camel in (
        ("maximum_rows_read", "maximumRowsRead"),
        ("maximum_bytes_read", "maximumBytesRead"),
    ):
        got = _count(_get(options, snake, camel))
        if got is not None and (type(got) is not int or got <= 0):
            raise InvalidQueryError(
                f"paginate: {camel} must be an integer greater than 0 (or left out), got {got!r}"
            )
        limits.append(got)
    return PageOptions(n, cursor, end, limits[0], limits[1])


def encode_cursor(spec: IndexSpec, reverse: bool, at: Position) -> str:
    head = f"{spec.table}\x00{spec.name}\x00{'d' if reverse else 'a'}\x00".encode()
    body = _END if at.end else _START if at.key is None else _AFTER + at.key
    return base64.urlsafe_b64encode(head + body).decode().rstrip("=")


def decode_cursor(cursor: str, spec: IndexSpec, reverse: bool) -> Position:
    """The position a cursor points at, checked against the query it is used with."""
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
    if body == _START:
        return START
    if body == _END:
        return END
    if body[:1] == _AFTER and len(body) > 1:
        return Position(body[1:])
    raise InvalidCursorError(f"not a cursor: {cursor[:40]!r}")


def _bounds(
    rng: KeyRange, reverse: bool, start: Position, end: Position | None
) -> tuple[bytes, bytes | None] | None:
    """The byte range [lo, hi) between the two cursors, within the query's
    range, in the query's order; None when nothing can be in it."""
    lo, hi = rng.lo, rng.hi
    if start.end:
        return None
    if start.key is not None:
        if reverse:
            hi = start.key if hi is None else min(hi, start.key)
        else:
            lo = max(lo, successor(start.key))
    if end is not None and not end.end:
        if end.key is None:
            return None  # ends at the start: an empty page
        if reverse:
            lo = max(lo, end.key)
        else:
            hi = successor(end.key) if hi is None else min(hi, successor(end.key))
    if hi is not None and lo >= hi:
        return None
    return lo, hi


def _soft(limit: int | None, hard: int) -> int:
    return int(min(limit or hard, hard) * PAGE_SPLIT_RECOMMENDED_FRACTION)


def read_page(spec: IndexSpec, rng: KeyRange, reverse: bool, opts: PageOptions, rows: Rows) -> Page:
    start = decode_cursor(opts.cursor, spec, reverse) if opts.cursor is not None else START
    end = decode_cursor(opts.end_cursor, spec, reverse) if opts.end_cursor is not None else None
    bounds = _bounds(rng, reverse, start, end)
    max_rows, max_bytes = opts.maximum_rows_read, opts.maximum_bytes_read
    page: list[dict[str, Any]] = []
    walked: list[bytes] = []  # index keys of the entries read, for the split cursor
    nbytes = 0
    status: PageStatus | None = None
    cut = False  # the page ended before the range did
    if bounds is not None:
        want = opts.num_items
        hint = (min(want, max_rows) if max_rows else want) if end is None else want
        with closing(rows(KeyRange(bounds[0], bounds[1], rng.equalities), max(hint, 1) + 1)) as it:
            for key, doc, keep in it:
                if end is None:
                    # A row past the page: the range goes on after it.
                    if len(page) >= want:
                        cut = True
                        break
                    if (max_rows is not None and len(walked) >= max_rows) or (
                        max_bytes is not None and nbytes >= max_bytes
                    ):
                        cut, status = True, "SplitRequired"
                        break
                walked.append(key)
                if max_bytes is not None:
                    nbytes += len(dumps(doc))
                if keep:
                    page.append(doc)
    if status is None and (
        len(walked) > _soft(max_rows, DOCUMENTS_SCANNED_PER_FUNCTION)
        or (max_bytes is not None and nbytes > _soft(max_bytes, BYTES_READ_PER_FUNCTION))
        or len(page) > _soft(None, ARRAY_ELEMENTS)
    ):
        status = "SplitRecommended"
    if end is not None:
        stop = end  # the page ends where the caller (or the journal) said
    elif cut:
        stop = Position(walked[-1]) if walked else start
    else:
        stop = END
    split = Position(walked[len(walked) // 2]) if len(walked) > 2 else None
    return {
        "page": page,
        "isDone": stop.end,
        "continueCursor": encode_cursor(spec, reverse, stop),
        "splitCursor": encode_cursor(spec, reverse, split) if split is not None else None,
        "pageStatus": status,
    }
