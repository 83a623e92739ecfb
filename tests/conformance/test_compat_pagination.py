"""Pagination as Convex's PaginationOptions and PaginationResult define it,
on every backend: `maximumRowsRead` / `maximumBytesRead` end a page early,
a page that reaches the end of its range ends at the end cursor, and
`splitCursor` / `pageStatus` are what the JS client splits pages by."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.database import Database, InvalidQueryError, Transaction
from runtime.values import dumps


def add_items(db: Database, names: list[str]) -> None:
    def fn(tx: Transaction) -> None:
        for i, name in enumerate(names):
            tx.insert("items", {"list": 1, "rank": float(i), "name": name})

    db.mutation(fn)


def page(db: Database, opts: dict[str, Any], keep: set[str] | None = None) -> Any:
    def fn(tx: Transaction) -> Any:
        q = tx.query("items").with_index("by_list_rank", lambda r: r.eq("list", 1))
        if keep is not None:
            q = q.filter(lambda f: f.or_(*(f.eq(f.field("name"), n) for n in keep)))
        return q.paginate(opts)

    return db.query(fn).value


def names(result: Any) -> list[str]:
    return [d["name"] for d in result["page"]]


def test_maximum_rows_read_ends_a_page_early_counting_filtered_rows(db: Database) -> None:
    add_items(db, [f"n{i}" for i in range(10)])
    keep = {"n2", "n7"}
    opts = {"numItems": 5.0, "cursor": None, "maximumRowsRead": 4.0}
    first = page(db, opts, keep)
    # n0..n3 read (three of them dropped by the filter): the page ends there.
    assert names(first) == ["n2"]
    assert first["isDone"] is False and first["pageStatus"] == "SplitRequired"
    second = page(db, {**opts, "cursor": first["continueCursor"]}, keep)
    assert names(second) == ["n7"] and second["pageStatus"] == "SplitRequired"
    third = page(db, {**opts, "cursor": second["continueCursor"]}, keep)
    assert names(third) == [] and third["isDone"] is True and third["pageStatus"] is None
    # Without the option the same query reads on until it has 5 items (or the end).
    whole = page(db, {"numItems": 5.0, "cursor": None}, keep)
    assert names(whole) == ["n2", "n7"] and whole["isDone"] is True


def test_a_page_that_fills_first_is_not_cut_and_a_range_that_ends_is_done(
    db: Database,
) -> None:
    add_items(db, [f"n{i}" for i in range(4)])
    full = page(db, {"numItems": 2, "cursor": None, "maximumRowsRead": 2})
    assert names(full) == ["n0", "n1"] and full["isDone"] is False
    assert full["pageStatus"] == "SplitRecommended"  # read more than 3/4 of its rows
    rest = page(db, {"numItems": 9, "cursor": full["continueCursor"], "maximumRowsRead": 2})
    # The limit is reached exactly where the range ends: done, nothing cut.
    assert names(rest) == ["n2", "n3"] and rest["isDone"] is True


def test_maximum_bytes_read_keeps_the_row_that_crosses_it(db: Database) -> None:
    add_items(db, [f"n{i}" for i in range(6)])
    size = len(dumps(page(db, {"numItems": 1, "cursor": None})["page"][0]))
    got = page(db, {"numItems": 10, "cursor": None, "maximumBytesRead": size + 1})
    assert names(got) == ["n0", "n1"] and got["pageStatus"] == "SplitRequired"
    assert got["isDone"] is False
    tiny = page(db, {"num_items": 10, "cursor": None, "maximum_bytes_read": 1})
    assert names(tiny) == ["n0"]  # one row always: a page makes progress


def test_an_end_cursor_ignores_the_read_limits(db: Database) -> None:
    add_items(db, [f"n{i}" for i in range(6)])
    first = page(db, {"numItems": 4, "cursor": None})
    again = page(
        db,
        {"numItems": 1, "cursor": None, "endCursor": first["continueCursor"], "maximumRowsRead": 1},
    )
    assert names(again) == ["n0", "n1", "n2", "n3"] and again["pageStatus"] != "SplitRequired"
    assert again["continueCursor"] == first["continueCursor"] and again["isDone"] is False


def test_a_done_page_ends_at_the_end_cursor_and_covers_later_inserts(db: Database) -> None:
    empty = page(db, {"numItems": 1, "cursor": None})
    assert empty["page"] == [] and empty["isDone"] is True
    add_items(db, ["a", "b", "c"])
    # Re-run up to the end cursor (what a live query's journal does): all of them.
    grown = page(db, {"numItems": 1, "cursor": None, "endCursor": empty["continueCursor"]})
    assert names(grown) == ["a", "b", "c"] and grown["isDone"] is True
    # The end cursor as a start cursor: nothing after the end.
    after = page(db, {"numItems": 5, "cursor": empty["continueCursor"]})
    assert after["page"] == [] and after["isDone"] is True


def test_split_cursor_splits_a_page_into_two_that_add_up(db: Database) -> None:
    add_items(db, [f"n{i}" for i in range(7)])
    keep = {"n0", "n1", "n3", "n4", "n6"}
    whole = page(db, {"numItems": 50, "cursor": None}, keep)
    split = whole["splitCursor"]
    assert isinstance(split, str)
    left = page(db, {"numItems": 1, "cursor": None, "endCursor": split}, keep)
    right = page(db, {"numItems": 1, "cursor": split, "endCursor": whole["continueCursor"]}, keep)
    assert names(left) + names(right) == names(whole)
    assert names(left) and names(right)
    assert right["isDone"] is True and left["isDone"] is False
    few = page(db, {"numItems": 2, "cursor": None})
    assert few["splitCursor"] is None  # two rows read: nothing to split


@pytest.mark.parametrize(
    "opts",
    [
        {"numItems": 1, "cursor": None, "maximumRowsRead": 0},
        {"numItems": 1, "cursor": None, "maximumRowsRead": 1.5},
        {"numItems": 1, "cursor": None, "maximumBytesRead": -3},
        {"numItems": 1, "cursor": None, "maximum_bytes_read": "10"},
    ],
)
@pytest.mark.parametrize("backend", ["sqlite"])
def test_read_limits_must_be_positive_integers(db: Database, opts: dict[str, Any]) -> None:
    with pytest.raises(InvalidQueryError, match="greater than 0"):
        page(db, opts)
