"""BM25 scoring, the same formula the embedded engine (SQLite FTS5's `bm25()`) uses.

A search inside a mutation merges the engine's candidates with the mutation's
own, not yet indexed writes; those are scored here with the engine's corpus
statistics (`CorpusStats`) and the engine's formula, so an own write ranks as the
engine would rank it (only the statistics move a little once it is indexed). For a document D and the query's terms q (the prefix term counts as one
term whose frequency is that of every word it starts):

    score(D) = sum over q of idf(q) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |D| / avgdl))
    idf(q)   = ln((N - n(q) + 0.5) / (n(q) + 0.5)), at least 1e-6

with k1 = 1.2, b = 0.75, N the documents in the index, n(q) those containing q,
|D| the words of D and avgdl their mean. The floor on idf is FTS5's: a word in
more than half the documents still counts a little, never negatively.
Higher scores rank first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .text import SearchTerms

__all__ = ["K1", "B", "CorpusStats", "idf", "score", "term_frequencies"]

K1 = 1.2
B = 0.75
_IDF_FLOOR = 1e-6


@dataclass(frozen=True)
class CorpusStats:
    """An index's statistics: `documents` (N), `average_length` (avgdl, in
    words) and `document_frequency` (n(q) per term, the prefix term by its
    prefix)."""

    documents: int
    average_length: float
    document_frequency: Mapping[str, int]


def idf(documents: int, containing: int) -> float:
    """The inverse document frequency of a term in `containing` of `documents`."""
    value = math.log((documents - containing + 0.5) / (containing + 0.5))
    return value if value > _IDF_FLOOR else _IDF_FLOOR


def term_frequencies(words: Sequence[str], terms: SearchTerms) -> dict[str, int]:
    """How often each query term occurs in a document's words (the prefix term:
    every word it starts). Terms that do not occur are left out."""
    counts: dict[str, int] = {}
    wanted = set(terms.whole)
    for word in words:
        if word in wanted:
            counts[word] = counts.get(word, 0) + 1
    if terms.prefix is not None:
        hits = sum(1 for word in words if word.startswith(terms.prefix))
        if hits:
            counts[terms.prefix] = counts.get(terms.prefix, 0) + hits
    return counts


def score(frequencies: Mapping[str, int], length: int, stats: CorpusStats) -> float:
    """The BM25 score of a document of `length` words with these term frequencies."""
    if stats.documents <= 0 or stats.average_length <= 0:
        return 0.0
    norm = K1 * (1 - B + B * length / stats.average_length)
    total = 0.0
    for term, tf in frequencies.items():
        if tf <= 0:
            continue
        n = stats.document_frequency.get(term, 0)
        total += idf(stats.documents, n) * tf * (K1 + 1) / (tf + norm)
    return total
