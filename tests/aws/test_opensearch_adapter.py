"""The OpenSearch adapter against LocalOpenSearch, the harness's OpenSearch-compatible
server (real HTTP on a loopback port, opensearch-py's client).

The `check_*` tests take an `engine` fixture; tests/aws/test_opensearch_live.py
runs the same ones against a real server when OPENSEARCH_URL is set. The
`test_local_*` tests are about LocalOpenSearch itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.emulator.opensearch import LocalOpenSearch
from runtime.limits import SEARCH_PREFIX_SCORED_TERMS
from runtime.search.bm25 import term_frequencies
from runtime.search.opensearch import OpenSearchEngine
from runtime.search.port import SearchEngine, SearchEntry, SearchUnavailable
from runtime.search.text import parse_search, tokenize
from runtime.values import UNDEFINED

KEY = "messages/search_body/body,channel,n"

# (id, body, channel, creation time): the conformance suite's corpus.
CORPUS = [
    ("d1", "hello world peace", "general", 1.0),
    ("d2", "hello hello hello", "general", 2.0),
    ("d3", "hello big wide world out there", "random", 3.0),
    ("d4", "hello hello world", "random", 4.0),
    ("d5", "helicopter tour", "general", 5.0),
    ("d6", "goodbye world", None, 6.0),
]


def entry(
    doc: str,
    text: str | None,
    version: int,
    *,
    channel: Any = UNDEFINED,
    ct: float = 1.0,
    n: Any = UNDEFINED,
) -> SearchEntry:
    return SearchEntry(KEY, doc, text, (channel, n), ct, version)


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalOpenSearch]:
    # No refresh timer: a write is searchable only if the adapter asks for a
    # refresh, so forgetting to would fail here rather than by luck of timing.
    with LocalOpenSearch(refresh_interval=None) as server:
        yield server


@pytest.fixture
def engine(local_server: LocalOpenSearch) -> Iterator[OpenSearchEngine]:
    # A prefix per test: each test starts from no indexes on the shared server.
    eng = OpenSearchEngine(local_server.url, prefix=f"t{uuid.uuid4().hex[:12]}", sigv4=False)
    yield eng
    eng.drop_index(KEY)


def load_corpus(engine: OpenSearchEngine) -> None:
    engine.create_index(KEY)
    engine.apply(
        [
            entry(doc, body, 10, channel=UNDEFINED if channel is None else channel, ct=ct)
            for doc, body, channel, ct in CORPUS
        ]
    )


def ids(
    engine: OpenSearchEngine, text: str, filters: dict[int, Any] | None = None, limit: int = 50
) -> list[str]:
    return [c.doc_id for c in engine.candidates(KEY, parse_search(text), filters or {}, limit)]


# --- checks (also run against a real server: test_opensearch_live.py) -----------


def test_check_the_adapter_is_a_stream_fed_search_engine(engine: OpenSearchEngine) -> None:
    assert isinstance(engine, SearchEngine)
    assert engine.transactional is False


def test_check_create_and_drop_are_idempotent(engine: OpenSearchEngine) -> None:
    engine.create_index(KEY)
    engine.create_index(KEY)
    assert ids(engine, "hello") == []
    engine.drop_index(KEY)
    engine.drop_index(KEY)
    with pytest.raises(SearchUnavailable, match="index_not_found"):
        ids(engine, "hello")
    engine.create_index(KEY)
    assert ids(engine, "hello") == []


def test_check_relevance_order(engine: OpenSearchEngine) -> None:
    load_corpus(engine)
    # term frequency, then shorter documents first
    assert ids(engine, "hello") == ["d2", "d4", "d1", "d3"]


def test_check_prefix_only_on_the_last_term(engine: OpenSearchEngine) -> None:
    load_corpus(engine)
    assert set(ids(engine, "hel")) == {"d1", "d2", "d3", "d4", "d5"}
    assert ids(engine, "hel tou") == ["d5"]  # "hel" not last: a whole word no document has
    assert ids(engine, "goodbye wor")[0] == "d6"
    assert ids(engine, "goodby") == ["d6"]
    assert "d6" not in ids(engine, "goodby peace")


def test_check_filters_including_a_missing_field(engine: OpenSearchEngine) -> None:
    load_corpus(engine)
    assert ids(engine, "hello", {0: "general"}) == ["d2", "d1"]
    assert ids(engine, "world", {0: UNDEFINED}) == ["d6"]
    assert ids(engine, "world", {0: "nope"}) == []
    engine.apply([entry("d7", "hello numbers", 11, channel="general", n=1.0, ct=7.0)])
    engine.apply([entry("d8", "hello numbers", 11, channel="random", n=1.0, ct=8.0)])
    assert ids(engine, "numbers", {0: "general", 1: 1.0}) == ["d7"]
    assert ids(engine, "numbers", {1: 1.0}) == ["d8", "d7"]
    assert ids(engine, "numbers", {1: 1}) == []  # 1 (an int64) is not 1.0, as in Convex


def test_check_ties_rank_newest_first_then_by_id_and_limit(engine: OpenSearchEngine) -> None:
    engine.create_index(KEY)
    engine.apply([entry(f"s{i}", "same words", 10, ct=float(i % 3)) for i in range(6)])
    # ct 2: s5, s2; ct 1: s4, s1; ct 0: s3, s0 (ties on ct: the larger id first)
    assert ids(engine, "same") == ["s5", "s2", "s4", "s1", "s3", "s0"]
    assert ids(engine, "same", limit=3) == ["s5", "s2", "s4"]
    assert ids(engine, "same", limit=0) == []
    assert ids(engine, "", limit=3) == []


def test_check_reindex_delete_and_versions(engine: OpenSearchEngine) -> None:
    engine.create_index(KEY)
    engine.apply([entry("a", "apple pie", 10)])
    assert ids(engine, "apple") == ["a"]
    engine.apply([entry("a", "banana split", 20)])  # re-index: the new words only
    assert ids(engine, "apple") == []
    assert ids(engine, "banana") == ["a"]
    engine.apply([entry("a", "apple pie", 15)])  # older, delivered late: ignored
    assert ids(engine, "apple") == []
    engine.apply([entry("a", "banana split", 20)])  # repeated delivery: harmless
    assert ids(engine, "banana") == ["a"]
    engine.apply([entry("a", None, 30)])  # delete
    assert ids(engine, "banana") == []
    engine.apply(
        [entry("a", "banana split", 20), entry("a", "cherry", 25)]
    )  # older than the delete
    assert ids(engine, "banana") == [] and ids(engine, "cherry") == []
    engine.apply([entry("a", None, 30), entry("b", None, 5)])  # repeated delete, absent doc
    engine.apply([entry("a", "cherry", 40)])  # newer than the delete: back
    assert ids(engine, "cherry") == ["a"]


def test_check_words_beyond_ascii_match_as_our_tokenizer_says(engine: OpenSearchEngine) -> None:
    engine.create_index(KEY)
    engine.apply(
        [
            entry("u1", "Große STRASSE, Ünïcödé! 東京", 10, channel="κανάλι"),
            entry("u2", "strassenbahn", 10, ct=2.0),
        ]
    )
    assert ids(engine, "grosse") == ["u1"]  # NFKC + casefold: ß is ss
    assert ids(engine, "straße") == ["u2", "u1"]  # a prefix of both; the shorter first
    assert ids(engine, "ünïcödé 東京", {0: "κανάλι"}) == ["u1"]
    assert ids(engine, "strasse grosse") == ["u1"]  # "strasse" whole, "grosse" prefix


def test_check_entries_of_a_missing_index_are_skipped_not_created(engine: OpenSearchEngine) -> None:
    engine.apply([entry("a", "apple", 10)])
    with pytest.raises(SearchUnavailable, match="index_not_found"):
        ids(engine, "apple")
    engine.create_index(KEY)
    assert ids(engine, "apple") == []


def test_check_stats_and_own_write_scores_match_the_engine(engine: OpenSearchEngine) -> None:
    load_corpus(engine)
    terms = parse_search("world hello")  # whole "world", prefix "hello" (one word)
    stats = engine.stats(KEY, terms)
    assert stats.documents == 6
    assert stats.average_length == pytest.approx(19 / 6)
    assert dict(stats.document_frequency) == {"world": 4, "hello": 4}
    assert engine.stats(KEY, parse_search("goodbye hel")).document_frequency == {
        "goodbye": 1,
        "hel": 5,
    }
    # a document without words holds no term: not in BM25's document count
    engine.apply([entry("empty", "?!", 10)])
    assert engine.stats(KEY, terms) == stats
    texts = {doc: body for doc, body, _, _ in CORPUS}
    found = engine.candidates(KEY, terms, {}, 10)
    assert {c.doc_id for c in found} == {"d1", "d2", "d3", "d4", "d6"}
    for c in found:
        words = tokenize(texts[c.doc_id])
        own = engine.score(term_frequencies(words, terms), len(words), stats)
        assert own == pytest.approx(c.score, rel=1e-5), c.doc_id


def test_check_a_short_prefix_finds_every_match_and_scores_its_first_expansions(
    engine: OpenSearchEngine,
) -> None:
    engine.create_index(KEY)
    count = SEARCH_PREFIX_SCORED_TERMS + 6
    engine.apply([entry(f"w{i:03d}", f"w{i:03d}", 10, ct=float(i)) for i in range(count)])
    found = engine.candidates(KEY, parse_search("w"), {}, 1000)
    assert len(found) == count  # every expansion matches
    scored = [c for c in found if c.score > 0]
    assert len(scored) == SEARCH_PREFIX_SCORED_TERMS
    assert found[: len(scored)] == scored  # scored first; the rest (score 0) after


def test_check_large_batches_go_in_several_bulk_requests(engine: OpenSearchEngine) -> None:
    engine.create_index(KEY)
    engine.apply([entry(f"b{i}", "bulk entry", 10, ct=float(i)) for i in range(1203)])
    assert engine.stats(KEY, parse_search("bulk")).documents == 1203
    assert ids(engine, "bulk", limit=2) == ["b1202", "b1201"]


# --- the local server and the client's failure paths ------------------------------


def test_local_unreachable_server_is_search_unavailable_naming_it() -> None:
    server = LocalOpenSearch().start()
    url = server.url
    server.stop()
    eng = OpenSearchEngine(url, sigv4=False, timeout=2.0)
    with pytest.raises(SearchUnavailable, match=f"OpenSearch at {url}:?.* is unreachable"):
        eng.candidates(KEY, parse_search("x"), {}, 5)
    with pytest.raises(SearchUnavailable, match="unreachable"):
        eng.apply([entry("a", "x", 1)])


def _request(
    server: LocalOpenSearch, method: str, path: str, body: str
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        server.url + path,
        data=body.encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_local_rejects_request_shapes_it_does_not_serve(local_server: LocalOpenSearch) -> None:
    status, body = _request(
        local_server,
        "PUT",
        "/shape-check",
        json.dumps({"mappings": {"properties": {"t": {"type": "text", "analyzer": "whitespace"}}}}),
    )
    assert status == 200 and body["acknowledged"] is True
    status, body = _request(local_server, "PUT", "/shape-check", "{}")
    assert status == 400 and body["error"]["type"] == "resource_already_exists_exception"
    status, body = _request(
        local_server, "POST", "/shape-check/_search", json.dumps({"query": {"match": {"t": "x"}}})
    )
    assert status == 400 and body["error"]["type"] == "parsing_exception"
    assert "unknown query [match]" in body["error"]["reason"]
    status, body = _request(
        local_server,
        "POST",
        "/shape-check/_search",
        json.dumps({"query": {"match_all": {}}, "from": 5}),
    )
    assert status == 400 and "unknown field [from]" in body["error"]["reason"]
    status, body = _request(
        local_server,
        "POST",
        "/shape-check/_search",
        json.dumps({"query": {"prefix": {"t": {"value": "x", "rewrite": "top_terms_boost_5"}}}}),
    )
    assert status == 400 and "rewrite" in body["error"]["reason"]
    line = json.dumps(
        {"index": {"_index": "shape-check", "_id": "1", "version": 1, "version_type": "external"}}
    )
    status, body = _request(local_server, "POST", "/_bulk", line + "\n" + json.dumps({"t": "x"}))
    assert status == 400 and "terminated by a newline" in body["error"]["reason"]
    status, body = _request(
        local_server,
        "POST",
        "/_bulk",
        json.dumps({"update": {"_index": "shape-check", "_id": "1"}}) + "\n{}\n",
    )
    assert status == 400 and "update" in body["error"]["reason"]
    status, body = _request(local_server, "GET", "/_cat/indices", "")
    assert status == 400 and "does not serve" in body["error"]["reason"]
    status, body = _request(local_server, "DELETE", "/shape-check", "")
    assert status == 200
    status, body = _request(local_server, "DELETE", "/shape-check", "")
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"


def test_local_strict_mapping_refuses_unknown_fields_as_an_item_error(
    local_server: LocalOpenSearch,
) -> None:
    eng = OpenSearchEngine(local_server.url, prefix="strict", sigv4=False)
    eng.create_index(KEY)
    try:
        bad = SearchEntry(KEY, "x", "text", tuple(range(17)), 1.0, 1)  # f16 is not mapped
        with pytest.raises(SearchUnavailable, match="strict_dynamic_mapping_exception"):
            eng.apply([bad])
    finally:
        eng.drop_index(KEY)


def test_local_sigv4_signs_with_the_default_credentials(
    local_server: LocalOpenSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    eng = OpenSearchEngine(local_server.url, prefix="signed")
    eng.create_index(KEY)
    try:
        eng.apply([entry("a", "signed request", 1)])
        assert ids(eng, "signed") == ["a"]
    finally:
        eng.drop_index(KEY)


def test_local_sigv4_without_credentials_says_what_to_set(
    local_server: LocalOpenSearch, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(SearchUnavailable, match="No AWS credentials"):
        OpenSearchEngine(local_server.url)


def test_local_a_bad_prefix_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        OpenSearchEngine("http://127.0.0.1:1", prefix="Bad", sigv4=False)


def test_local_writes_are_searchable_after_a_refresh_only(local_server: LocalOpenSearch) -> None:
    status, _ = _request(
        local_server,
        "PUT",
        "/refresh-check",
        json.dumps({"mappings": {"properties": {"t": {"type": "text", "analyzer": "whitespace"}}}}),
    )
    assert status == 200
    try:
        meta = {"_index": "refresh-check", "_id": "1", "version": 1, "version_type": "external"}
        bulk = json.dumps({"index": meta}) + "\n" + json.dumps({"t": "fresh"}) + "\n"
        status, body = _request(local_server, "POST", "/_bulk", bulk)
        assert status == 200 and body["errors"] is False
        search = json.dumps({"query": {"term": {"t": {"value": "fresh"}}}})
        _, body = _request(local_server, "POST", "/refresh-check/_search", search)
        assert body["hits"]["total"]["value"] == 0  # not refreshed yet
        # versions are checked against the latest write, refreshed or not
        _, body = _request(local_server, "POST", "/_bulk", bulk)
        assert body["items"][0]["index"]["status"] == 409
        assert _request(local_server, "POST", "/refresh-check/_refresh", "")[0] == 200
        _, body = _request(local_server, "POST", "/refresh-check/_search", search)
        assert body["hits"]["total"]["value"] == 1
    finally:
        _request(local_server, "DELETE", "/refresh-check", "")
