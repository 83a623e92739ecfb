"""What the embedded engine's candidates query reads: the FTS5 content table
(where `doc` and `ct`, the tie-breakers, live) only for the matches that can
make the page, not once per match; and the order stays BM25, then newest
first, then the larger key, when the page's cut falls inside a tie group."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from runtime.search.text import parse_search
from runtime.store.sqlite_search import SqliteSearch

IX = "messages/search_body/body,channel"


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:")
    yield c
    c.close()


@pytest.fixture
def engine(conn: sqlite3.Connection) -> SqliteSearch:
    # 70 documents that all match "hello" once; 7 lengths, so BM25 puts them in 7
    # tie groups of 10 (the shortest, d0, d7, ..., d63, best), creation time = i.
    search = SqliteSearch(conn)
    for i in range(70):
        search.write(IX, f"d{i:02}", "hello world " + "x " * (i % 7), ["general"], float(i))
    conn.commit()
    return search


def content_reads(conn: sqlite3.Connection, run: object) -> int:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        assert callable(run)
        run()
    finally:
        conn.set_trace_callback(None)
    return sum("_content" in statement for statement in seen)


def test_reads_content_only_for_the_cut_tie_group(
    conn: sqlite3.Connection, engine: SqliteSearch
) -> None:
    got: list[str] = []

    def run() -> None:
        got.extend(c.doc_id for c in engine.candidates(IX, parse_search("hello"), {}, 3))

    # The best tie group holds the page; its 10 rows are read, not all 70 matches.
    assert content_reads(conn, run) <= 10
    assert got == ["d63", "d56", "d49"]


def test_reads_content_only_for_the_cut_tie_group_with_a_filter(
    conn: sqlite3.Connection, engine: SqliteSearch
) -> None:
    got: list[str] = []

    def run() -> None:
        got.extend(c.doc_id for c in engine.candidates(IX, parse_search("hel"), {0: "general"}, 12))

    # The cut (12th best) falls in the second tie group: 20 rows are read.
    assert content_reads(conn, run) <= 20
    newest_first = [f"d{i:02}" for i in range(63, -1, -7)]
    second = [f"d{i:02}" for i in range(64, 0, -7)]
    assert got == newest_first + second[:2]


def test_fewer_matches_than_the_limit_are_all_returned(engine: SqliteSearch) -> None:
    ranked = engine.candidates(IX, parse_search("hello"), {}, 100)
    assert len(ranked) == 70
    assert [c.doc_id for c in ranked[:10]] == [f"d{i:02}" for i in range(63, -1, -7)]
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranked[-1].doc_id == "d06"  # the longest, oldest
