"""The one tokenizer and the search-expression parser.

Both engines index what `tokenize` returns and search for what `parse_search`
returns, so "which documents match" never depends on an engine's own text
analysis. As in Convex, matching ignores case and punctuation: text is NFKC
normalized and case-folded (Unicode-aware: "STRASSE" and "straße" both become
"strasse"), and a word is a maximal run of letters, digits and combining marks
(Unicode categories L, N, M); everything else separates words.

A filter value (any Convex value, `UNDEFINED` for a missing field) becomes a
token by hashing its order-preserving key encoding (`runtime.values.keys`),
which is canonical: equal values in the Convex sense (1 != 1.0, -0.0 != 0.0)
give equal tokens, and the token is short and engine-safe (lower-case hex).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from runtime.limits import SEARCH_FILTERS, SEARCH_TERMS, check_limit
from runtime.values.keys import encode_key
from runtime.values.model import Value

__all__ = ["SearchTerms", "check_filter_count", "filter_token", "parse_search", "tokenize"]


@lru_cache(maxsize=4096)
def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"


def tokenize(text: str) -> list[str]:
    """The words of `text`, normalized, in order (duplicates kept: BM25 counts them)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words: list[str] = []
    start = -1
    for i, ch in enumerate(folded):
        if ch.isalnum() or _is_word_char(ch):
            if start < 0:
                start = i
        elif start >= 0:
            words.append(folded[start:i])
            start = -1
    if start >= 0:
        words.append(folded[start:])
    return words


@dataclass(frozen=True)
class SearchTerms:
    """A parsed search: `whole` match whole words; `prefix` (the last word typed)
    also matches any word it starts. No terms (`prefix` None) matches nothing."""

    whole: tuple[str, ...]
    prefix: str | None

    @property
    def empty(self) -> bool:
        return self.prefix is None


def parse_search(text: str) -> SearchTerms:
    """Split a search expression into terms, the last one a prefix.

    Repeated words count once (an OR query gains nothing from them), and a whole
    word equal to the prefix is dropped: the prefix already matches it, and
    keeping both would score that word twice. Raises `LimitExceeded`
    (SEARCH_TERMS) past 16 words.
    """
    words = tokenize(text)
    check_limit(
        "SEARCH_TERMS",
        len(words),
        SEARCH_TERMS,
        "Search for fewer words: a search expression holds at most 16 terms.",
    )
    if not words:
        return SearchTerms((), None)
    prefix = words[-1]
    whole = tuple(dict.fromkeys(w for w in words[:-1] if w != prefix))
    return SearchTerms(whole, prefix)


def check_filter_count(count: int) -> None:
    """Raise `LimitExceeded` (SEARCH_FILTERS) past 8 equality filters in one search."""
    check_limit(
        "SEARCH_FILTERS",
        count,
        SEARCH_FILTERS,
        "Use at most 8 .eq(...) filters in with_search_index and filter the rest "
        "with .filter(...) after the search.",
    )


def filter_token(value: Value) -> str:
    """The canonical token of a filter value: 32 lower-case hex digits.

    `UNDEFINED` (a missing field) has its own token, so `.eq(field, undefined)`
    finds documents without the field. Engines only propose candidates (every
    result is re-read and re-checked), so a hash collision cannot change a result.
    """
    return hashlib.blake2b(encode_key([value]), digest_size=16).hexdigest()
