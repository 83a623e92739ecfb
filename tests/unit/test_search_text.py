"""The one tokenizer, the search-expression parser, filter tokens and their limits."""

from __future__ import annotations

import re

import pytest

from runtime.limits import SEARCH_FILTERS, SEARCH_TERMS, LimitExceeded
from runtime.search.text import (
    SearchTerms,
    check_filter_count,
    filter_token,
    parse_search,
    tokenize,
)
from runtime.values.model import UNDEFINED


def test_tokenize_ignores_case_and_punctuation() -> None:
    assert tokenize("Hello, WORLD! it's 2024-12-04...") == [
        "hello",
        "world",
        "it",
        "s",
        "2024",
        "12",
        "04",
    ]
    assert tokenize("snake_case/path.to#tag") == ["snake", "case", "path", "to", "tag"]
    assert tokenize("  ,;: ") == []
    assert tokenize("hello hello") == ["hello", "hello"]  # BM25 counts repeats


def test_tokenize_is_unicode_aware() -> None:
    assert tokenize("ÉCOLE Straße ΣΟΦΙΑ") == ["école", "strasse", "σοφια"]
    assert tokenize("STRASSE") == tokenize("straße")
    # A decomposed accent is composed (NFKC) and stays inside its word.
    assert tokenize("cafe\u0301 ﬁne") == ["café", "fine"]
    # Combining marks (virama, vowel signs) are part of a word, not separators.
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]
    assert tokenize("東京タワー🗼ok") == ["東京タワー", "ok"]


def test_parse_marks_the_last_term_as_prefix() -> None:
    assert parse_search("Hello wor") == SearchTerms(("hello",), "wor")
    assert parse_search("hi") == SearchTerms((), "hi")
    assert parse_search("a b a c") == SearchTerms(("a", "b"), "c")
    # A whole word equal to the prefix would score twice: the prefix covers it.
    assert parse_search("hi there hi") == SearchTerms(("there",), "hi")


def test_parse_of_no_words_matches_nothing() -> None:
    assert parse_search("  !?  ").empty
    assert not parse_search("x").empty


def test_terms_limit_names_the_limit() -> None:
    assert (
        len(parse_search(" ".join(f"w{i}" for i in range(SEARCH_TERMS))).whole) == SEARCH_TERMS - 1
    )
    with pytest.raises(LimitExceeded, match="SEARCH_TERMS limit exceeded: 17 > 16") as err:
        parse_search(" ".join(f"w{i}" for i in range(SEARCH_TERMS + 1)))
    assert err.value.code == "LIMIT_EXCEEDED"
    # Repeats count: the limit is on the expression the user wrote.
    with pytest.raises(LimitExceeded):
        parse_search("x " * 17)


def test_filters_limit_names_the_limit() -> None:
    check_filter_count(SEARCH_FILTERS)
    with pytest.raises(LimitExceeded, match="SEARCH_FILTERS limit exceeded: 9 > 8"):
        check_filter_count(SEARCH_FILTERS + 1)


def test_filter_tokens_are_canonical() -> None:
    assert re.fullmatch("[0-9a-f]{32}", filter_token("general"))
    assert filter_token("general") == filter_token("general")
    assert filter_token({"a": 1, "b": [True, None]}) == filter_token({"b": [True, None], "a": 1})
    assert filter_token(float("nan")) == filter_token(-float("nan"))
    distinct = [
        UNDEFINED,
        None,
        0,
        0.0,
        -0.0,
        1,
        1.0,
        False,
        "",
        "1",
        b"",
        b"1",
        [],
        {},
        [1],
        {"a": 1},
    ]
    assert len({filter_token(v) for v in distinct}) == len(distinct)
