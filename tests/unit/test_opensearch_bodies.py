"""The OpenSearch adapter's requests, checked against OpenSearch's documented JSON.

No OpenSearch server can be installed here, so each body is compared with the
shapes the documentation gives:
- create index, mappings and index naming restrictions:
  https://docs.opensearch.org/docs/2.8/api-reference/index-apis/create-index
  (lower case; not starting with `_` or `-`; no spaces, commas, `: " * + / \\ | ? # > <`)
- bulk (NDJSON, action/metadata line then source line, delete without source,
  a newline after the last line): https://docs.opensearch.org/api-reference/document-apis/bulk/
- external versions and the 409 of an older one, `index.gc_deletes`:
  https://docs.opensearch.org/2.5/api-reference/document-apis/index-document and
  https://elastic.co/guide/en/elasticsearch/reference/7.8/docs-delete.html (the API OpenSearch forked)
- bool query (`should`, `filter`, `minimum_should_match`):
  https://docs.opensearch.org/2.16/query-dsl/compound/bool
- term and prefix queries (`value`, `rewrite`, `boost`) and the rewrite methods
  (`constant_score` default, `scoring_boolean`, `top_terms_N`):
  https://docs.opensearch.org/2.12/query-dsl/term/prefix and
  https://docs.opensearch.org/docs/query-dsl/rewrite-parameter
- multi-search (header line, body line, final newline):
  https://raw.githubusercontent.com/opensearch-project/documentation-website/main/_api-reference/search-apis/multi-search.md
"""

from __future__ import annotations

import json
import math
import re

import pytest

from runtime.limits import SEARCH_FILTER_FIELDS, SEARCH_PREFIX_SCORED_TERMS
from runtime.search.bm25 import CorpusStats, term_frequencies
from runtime.search.lucene import lucene_idf, lucene_length, lucene_score
from runtime.search.opensearch import bulk_failures, parse_endpoint
from runtime.search.opensearch_bodies import (
    bulk_body,
    index_body,
    index_name,
    search_body,
    stats_body,
)
from runtime.search.port import SearchEntry
from runtime.search.text import filter_token, parse_search
from runtime.values import UNDEFINED

# The documented restrictions, as one pattern: lower case, none of the listed
# characters, not starting with _ - (or + , which Elasticsearch's rules add).
LEGAL_INDEX = re.compile(r'^[^_\-+][^A-Z \\/*?"<>|,#:+]*$')


@pytest.mark.parametrize(
    "key",
    [
        "messages/search_body/body,channel",
        "Messages/Search Body/BODY,#Channel?",
        "__/--/++",
        "ünïcödé/ïndex/bödy,",
        "x" * 1000 + "/idx/body,",
    ],
)
def test_index_names_follow_the_documented_restrictions(key: str) -> None:
    name = index_name("pyconvex", key)
    assert LEGAL_INDEX.match(name), name
    assert name == name.lower()
    assert len(name.encode("utf-8")) <= 255
    assert name.startswith("pyconvex-")


def test_index_names_keep_keys_that_slug_alike_apart() -> None:
    assert index_name("p", "t/Idx/body,") != index_name("p", "t/idx/body,")
    assert index_name("p", "t/idx/body,") == index_name("p", "t/idx/body,")


@pytest.mark.parametrize("prefix", ["", "Upper", "_x", "-x", "+x", "a b", "a,b", "a/b"])
def test_an_illegal_prefix_is_refused_with_what_to_use(prefix: str) -> None:
    with pytest.raises(ValueError, match="lower-case letters"):
        index_name(prefix, "t/i/b,")


def test_the_mapping_is_strict_whitespace_text_and_keyword_filters() -> None:
    body = index_body()
    assert set(body) == {"settings", "mappings"}
    assert body["settings"]["index"]["number_of_shards"] == 1
    assert body["settings"]["index"]["gc_deletes"] == "24h"
    mappings = body["mappings"]
    assert mappings["dynamic"] == "strict"
    props = mappings["properties"]
    assert props["text"] == {"type": "text", "analyzer": "whitespace", "similarity": "BM25"}
    assert props["ct"] == {"type": "double"}
    assert props["doc"] == {"type": "keyword"}
    assert props["words"] == {"type": "integer"}
    for i in range(SEARCH_FILTER_FIELDS):
        assert props[f"f{i}"] == {"type": "keyword"}
    json.dumps(body)  # plain JSON


def _lines(body: str) -> list[dict[str, object]]:
    assert body.endswith("\n"), "the bulk and msearch APIs need a newline after the last line"
    lines = body[:-1].split("\n")
    return [json.loads(line) for line in lines]


def test_bulk_is_ndjson_index_with_source_and_delete_without() -> None:
    names = {"k": "pyconvex-k-abc"}
    entries = [
        SearchEntry("k", "doc1", "Hello, WORLD! hello", ("general", UNDEFINED), 1.5, 7),
        SearchEntry("k", "doc2", None, ("x",), 2.0, 9),
        SearchEntry("k", "doc3", "multi\nline text", (), 3.0, 11),
    ]
    lines = _lines(bulk_body(entries, names))
    assert len(lines) == 5  # index + source, delete, index + source
    assert lines[0] == {
        "index": {
            "_index": "pyconvex-k-abc",
            "_id": "doc1",
            "version": 7,
            "version_type": "external",
        }
    }
    assert lines[1] == {
        "text": "hello world hello",
        "ct": 1.5,
        "doc": "doc1",
        "words": 3,
        "f0": filter_token("general"),
        "f1": filter_token(UNDEFINED),
    }
    assert lines[2] == {
        "delete": {
            "_index": "pyconvex-k-abc",
            "_id": "doc2",
            "version": 9,
            "version_type": "external",
        }
    }
    assert lines[3]["index"] == {
        "_index": "pyconvex-k-abc",
        "_id": "doc3",
        "version": 11,
        "version_type": "external",
    }
    assert lines[4]["text"] == "multi line text"  # a newline in the text stays inside its line


def test_search_is_a_bool_of_terms_and_the_prefix_with_filters_and_tie_breaks() -> None:
    terms = parse_search("quick brown fo")
    body = search_body(terms, {1: "general", 0: UNDEFINED}, 25)
    assert body["size"] == 25
    assert body["track_scores"] is True
    assert body["_source"] is False
    assert body["sort"] == [
        {"_score": {"order": "desc"}},
        {"ct": {"order": "desc"}},
        {"doc": {"order": "desc"}},
    ]
    bool_query = body["query"]["bool"]
    assert bool_query["minimum_should_match"] == 1
    assert bool_query["should"] == [
        {"term": {"text": {"value": "quick"}}},
        {"term": {"text": {"value": "brown"}}},
        {"prefix": {"text": {"value": "fo", "rewrite": f"top_terms_{SEARCH_PREFIX_SCORED_TERMS}"}}},
        {"prefix": {"text": {"value": "fo", "rewrite": "constant_score", "boost": 0.0}}},
    ]
    assert bool_query["filter"] == [
        {"term": {"f0": {"value": filter_token(UNDEFINED)}}},
        {"term": {"f1": {"value": filter_token("general")}}},
    ]


def test_a_search_without_filters_has_no_filter_clause() -> None:
    body = search_body(parse_search("hel"), {}, 10)
    assert "filter" not in body["query"]["bool"]
    assert SEARCH_PREFIX_SCORED_TERMS <= 1024  # Lucene's clause limit


def test_stats_is_one_msearch_of_header_and_body_pairs() -> None:
    body, keys = stats_body("ix", parse_search("goodbye cruel wor"))
    lines = _lines(body)
    assert keys == ["goodbye", "cruel", "wor"]
    assert len(lines) == 8
    assert all(line == {"index": "ix"} for line in lines[::2])
    searches = lines[1::2]
    assert searches[0] == {
        "size": 0,
        "track_total_hits": True,
        "query": {"range": {"words": {"gte": 1}}},
        "aggs": {"words": {"sum": {"field": "words"}}},
    }
    assert searches[1]["query"] == {"term": {"text": {"value": "goodbye"}}}
    assert searches[2]["query"] == {"term": {"text": {"value": "cruel"}}}
    assert searches[3]["query"] == {"prefix": {"text": {"value": "wor"}}}
    assert all(s["size"] == 0 and s["track_total_hits"] is True for s in searches)


def test_bulk_failures_ignore_newer_versions_and_absent_deletes() -> None:
    response = {
        "errors": True,
        "items": [
            {"index": {"_id": "a", "status": 201}},
            {
                "index": {
                    "_id": "b",
                    "status": 409,
                    "error": {"type": "version_conflict_engine_exception"},
                }
            },
            {"delete": {"_id": "c", "status": 404, "result": "not_found"}},
            {
                "delete": {
                    "_id": "d",
                    "status": 409,
                    "error": {"type": "version_conflict_engine_exception"},
                }
            },
            {
                "index": {
                    "_id": "e",
                    "status": 400,
                    "error": {"type": "strict_dynamic_mapping_exception", "reason": "no [zz]"},
                }
            },
            {"index": {"_id": "f", "status": 404, "error": {"type": "index_not_found_exception"}}},
        ],
    }
    failures = bulk_failures(response)
    assert len(failures) == 2
    assert "index e: HTTP 400 strict_dynamic_mapping_exception: no [zz]" in failures[0]
    assert failures[1].startswith("index f: HTTP 404 index_not_found_exception")
    assert bulk_failures({"errors": False, "items": response["items"]}) == []


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("search-d.us-east-1.es.amazonaws.com", ("search-d.us-east-1.es.amazonaws.com", 443, True)),
        (
            "https://search-d.us-east-1.es.amazonaws.com/",
            ("search-d.us-east-1.es.amazonaws.com", 443, True),
        ),
        ("http://127.0.0.1:9200", ("127.0.0.1", 9200, False)),
        ("http://localhost", ("localhost", 80, False)),
    ],
)
def test_endpoints(endpoint: str, expected: tuple[str, int, bool]) -> None:
    assert parse_endpoint(endpoint) == expected


def test_a_bad_endpoint_says_what_to_use() -> None:
    with pytest.raises(ValueError, match="https://search-domain"):
        parse_endpoint("ftp://x")


def test_lucene_norms_keep_short_lengths_and_round_long_ones_down() -> None:
    assert [lucene_length(n) for n in range(24)] == list(range(24))
    assert lucene_length(24) == 24
    # 4 significant bits past the 24 free values: 24 + 40 = 64 is 0b101000 -> kept
    assert lucene_length(64) == 64
    assert lucene_length(24 + 17) == 24 + 16  # 0b10001 rounds down to 0b10000
    assert all(lucene_length(n) <= n for n in range(1000))
    assert all(lucene_length(n) <= lucene_length(n + 1) for n in range(1000))


def test_lucene_bm25_by_hand() -> None:
    stats = CorpusStats(documents=6, average_length=19 / 6, document_frequency={"hello": 4})
    idf = math.log(1 + (6 - 4 + 0.5) / (4 + 0.5))
    assert lucene_idf(6, 4) == pytest.approx(idf)
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / (19 / 6))
    freqs = term_frequencies(["hello", "hello", "world"], parse_search("hello"))
    assert lucene_score(freqs, 3, stats) == pytest.approx(idf * 2 / (2 + norm))
    # never negative, even for a word in every document (FTS5's floor is not needed)
    assert lucene_idf(6, 6) > 0
    assert lucene_score({}, 3, stats) == 0.0
    assert lucene_score(freqs, 3, CorpusStats(0, 0.0, {})) == 0.0
