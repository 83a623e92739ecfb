"""The JSON the OpenSearch adapter sends, built by pure functions (no client).

Kept apart from the client so every request shape is unit-tested against
OpenSearch's documented JSON (tests/unit/test_opensearch_bodies.py), and so the
local OpenSearch-compatible server (`runtime/emulator/opensearch.py`) can be
checked against the same shapes.

Document layout, one OpenSearch index per search index:
- `text`: the document's words as `runtime.search.text.tokenize` found them,
  joined by spaces, under the built-in `whitespace` analyzer: OpenSearch's
  terms are exactly our words (no stemming, no lowercasing of its own), so
  matching never depends on OpenSearch's text analysis;
- `f0`..`f15`: keyword fields holding `filter_token(value)` of each filter field;
- `ct` (double): creation time, `doc` (keyword): the document id (sort
  tie-breakers, newest first, as the embedded engine); `words` (integer): the
  word count, summed for the average length in `stats`.

Prefix scoring: Lucene scores a `prefix` query as a constant (its default
rewrite, `constant_score`), which would rank every prefix-only match equally,
unlike the embedded engine's BM25 on the prefix. `scoring_boolean` scores each
expansion by BM25 but fails (`too_many_clauses`) once a short prefix expands to
more than 1,024 words. So the last term is two `should` clauses: a `prefix`
with `top_terms_N` (N = SEARCH_PREFIX_SCORED_TERMS: BM25 on the first N words
it expands to, in term order) and a `prefix` with `constant_score` and boost 0,
which adds nothing to the score but keeps every document matching the prefix a
candidate (a document whose only match lies past the N scored words ranks
after the scored ones, newest first, and is still found).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.limits import SEARCH_FILTER_FIELDS, SEARCH_PREFIX_SCORED_TERMS
from runtime.search.port import SearchEntry
from runtime.search.text import SearchTerms, filter_token, tokenize
from runtime.values.model import Value

__all__ = [
    "GC_DELETES",
    "TEXT",
    "bulk_body",
    "filter_field",
    "index_body",
    "index_name",
    "search_body",
    "stats_body",
]

TEXT = "text"
"""The analysed field holding the document's words."""

GC_DELETES = "24h"
"""How long OpenSearch keeps a deleted document's version (`index.gc_deletes`,
60 s by default): an older `index` delivered within it is refused as a version
conflict instead of bringing the document back. 24 h is DynamoDB Streams'
retention, the longest a record can be redelivered."""

_SLUG_MAX = 120
_ILLEGAL = re.compile(r"[^a-z0-9_]+")
_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def filter_field(position: int) -> str:
    """The keyword field of the filter field at `position` in the index's order."""
    return f"f{position}"


def index_name(prefix: str, index_key: str) -> str:
    """The OpenSearch index of a search index: `<prefix>-<slug>-<hash>`.

    OpenSearch index names are lower case, exclude `\\ / * ? " < > | space , #`,
    may not start with `_ - +` and hold at most 255 bytes: the slug keeps only
    `[a-z0-9_]` runs of the lower-cased key (joined by `-`, at most 120
    characters), and the hash of the exact key keeps two keys that slug alike
    apart."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            f"OpenSearch index prefix {prefix!r} is not usable: use lower-case letters, digits,"
            " '_' and '-', starting with a letter or digit."
        )
    slug = _ILLEGAL.sub("-", index_key.lower()).strip("-")[:_SLUG_MAX].strip("-")
    digest = hashlib.sha1(index_key.encode("utf-8")).hexdigest()[:12]
    return f"{prefix}-{slug}-{digest}" if slug else f"{prefix}-{digest}"


def index_body() -> dict[str, Any]:
    """The create-index body: one shard (BM25's statistics are per shard, so one
    shard makes a document's score independent of where it lands, and equal to
    what `lucene_score` computes from `stats`), tombstones kept for GC_DELETES,
    and the strict mapping of the module docstring."""
    properties: dict[str, Any] = {
        TEXT: {"type": "text", "analyzer": "whitespace", "similarity": "BM25"},
        "ct": {"type": "double"},
        "doc": {"type": "keyword"},
        "words": {"type": "integer"},
    }
    for i in range(SEARCH_FILTER_FIELDS):
        properties[filter_field(i)] = {"type": "keyword"}
    return {
        "settings": {
            "index": {"number_of_shards": 1, "gc_deletes": GC_DELETES},
        },
        "mappings": {"dynamic": "strict", "properties": properties},
    }


def source(entry: SearchEntry) -> dict[str, Any]:
    """The stored document of an entry with text (`text` not None)."""
    assert entry.text is not None
    words = tokenize(entry.text)
    doc: dict[str, Any] = {
        TEXT: " ".join(words),
        "ct": entry.creation_time,
        "doc": entry.doc_id,
        "words": len(words),
    }
    for i, value in enumerate(entry.filters):
        doc[filter_field(i)] = filter_token(value)
    return doc


def _line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


def bulk_body(entries: Sequence[SearchEntry], names: Mapping[str, str]) -> str:
    """The NDJSON `_bulk` body: per entry an `index` (action line, then the
    source line) or a `delete` (action line only), each with the entry's version
    as an external version, so OpenSearch keeps the highest version it has seen
    and refuses an older or repeated one with a 409. `names`: index_key -> index
    name. Ends with a newline, as the bulk API requires."""
    lines: list[str] = []
    for entry in entries:
        meta = {
            "_index": names[entry.index_key],
            "_id": entry.doc_id,
            "version": entry.version,
            "version_type": "external",
        }
        if entry.text is None:
            lines.append(_line({"delete": meta}))
        else:
            lines.append(_line({"index": meta}))
            lines.append(_line(source(entry)))
    return "".join(lines)


def _term_clauses(terms: SearchTerms) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{"term": {TEXT: {"value": w}}} for w in terms.whole]
    if terms.prefix is not None:
        clauses.append(
            {
                "prefix": {
                    TEXT: {
                        "value": terms.prefix,
                        "rewrite": f"top_terms_{SEARCH_PREFIX_SCORED_TERMS}",
                    }
                }
            }
        )
        clauses.append(
            {"prefix": {TEXT: {"value": terms.prefix, "rewrite": "constant_score", "boost": 0.0}}}
        )
    return clauses


def search_body(terms: SearchTerms, filters: Mapping[int, Value], limit: int) -> dict[str, Any]:
    """The `_search` body for `candidates`: any term matches (`should`, at least
    one), every filter matches (`filter`, unscored), best score first, then
    newest (`ct`), then `doc`, both descending as on the embedded engine.
    `track_scores` keeps `_score` in the hits although the search is sorted."""
    query: dict[str, Any] = {"bool": {"should": _term_clauses(terms), "minimum_should_match": 1}}
    if filters:
        query["bool"]["filter"] = [
            {"term": {filter_field(i): {"value": filter_token(value)}}}
            for i, value in sorted(filters.items())
        ]
    return {
        "size": limit,
        "query": query,
        "sort": [
            {"_score": {"order": "desc"}},
            {"ct": {"order": "desc"}},
            {"doc": {"order": "desc"}},
        ],
        "track_scores": True,
        "_source": False,
    }


def stats_body(index: str, terms: SearchTerms) -> tuple[str, list[str]]:
    """The NDJSON `_msearch` body for `stats` and the term of each search after
    the first: the first counts the documents with at least one word (Lucene's
    document count for the text field, BM25's N: a document whose text has no
    word holds no term) and sums their `words`; one more per whole term (a
    `term` count) and one for the prefix (a `prefix` count)."""
    searches: list[dict[str, Any]] = [
        {
            "size": 0,
            "track_total_hits": True,
            "query": {"range": {"words": {"gte": 1}}},
            "aggs": {"words": {"sum": {"field": "words"}}},
        }
    ]
    keys: list[str] = []
    for w in terms.whole:
        searches.append(
            {"size": 0, "track_total_hits": True, "query": {"term": {TEXT: {"value": w}}}}
        )
        keys.append(w)
    if terms.prefix is not None:
        searches.append(
            {
                "size": 0,
                "track_total_hits": True,
                "query": {"prefix": {TEXT: {"value": terms.prefix}}},
            }
        )
        keys.append(terms.prefix)
    body = "".join(_line({"index": index}) + _line(s) for s in searches)
    return body, keys
