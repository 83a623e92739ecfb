"""A small OpenSearch-compatible HTTP server for the AWS harness and the tests.

It serves exactly the part of OpenSearch's REST API the OpenSearch adapter
(runtime/search/opensearch.py) uses: create, delete and check an index; `_bulk`
with `index` and `delete` under external versions (a delete leaves a tombstone
holding its version, so an older `index` delivered later is refused with 409,
as OpenSearch does within `index.gc_deletes`); `_search` with `bool`
(`must`/`should`/`filter`/`minimum_should_match`), `term`, `prefix` (rewrites
`constant_score`, `scoring_boolean`, `top_terms_N`), `match_all`, sorting on
`_score` and fields, `track_scores`, `track_total_hits`, a `sum` aggregation,
`range` on a number; `_msearch`; and refreshes: a write is searchable after
`?refresh=true` (or `wait_for`), `_refresh`, or the refresh interval, as on
OpenSearch, so an adapter that forgot to refresh would fail here too. Any other request shape gets a 400 with an OpenSearch-like JSON
error, so the adapter cannot drift onto requests this server would only
pretend to answer.

Storage and scores: documents live in memory, and scores are computed with
Lucene's BM25 (`runtime.search.lucene`, per-term statistics of the index as
one shard holds them), not with FTS5's `bm25()`: the adapter's rankings and its
own-write scores must be OpenSearch's, and FTS5 exposes neither per-term
statistics nor Lucene's formula. Searches scan the index, which suits the
harness's and the tests' corpora, not a benchmark of search speed.
Differences from a real server that tests cannot see here: segments and
deleted-but-unmerged documents (which still count in Lucene's statistics),
float32 scores, the whitespace tokenizer's 255-character token limit.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runtime.search.lucene import lucene_idf, lucene_term_score

__all__ = ["LocalOpenSearch"]


class ApiError(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind
        self.reason = reason

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


def _bad(reason: str, kind: str = "parsing_exception") -> ApiError:
    return ApiError(400, kind, reason)


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise _bad(
            f"[{where}] unknown field [{sorted(unknown)[0]}] (LocalOpenSearch supports {sorted(allowed)})"
        )


@dataclass
class _Doc:
    version: int
    source: dict[str, Any]
    terms: dict[str, dict[str, int]]  # analysed field -> term -> frequency
    lengths: dict[str, int]


@dataclass
class _Index:
    properties: dict[str, Any]
    strict: bool
    docs: dict[str, _Doc] = field(default_factory=dict)
    """The latest document of each id (versions are checked against these)."""
    visible: dict[str, _Doc] = field(default_factory=dict)
    """What searches see: `docs` as of the last refresh."""
    tombstones: dict[str, int] = field(default_factory=dict)

    def text_fields(self) -> set[str]:
        return {k for k, v in self.properties.items() if v.get("type") == "text"}

    def field_stats(self, name: str) -> tuple[int, float]:
        """(documents with the field, their mean length), as Lucene keeps them."""
        lengths = [d.lengths[name] for d in self.visible.values() if d.lengths.get(name, 0) > 0]
        return len(lengths), (sum(lengths) / len(lengths) if lengths else 0.0)

    def doc_freq(self, name: str, term: str) -> int:
        return sum(1 for d in self.visible.values() if term in d.terms.get(name, {}))

    def expansions(self, name: str, prefix: str) -> list[str]:
        words = {
            t for d in self.visible.values() for t in d.terms.get(name, {}) if t.startswith(prefix)
        }
        return sorted(words, key=lambda w: w.encode("utf-8"))


# A compiled query: doc -> score, or None when it does not match.
_Query = Callable[[_Doc], float | None]

_TOP_TERMS = re.compile(r"top_terms_(\d+)")


class _Searcher:
    def __init__(self, index: _Index) -> None:
        self.index = index

    def compile(self, query: dict[str, Any], scoring: bool = True) -> _Query:
        if not isinstance(query, dict) or len(query) != 1:
            raise _bad("a query is an object with exactly one query type")
        ((kind, spec),) = query.items()
        if kind == "match_all":
            _only(spec, {"boost"}, "match_all")
            boost = float(spec.get("boost", 1.0))
            return lambda d: boost
        if kind == "bool":
            return self._bool(spec)
        if kind == "term":
            return self._term(spec, scoring)
        if kind == "prefix":
            return self._prefix(spec, scoring)
        if kind == "range":
            return self._range(spec)
        raise _bad(
            f"unknown query [{kind}] (LocalOpenSearch supports bool, term, prefix, match_all)"
        )

    def _field_spec(
        self, spec: dict[str, Any], allowed: set[str], where: str
    ) -> tuple[str, dict[str, Any]]:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise _bad(f"[{where}] query doesn't support multiple fields")
        ((name, params),) = spec.items()
        if not isinstance(params, dict):
            params = {"value": params}
        _only(params, allowed, where)
        if "value" not in params:
            raise _bad(f"[{where}] query requires a value")
        return name, params

    def _term(self, spec: dict[str, Any], scoring: bool) -> _Query:
        name, params = self._field_spec(spec, {"value", "boost"}, "term")
        value = params["value"]
        boost = float(params.get("boost", 1.0))
        if name in self.index.text_fields():
            term = str(value)
            if not scoring:
                return lambda d: 0.0 if term in d.terms.get(name, {}) else None
            count, avg = self.index.field_stats(name)
            idf = lucene_idf(count, self.index.doc_freq(name, term))

            def text_term(d: _Doc) -> float | None:
                tf = d.terms.get(name, {}).get(term, 0)
                if not tf:
                    return None
                return boost * lucene_term_score(tf, d.lengths[name], idf, avg)

            return text_term
        if scoring:
            raise _bad(f"LocalOpenSearch scores term queries on text fields only, not [{name}]")
        return lambda d: 0.0 if d.source.get(name) == value else None

    def _prefix(self, spec: dict[str, Any], scoring: bool) -> _Query:
        name, params = self._field_spec(spec, {"value", "boost", "rewrite"}, "prefix")
        if name not in self.index.text_fields():
            raise _bad(f"LocalOpenSearch runs prefix queries on text fields only, not [{name}]")
        prefix = str(params["value"])
        boost = float(params.get("boost", 1.0))
        rewrite = params.get("rewrite", "constant_score")
        words = self.index.expansions(name, prefix)
        if rewrite == "constant_score" or not scoring:
            wanted = set(words)
            return lambda d: boost if wanted & d.terms.get(name, {}).keys() else None
        top = _TOP_TERMS.fullmatch(str(rewrite))
        if top:
            words = words[: int(top.group(1))]
        elif rewrite == "scoring_boolean":
            if len(words) > 1024:
                raise _bad("maxClauseCount is set to 1024", "too_many_clauses")
        else:
            raise _bad(f"LocalOpenSearch does not support the rewrite [{rewrite}]")
        count, avg = self.index.field_stats(name)
        idfs = {w: lucene_idf(count, self.index.doc_freq(name, w)) for w in words}

        def scored(d: _Doc) -> float | None:
            freqs = d.terms.get(name, {})
            hits = [w for w in idfs if w in freqs]
            if not hits:
                return None
            return boost * sum(
                lucene_term_score(freqs[w], d.lengths[name], idfs[w], avg) for w in hits
            )

        return scored

    def _range(self, spec: dict[str, Any]) -> _Query:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise _bad("[range] query doesn't support multiple fields")
        ((name, params),) = spec.items()
        _only(params, {"gte", "gt", "lte", "lt"}, "range")
        if self.index.properties.get(name, {}).get("type") not in ("integer", "long", "double"):
            raise _bad(f"LocalOpenSearch runs range queries on numeric fields only, not [{name}]")
        checks = {
            "gte": lambda v, b: v >= b,
            "gt": lambda v, b: v > b,
            "lte": lambda v, b: v <= b,
            "lt": lambda v, b: v < b,
        }

        def run(d: _Doc) -> float | None:
            value = d.source.get(name)
            if value is None:
                return None
            ok = all(checks[op](value, bound) for op, bound in params.items())
            return 1.0 if ok else None

        return run

    def _bool(self, spec: dict[str, Any]) -> _Query:
        _only(spec, {"must", "should", "filter", "minimum_should_match", "boost"}, "bool")

        def clauses(key: str) -> list[dict[str, Any]]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        must = [self.compile(q) for q in clauses("must")]
        should = [self.compile(q) for q in clauses("should")]
        filters = [self.compile(q, scoring=False) for q in clauses("filter")]
        default_msm = 0 if (must or filters) else 1
        msm = int(spec.get("minimum_should_match", default_msm if should else 0))
        boost = float(spec.get("boost", 1.0))

        def run(d: _Doc) -> float | None:
            total = 0.0
            for q in filters:
                if q(d) is None:
                    return None
            for q in must:
                s = q(d)
                if s is None:
                    return None
                total += s
            matched = 0
            for q in should:
                s = q(d)
                if s is not None:
                    matched += 1
                    total += s
            if matched < msm:
                return None
            return boost * total

        return run


class _Engine:
    """The indexes and the REST operations on them (one lock: requests are small)."""

    def __init__(self) -> None:
        self.indexes: dict[str, _Index] = {}
        self.lock = threading.Lock()

    def _get(self, name: str) -> _Index:
        index = self.indexes.get(name)
        if index is None:
            raise ApiError(404, "index_not_found_exception", f"no such index [{name}]")
        return index

    # --- indexes ---------------------------------------------------------------

    def create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, {"settings", "mappings"}, "create index")
        mappings = body.get("mappings", {})
        _only(mappings, {"dynamic", "properties"}, "mappings")
        for prop, spec in mappings.get("properties", {}).items():
            kind = spec.get("type")
            if kind not in ("text", "keyword", "double", "integer", "long"):
                raise _bad(
                    f"no handler for type [{kind}] declared on field [{prop}]",
                    "mapper_parsing_exception",
                )
            if kind == "text" and spec.get("analyzer", "whitespace") != "whitespace":
                raise _bad(f"LocalOpenSearch analyses text with [whitespace] only, not on [{prop}]")
        with self.lock:
            if name in self.indexes:
                raise ApiError(
                    400, "resource_already_exists_exception", f"index [{name}] already exists"
                )
            self.indexes[name] = _Index(
                dict(mappings.get("properties", {})), mappings.get("dynamic") == "strict"
            )
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def delete(self, name: str) -> dict[str, Any]:
        with self.lock:
            self._get(name)
            del self.indexes[name]
        return {"acknowledged": True}

    def exists(self, name: str) -> bool:
        with self.lock:
            return name in self.indexes

    # --- documents -------------------------------------------------------------

    def refresh(self, names: list[str] | None = None) -> None:
        """Make the latest documents searchable (all indexes when `names` is None)."""
        with self.lock:
            for name in self.indexes if names is None else names:
                index = self.indexes.get(name)
                if index is not None:
                    index.visible = dict(index.docs)

    def bulk(self, body: str, default_index: str | None, refresh: bool) -> dict[str, Any]:
        """Apply the actions; searches see them after a refresh (`refresh`: at once,
        as `?refresh=true` or `wait_for`; otherwise on the next `_refresh` or
        the server's refresh interval)."""
        if not body.endswith("\n"):
            raise _bad(
                "The bulk request must be terminated by a newline [\\n]",
                "illegal_argument_exception",
            )
        lines = [line for line in body.split("\n") if line.strip()]
        items: list[dict[str, Any]] = []
        with self.lock:
            i = 0
            while i < len(lines):
                action_line = json.loads(lines[i])
                if not isinstance(action_line, dict) or len(action_line) != 1:
                    raise _bad("Malformed action/metadata line", "illegal_argument_exception")
                ((action, meta),) = action_line.items()
                if action not in ("index", "delete"):
                    raise _bad(
                        f"LocalOpenSearch supports bulk index and delete, not [{action}]",
                        "illegal_argument_exception",
                    )
                _only(meta, {"_index", "_id", "version", "version_type"}, f"bulk {action}")
                source = None
                if action == "index":
                    i += 1
                    if i >= len(lines):
                        raise _bad(
                            "the bulk index action expects a source line",
                            "illegal_argument_exception",
                        )
                    source = json.loads(lines[i])
                i += 1
                items.append({action: self._bulk_item(action, meta, source, default_index)})
        if refresh:
            self.refresh([str(next(iter(it.values()))["_index"]) for it in items])
        errors = any("error" in next(iter(it.values())) for it in items)
        return {"took": 1, "errors": errors, "items": items}

    def _bulk_item(
        self,
        action: str,
        meta: dict[str, Any],
        source: dict[str, Any] | None,
        default_index: str | None,
    ) -> dict[str, Any]:
        name = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        if name is None or doc_id is None:
            raise _bad(
                "LocalOpenSearch needs _index and _id on each bulk action",
                "action_request_validation_exception",
            )
        if meta.get("version_type", "internal") != "external" or "version" not in meta:
            raise _bad(
                "LocalOpenSearch supports external versions only",
                "action_request_validation_exception",
            )
        version = int(meta["version"])
        head: dict[str, Any] = {"_index": name, "_id": doc_id}
        index = self.indexes.get(name)
        if index is None:
            if action == "delete":
                return {**head, "status": 404, "result": "not_found", "_version": version}
            index = self.indexes[name] = _Index({}, False)  # OpenSearch's auto-create
        doc = index.docs.get(doc_id)
        current = doc.version if doc is not None else index.tombstones.get(doc_id)
        if current is not None and version <= current:
            reason = f"[{doc_id}]: version conflict, current version [{current}] is higher or equal to the one provided [{version}]"
            return {
                **head,
                "status": 409,
                "error": {"type": "version_conflict_engine_exception", "reason": reason},
            }
        if action == "delete":
            index.docs.pop(doc_id, None)
            index.tombstones[doc_id] = version
            result = "deleted" if doc is not None else "not_found"
            return {**head, "_version": version, "result": result, "status": 200 if doc else 404}
        assert source is not None
        error = self._check_source(index, source)
        if error is not None:
            return {**head, "status": 400, "error": error}
        terms: dict[str, dict[str, int]] = {}
        lengths: dict[str, int] = {}
        for fname in index.text_fields():
            words = str(source.get(fname, "")).split()
            counts: dict[str, int] = {}
            for w in words:
                counts[w] = counts.get(w, 0) + 1
            terms[fname] = counts
            lengths[fname] = len(words)
        index.tombstones.pop(doc_id, None)
        index.docs[doc_id] = _Doc(version, source, terms, lengths)
        created = doc is None
        return {
            **head,
            "_version": version,
            "result": "created" if created else "updated",
            "status": 201 if created else 200,
        }

    @staticmethod
    def _check_source(index: _Index, source: dict[str, Any]) -> dict[str, Any] | None:
        for key in source:
            if key not in index.properties:
                if index.strict:
                    return {
                        "type": "strict_dynamic_mapping_exception",
                        "reason": f"mapping set to strict, dynamic introduction of [{key}] within [_doc] is not allowed",
                    }
                index.properties[key] = {
                    "type": "text" if isinstance(source[key], str) else "double"
                }
        return None

    # --- searches --------------------------------------------------------------

    def search(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        _only(
            body,
            {"query", "size", "sort", "track_scores", "track_total_hits", "_source", "aggs"},
            "search",
        )
        with self.lock:
            index = self._get(name)
            query = _Searcher(index).compile(body.get("query", {"match_all": {}}))
            scored = [
                (s, d_id, d) for d_id, d in index.visible.items() if (s := query(d)) is not None
            ]
            keys = self._sort_keys(body.get("sort", [{"_score": {"order": "desc"}}]))
            for fname, descending in reversed(keys):
                scored.sort(key=functools.partial(_sort_value, fname=fname), reverse=descending)
            size = int(body.get("size", 10))
            hits = []
            for s, d_id, d in scored[:size]:
                hit: dict[str, Any] = {"_index": name, "_id": d_id}
                hit["_score"] = s if (not body.get("sort") or body.get("track_scores")) else None
                if body.get("sort"):
                    hit["sort"] = [_sort_value((s, d_id, d), f) for f, _ in keys]
                if body.get("_source", True) is not False:
                    hit["_source"] = d.source
                hits.append(hit)
            total = len(scored)
            track = body.get("track_total_hits", 10_000)
            limit = None if track is True else (0 if track is False else int(track))
            response: dict[str, Any] = {
                "took": 1,
                "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {
                    "total": {
                        "value": total if limit is None else min(total, limit),
                        "relation": "eq" if limit is None or total <= limit else "gte",
                    },
                    "max_score": max((s for s, _, _ in scored), default=None),
                    "hits": hits,
                },
            }
            if "aggs" in body:
                response["aggregations"] = self._aggs(body["aggs"], [d for _, _, d in scored])
            return response

    @staticmethod
    def _sort_keys(sort: list[Any]) -> list[tuple[str, bool]]:
        keys: list[tuple[str, bool]] = []
        for item in sort:
            if isinstance(item, str):
                keys.append((item, item == "_score"))
                continue
            ((fname, spec),) = item.items()
            order = spec if isinstance(spec, str) else spec.get("order", "asc")
            if not isinstance(spec, str):
                _only(spec, {"order"}, "sort")
            if order not in ("asc", "desc"):
                raise _bad(f"unknown sort order [{order}]")
            keys.append((fname, order == "desc"))
        return keys

    @staticmethod
    def _aggs(aggs: dict[str, Any], docs: list[_Doc]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for agg_name, spec in aggs.items():
            if list(spec) != ["sum"]:
                raise _bad(f"LocalOpenSearch supports sum aggregations only, not {sorted(spec)}")
            fname = spec["sum"]["field"]
            out[agg_name] = {"value": float(sum(d.source.get(fname, 0) or 0 for d in docs))}
        return out

    def msearch(self, body: str, default_index: str | None) -> dict[str, Any]:
        if not body.endswith("\n"):
            raise _bad(
                "The msearch request must be terminated by a newline [\\n]",
                "illegal_argument_exception",
            )
        lines = [line for line in body.split("\n") if line.strip()]
        if len(lines) % 2:
            raise _bad(
                "an msearch body is header and body lines in pairs", "illegal_argument_exception"
            )
        responses: list[dict[str, Any]] = []
        for header_line, search_line in zip(lines[::2], lines[1::2], strict=True):
            header = json.loads(header_line)
            _only(header, {"index"}, "msearch header")
            name = header.get("index", default_index)
            try:
                if name is None:
                    raise _bad("LocalOpenSearch needs an index per msearch search")
                responses.append({**self.search(name, json.loads(search_line)), "status": 200})
            except ApiError as exc:
                responses.append({**exc.body()})
        return {"took": 1, "responses": responses}


def _sort_value(item: tuple[float, str, _Doc], fname: str) -> Any:
    score, _, doc = item
    if fname == "_score":
        return score
    value = doc.source.get(fname)
    return value if value is not None else ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8") if length else ""

    def _json(self) -> dict[str, Any]:
        text = self._body()
        if not text:
            return {}
        value = json.loads(text)
        if not isinstance(value, dict):
            raise _bad("request body must be an object")
        return value

    def _dispatch(self) -> None:
        engine = self.server.engine
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        method = self.command
        try:
            try:
                if method == "GET" and not parts:
                    self._reply(
                        200, {"version": {"number": "2.11.0", "distribution": "opensearch"}}
                    )
                    return
                if parts and parts[-1] == "_bulk" and len(parts) <= 2 and method in ("POST", "PUT"):
                    refresh = query.get("refresh", ["false"])[0]
                    if refresh not in ("true", "false", "wait_for", ""):
                        raise _bad(
                            f"unknown refresh value [{refresh}]", "illegal_argument_exception"
                        )
                    default = parts[0] if len(parts) == 2 else None
                    now = refresh in ("true", "wait_for", "")
                    self._reply(200, engine.bulk(self._body(), default, now))
                    return
                if (
                    parts
                    and parts[-1] == "_msearch"
                    and len(parts) <= 2
                    and method in ("GET", "POST")
                ):
                    default = parts[0] if len(parts) == 2 else None
                    self._reply(200, engine.msearch(self._body(), default))
                    return
                if parts and parts[-1] == "_refresh" and len(parts) <= 2 and method == "POST":
                    engine.refresh(None if len(parts) == 1 else [parts[0]])
                    self._reply(200, {"_shards": {"total": 1, "successful": 1, "failed": 0}})
                    return
                if len(parts) == 2 and parts[1] == "_search" and method in ("GET", "POST"):
                    self._reply(200, engine.search(parts[0], self._json()))
                    return
                if len(parts) == 1 and not parts[0].startswith("_"):
                    name = parts[0]
                    if method == "PUT":
                        self._reply(200, engine.create(name, self._json()))
                        return
                    if method == "DELETE":
                        self._reply(200, engine.delete(name))
                        return
                    if method == "HEAD":
                        self._reply(200 if engine.exists(name) else 404, None)
                        return
                raise _bad(
                    f"LocalOpenSearch does not serve {method} {url.path}",
                    "illegal_argument_exception",
                )
            except json.JSONDecodeError as exc:
                raise _bad(f"request body is not JSON: {exc}") from exc
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise _bad(f"malformed request: {exc!r}") from exc
        except ApiError as exc:
            self._reply(exc.status, exc.body())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], engine: _Engine) -> None:
        super().__init__(address, _Handler)
        self.engine = engine


class LocalOpenSearch:
    """The server on `host`:`port` (0: a free port); `url` once started.

    `refresh_interval`: seconds between refreshes that make writes sent without
    `?refresh` searchable (OpenSearch's default, 1 s); None: only `_refresh`
    and `?refresh=true` do, which lets a test see that a write is not yet visible.

    Use as a context manager, or `start()` and `stop()`."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, refresh_interval: float | None = 1.0
    ) -> None:
        self._address = (host, port)
        self._refresh_interval = refresh_interval
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalOpenSearch is not started: call start() first")
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalOpenSearch:
        if self._server is None:
            self._server = _Server(self._address, _Engine())
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="local-opensearch", daemon=True
            )
            self._thread.start()
            if self._refresh_interval is not None:
                self._stopping.clear()
                self._refresher = threading.Thread(
                    target=self._refresh_loop,
                    args=(self._server.engine, self._refresh_interval),
                    name="local-opensearch-refresh",
                    daemon=True,
                )
                self._refresher.start()
        return self

    def _refresh_loop(self, engine: _Engine, interval: float) -> None:
        # OpenSearch's index.refresh_interval (1 s by default): writes sent
        # without ?refresh become searchable on the next tick.
        while not self._stopping.wait(interval):
            engine.refresh()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._stopping.set()
            if self._refresher is not None:
                self._refresher.join()
            self._server = None
            self._thread = None
            self._refresher = None

    def __enter__(self) -> LocalOpenSearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
