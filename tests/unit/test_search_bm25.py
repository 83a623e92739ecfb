"""BM25 against values worked out by hand (k1 = 1.2, b = 0.75)."""

from __future__ import annotations

import pytest

from runtime.search.bm25 import CorpusStats, idf, score, term_frequencies
from runtime.search.text import SearchTerms

# 4 documents of 5 words on average; "cat" is in 1 of them, "dog" in 2, "the" in 3.
STATS = CorpusStats(4, 5.0, {"cat": 1, "dog": 2, "the": 3})
IDF_CAT = 0.8472978603872037  # ln((4 - 1 + 0.5) / (1 + 0.5)) = ln(7/3)


def test_idf() -> None:
    assert idf(4, 1) == pytest.approx(IDF_CAT, rel=1e-12)
    assert idf(4, 2) == 1e-6  # ln(2.5 / 2.5) = 0: floored
    assert idf(4, 3) == 1e-6  # ln(1.5 / 3.5) < 0: floored, never negative
    assert idf(1000, 0) == pytest.approx(7.6014023345837, rel=1e-12)  # ln(1000.5 / 0.5) = ln(2001)


def test_score_of_an_average_length_document() -> None:
    # |D| = avgdl: norm = 1.2 * (0.25 + 0.75) = 1.2; tf = 1: 1 * 2.2 / 2.2 = 1.
    assert score({"cat": 1}, 5, STATS) == pytest.approx(IDF_CAT, rel=1e-12)


def test_score_grows_with_tf_and_falls_with_length() -> None:
    # |D| = 10: norm = 1.2 * (0.25 + 0.75 * 2) = 2.1; tf = 2: 2 * 2.2 / 4.1 = 1.0731707...
    assert score({"cat": 2}, 10, STATS) == pytest.approx(0.9092952648057796, rel=1e-12)
    # |D| = 10, tf = 1: 2.2 / 3.1 = 0.709677...
    assert score({"cat": 1}, 10, STATS) == pytest.approx(IDF_CAT * 2.2 / 3.1, rel=1e-12)
    assert score({"cat": 1}, 10, STATS) < score({"cat": 1}, 5, STATS) < score({"cat": 2}, 5, STATS)


def test_score_sums_terms_and_ignores_absent_ones() -> None:
    # "dog": idf floored to 1e-6, tf = 1 at |D| = 5: contributes 1e-6.
    assert score({"cat": 1, "dog": 1}, 5, STATS) == pytest.approx(IDF_CAT + 1e-6, rel=1e-12)
    assert score({"cat": 0}, 5, STATS) == 0.0
    assert score({"bird": 1}, 5, STATS) == pytest.approx(idf(4, 0), rel=1e-12)  # unknown: n = 0
    assert score({"cat": 1}, 5, CorpusStats(0, 0.0, {})) == 0.0  # empty index


def test_term_frequencies_count_the_prefix_over_every_word_it_starts() -> None:
    words = ["hello", "help", "world", "hello", "shell"]
    assert term_frequencies(words, SearchTerms(("world",), "hel")) == {"world": 1, "hel": 3}
    # A whole term counts whole words only.
    assert term_frequencies(words, SearchTerms(("hel",), "wor")) == {"wor": 1}
    assert term_frequencies(words, SearchTerms((), None)) == {}
