"""The embedded search engine (FTS5) on a fixed corpus: relevance order, prefix on
the last term only, filters (a missing field too), ties newest first, limits,
updates and removals, the caller's transaction, and scores equal to bm25.py's."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from runtime.limits import SEARCH_RESULTS, LimitExceeded
from runtime.search.bm25 import score, term_frequencies
from runtime.search.text import parse_search, tokenize
from runtime.store.sqlite_search import SqliteSearch, candidates_sql
from runtime.values.model import UNDEFINED

IX = "messages.search_body"  # filter fields: 0 = channel, 1 = author
CORPUS = {
    "d1": ("Hello world", ["general", "ann"], 1.0),
    "d2": ("hello there, hello again!", ["general", "bob"], 2.0),
    "d3": ("World peace", ["random", "ann"], 3.0),
    "d4": ("Helicopter world tour", ["general", "bob"], 4.0),
    "d5": ("The quick brown fox", [UNDEFINED, "ann"], 5.0),
    "d6": ("hello, WORLD", ["random", "bob"], 6.0),
    "d7": ("Straße de la paix", ["general", 7], 7.0),
}


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:")
    yield c
    c.close()


@pytest.fixture
def engine(conn: sqlite3.Connection) -> SqliteSearch:
    search = SqliteSearch(conn)
    for key, (text, filters, ct) in CORPUS.items():
        search.write(IX, key, text, filters, ct)
    conn.commit()
    return search


def keys(
    engine: SqliteSearch, text: str, filters: dict[int, object] | None = None, limit: int = 100
) -> list[bytes]:
    return [c.doc_id for c in engine.candidates(IX, parse_search(text), filters or {}, limit)]


def test_relevance_order(engine: SqliteSearch) -> None:
    # 7 documents, avgdl = 21 / 7 = 3 words. "hello" is in 3: idf = ln(4.5 / 3.5).
    # d2 (tf 2 in 4 words): 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 4 / 3)) = 1.2571 -> 0.3159;
    # d1, d6 (tf 1 in 2 words): 2.2 / (1 + 0.9) = 1.1579 -> 0.2910, d6 newer.
    ranked = engine.candidates(IX, parse_search("hello"), {}, 100)
    assert [c.doc_id for c in ranked] == ["d2", "d6", "d1"]
    assert [round(c.score, 4) for c in ranked] == [0.3159, 0.2910, 0.2910]
    # A rare term outweighs a common one: "there" (1 document) puts d2 first,
    # "world" (4 of 7: idf floored to 1e-6) orders the rest by length, then newest.
    assert keys(engine, "there world") == ["d2", "d6", "d3", "d1", "d4"]
    assert keys(engine, "peace world") == ["d3", "d6", "d1", "d4"]
    assert keys(engine, "hello world") == ["d2", "d6", "d1", "d3", "d4"]
    assert keys(engine, "quick fox") == ["d5"]


def test_prefix_on_the_last_term_only(engine: SqliteSearch) -> None:
    # "hel" last: a prefix (hello x3, helicopter); "wor" not last: whole word only.
    assert set(keys(engine, "wor hel")) == {"d1", "d2", "d4", "d6"}
    # "hel" not last: no whole word "hel"; "world" last: its documents only.
    assert set(keys(engine, "hel world")) == {"d1", "d3", "d4", "d6"}
    assert keys(engine, "heli") == ["d4"]
    assert keys(engine, "xyz") == []
    assert keys(engine, "  ?! ") == []  # no terms: nothing


def test_case_punctuation_and_unicode(engine: SqliteSearch) -> None:
    assert keys(engine, "HELLO,") == keys(engine, "hello")
    assert keys(engine, "strasse") == ["d7"]
    assert keys(engine, "STRAß") == ["d7"]  # casefolds to "strass", a prefix of "strasse"
    assert keys(engine, "paix de") == ["d7"]


def test_equality_filters(engine: SqliteSearch) -> None:
    assert keys(engine, "hello world", {0: "general"}) == ["d2", "d1", "d4"]
    assert keys(engine, "hello world", {0: "general", 1: "bob"}) == ["d2", "d4"]
    assert keys(engine, "hello world", {1: "ann"}) == ["d1", "d3"]
    assert keys(engine, "hello world", {0: "nowhere"}) == []
    # The filter values are Convex values: 7 (int64) is not "7" nor 7.0.
    assert keys(engine, "paix", {1: 7}) == ["d7"]
    assert keys(engine, "paix", {1: "7"}) == []
    assert keys(engine, "paix", {1: 7.0}) == []


def test_filter_on_a_missing_field(engine: SqliteSearch) -> None:
    assert keys(engine, "the quick", {0: UNDEFINED}) == ["d5"]
    assert keys(engine, "the quick", {0: None}) == []  # null is not missing
    assert keys(engine, "hello", {0: UNDEFINED}) == []


def test_ties_newest_first(engine: SqliteSearch) -> None:
    # d1 and d6 have the same words: the same score, d6 is newer.
    ranked = engine.candidates(IX, parse_search("hello world"), {}, 100)
    d1, d6 = (next(c for c in ranked if c.doc_id == k) for k in ("d1", "d6"))
    assert d1.score == d6.score
    order = [c.doc_id for c in ranked]
    assert order.index("d6") == order.index("d1") - 1


def test_limit(engine: SqliteSearch) -> None:
    everything = keys(engine, "hello world")
    assert len(everything) == 5
    assert keys(engine, "hello world", limit=2) == everything[:2]
    assert keys(engine, "hello world", limit=0) == []
    assert len(keys(engine, "hello world", limit=SEARCH_RESULTS)) == 5
    with pytest.raises(LimitExceeded, match="SEARCH_RESULTS"):
        keys(engine, "hello world", limit=SEARCH_RESULTS + 1)
    with pytest.raises(LimitExceeded, match="SEARCH_FILTERS"):
        keys(engine, "hello", {i: "x" for i in range(9)})


def test_scores_equal_bm25_py_with_the_engines_stats(engine: SqliteSearch) -> None:
    for text in (
        "hello",
        "hello world",
        "wor hel",
        "peace world",
        "the quick brown fox",
        "paix strass",
    ):
        terms = parse_search(text)
        stats = engine.stats(IX, terms)
        found = engine.candidates(IX, terms, {}, 100)
        assert found
        for candidate in found:
            words = tokenize(CORPUS[candidate.doc_id][0])
            expected = score(term_frequencies(words, terms), len(words), stats)
            assert candidate.score == pytest.approx(expected, rel=1e-9, abs=1e-12), (
                text,
                candidate,
            )


def test_stats(engine: SqliteSearch) -> None:
    stats = engine.stats(IX, parse_search("hello world hel"))
    assert stats.documents == 7
    assert stats.average_length == pytest.approx(
        sum(len(tokenize(t)) for t, _, _ in CORPUS.values()) / 7
    )
    assert dict(stats.document_frequency) == {"hello": 3, "world": 4, "hel": 4}
    empty = engine.stats("other.index", parse_search("hello"))
    assert (empty.documents, empty.average_length) == (0, 0.0)


def test_update_and_remove(engine: SqliteSearch) -> None:
    engine.write(IX, "d1", "goodbye world", ["random", "ann"], 1.0)
    assert "d1" not in keys(engine, "hello")
    assert "d1" not in keys(engine, "world", {0: "general"})  # its old filter value is gone
    assert "d1" in keys(engine, "world", {0: "random"})
    engine.remove(IX, "d2")
    engine.write(IX, "d6", None, [], 6.0)  # text None removes too
    assert keys(engine, "hello") == []
    engine.remove(IX, "missing")  # nothing to remove: no error
    stats = engine.stats(IX, parse_search("hello"))
    assert stats.documents == 5
    assert stats.document_frequency == {"hello": 0}
    # The counters match a rebuild from scratch.
    words = [len(tokenize(t)) for k, (t, _, _) in CORPUS.items() if k not in ("d1", "d2", "d6")] + [
        2
    ]
    assert stats.average_length == pytest.approx(sum(words) / 5)


def test_indexes_are_separate_and_drop(engine: SqliteSearch) -> None:
    engine.write("notes.search_text", "n1", "hello notes", [], 1.0)
    assert [
        c.doc_id for c in engine.candidates("notes.search_text", parse_search("hello"), {}, 10)
    ] == ["n1"]
    assert engine.stats("notes.search_text", parse_search("hello")).documents == 1  # its own corpus
    assert "n1" not in keys(engine, "hello")
    engine.drop_index(IX)
    assert keys(engine, "hello") == []
    assert engine.stats(IX, parse_search("hello")).documents == 0
    engine.drop_index(IX)  # again: no error
    assert [
        c.doc_id for c in engine.candidates("notes.search_text", parse_search("hel"), {}, 10)
    ] == ["n1"]
    engine.write(IX, "d1", "hello again", [], 1.0)  # a dropped index can be built again
    assert keys(engine, "hello") == ["d1"]


def test_writes_belong_to_the_callers_transaction(
    conn: sqlite3.Connection, engine: SqliteSearch
) -> None:
    engine.write(IX, "d8", "hello rollback", ["general", "ann"], 8.0)
    engine.remove(IX, "d2")
    assert "d8" in keys(engine, "rollback")
    conn.rollback()
    assert keys(engine, "rollback") == []
    assert "d2" in keys(engine, "hello")
    assert engine.stats(IX, parse_search("hello")).documents == 7


def test_survives_reopening_the_file(tmp_path: object) -> None:
    path = f"{tmp_path}/db.sqlite3"
    first = sqlite3.connect(path)
    SqliteSearch(first).write(IX, "d1", "hello world", ["general"], 1.0)
    first.commit()
    first.close()
    again = sqlite3.connect(path)
    assert [
        c.doc_id
        for c in SqliteSearch(again).candidates(IX, parse_search("hello"), {0: "general"}, 10)
    ] == ["d1"]
    again.close()


def test_filters_do_not_drive_the_full_text_match(
    conn: sqlite3.Connection, engine: SqliteSearch
) -> None:
    # Were a filter's rows handed to FTS5 as `rowid =` lookups, every row of a common
    # filter value would run the whole MATCH again (seen: 0.5 s at 100,000 documents).
    # The plan's FTS5 step must be the same with filters as without.
    (fts,) = conn.execute("SELECT fts FROM search_indexes WHERE ix = ?", (IX,)).fetchone()

    def fts_step(filter_count: int) -> list[str]:
        params: list[object] = ['"hello"', *[IX, 0, "t"] * filter_count, 9, 10]
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + candidates_sql(fts, filter_count), params
        ).fetchall()
        return [row[3] for row in plan if "VIRTUAL TABLE" in row[3]]

    assert fts_step(2) == fts_step(0)
