"""Lucene's BM25 (OpenSearch's default similarity), for scoring a mutation's own
writes as OpenSearch scores its indexed documents.

Lucene 8 and later (OpenSearch 1.x and 2.x) compute, per matching term:

    idf(q)   = ln(1 + (N - n(q) + 0.5) / (n(q) + 0.5))
    score(q) = idf(q) * tf / (tf + k1 * (1 - b + b * L(|D|) / avgdl))

with k1 = 1.2, b = 0.75, N the documents with the field, n(q) those holding q,
avgdl their mean length, and L the length as Lucene's one-byte norm stores it
(exact below 24 words, then rounded down to 4 significant bits). Unlike FTS5's
formula (`runtime.search.bm25`), idf is never negative and the numerator has no
(k1 + 1) factor (Lucene dropped it: it scales every score alike); the scale
matters here because own writes are merged with OpenSearch's own `_score`s.

The prefix term: OpenSearch scores each word the prefix expands to as its own
term (see `opensearch_bodies`); the frequencies a caller passes count the
prefix as one term (`bm25.term_frequencies`) with the documents holding any of
its words as n(q). That is exact when the prefix matches one word of the
document and its words' document counts coincide, and an estimate otherwise:
only the rank of a mutation's own unindexed writes among the engine's results
depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .bm25 import K1, B, CorpusStats

__all__ = ["lucene_idf", "lucene_length", "lucene_score", "lucene_term_score"]

_FREE = 24  # one-byte norms below this are the length itself


def _int4_encode(i: int) -> int:
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_decode(code: int) -> int:
    bits = code & 0x07
    shift = (code >> 3) - 1
    return bits if shift < 0 else (bits | 0x08) << shift


def lucene_length(length: int) -> int:
    """A document length as Lucene's norm keeps it (lossy past 23 words)."""
    if length < _FREE:
        return length
    return _FREE + _int4_decode(_int4_encode(length - _FREE))


def lucene_idf(documents: int, containing: int) -> float:
    return math.log(1 + (documents - containing + 0.5) / (containing + 0.5))


def lucene_term_score(tf: int, length: int, idf: float, average_length: float) -> float:
    """One term's BM25 contribution for a document of `length` words."""
    norm = K1 * (1 - B + B * lucene_length(length) / average_length)
    return idf * tf / (tf + norm)


def lucene_score(frequencies: Mapping[str, int], length: int, stats: CorpusStats) -> float:
    """The BM25 score OpenSearch gives a document of `length` words with these
    term frequencies (`bm25.term_frequencies`), from `stats`."""
    if stats.documents <= 0 or stats.average_length <= 0:
        return 0.0
    total = 0.0
    for term, tf in frequencies.items():
        if tf <= 0:
            continue
        n = stats.document_frequency.get(term, 0)
        total += lucene_term_score(tf, length, lucene_idf(stats.documents, n), stats.average_length)
    return total
