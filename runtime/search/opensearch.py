"""The OpenSearch search engine: one OpenSearch index per search index, fed from
the change stream (`transactional` False).

Entries carry the commit timestamp as an external version, so OpenSearch keeps
the newest entry of each document whatever order the stream delivers them in:
an older or repeated entry is refused with a version conflict, which is the
expected outcome and no error. The engine only proposes candidates; the core
re-reads and re-checks each one (runtime/search/port.py).

Requests are built in `opensearch_bodies` (tested against OpenSearch's
documented JSON); scores follow Lucene's BM25 (`lucene`). Every failure to
reach or use the server is raised as `SearchUnavailable` naming the endpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opensearchpy import OpenSearch, RequestsHttpConnection
from opensearchpy.exceptions import (
    ConnectionError as OSConnectionError,
)
from opensearchpy.exceptions import (
    NotFoundError,
    RequestError,
    TransportError,
)

from runtime.limits import OPENSEARCH_BULK_ENTRIES, SEARCH_RESULTS, check_limit
from runtime.values.model import Value

from . import opensearch_bodies as bodies
from .bm25 import CorpusStats
from .lucene import lucene_score
from .port import Candidate, SearchEntry, SearchUnavailable
from .text import SearchTerms, check_filter_count

__all__ = ["OpenSearchEngine", "parse_endpoint"]

T = TypeVar("T")


def parse_endpoint(endpoint: str) -> tuple[str, int, bool]:
    """(host, port, TLS) of "https://host[:port]", "http://host[:port]" or "host"
    (HTTPS on 443, as an Amazon OpenSearch Service domain endpoint)."""
    text = endpoint.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"OpenSearch endpoint {endpoint!r} is not a URL or host name: use "
            "'https://search-domain.region.es.amazonaws.com' or 'http://127.0.0.1:9200'."
        )
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


class OpenSearchEngine:
    """`runtime.search.port.SearchEngine` on an OpenSearch server.

    `endpoint`: the server ("https://host", "host" or "http://host:port");
    `prefix`: the first part of every index name (several deployments can share
    a domain); `region`: the AWS region for SigV4 (None: boto3's default);
    `sigv4`: sign requests with boto3's default credentials (Amazon OpenSearch
    Service), or send them unsigned (a local or self-run server, OPENSEARCH_URL);
    `timeout`: seconds per request.
    """

    transactional = False

    def __init__(
        self,
        endpoint: str,
        *,
        prefix: str = "pyconvex",
        region: str | None = None,
        sigv4: bool = True,
        timeout: float = 10.0,
    ) -> None:
        host, port, tls = parse_endpoint(endpoint)
        self.endpoint = f"{'https' if tls else 'http'}://{host}:{port}"
        self.prefix = prefix
        bodies.index_name(prefix, "check")  # a bad prefix fails here, not on first use
        auth: Any = None
        if sigv4:
            auth = _sigv4_auth(region)
        self._client = OpenSearch(
            hosts=[{"host": host, "port": port}],
            http_auth=auth,
            use_ssl=tls,
            verify_certs=tls,
            connection_class=RequestsHttpConnection,
            timeout=timeout,
            max_retries=2,
            retry_on_timeout=False,
        )

    # --- plumbing --------------------------------------------------------------

    def index_name(self, index_key: str) -> str:
        """The OpenSearch index holding `index_key`'s entries."""
        return bodies.index_name(self.prefix, index_key)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except OSConnectionError as exc:
            raise SearchUnavailable(
                f"OpenSearch at {self.endpoint} is unreachable ({what}): {exc}. Check that the "
                "domain endpoint is right, that this function can reach it (VPC, security "
                "groups) and, on AWS, that its role may call es:ESHttp*."
            ) from exc
        except TransportError as exc:
            raise SearchUnavailable(
                f"OpenSearch at {self.endpoint} refused {what}: HTTP {exc.status_code} "
                f"{exc.error}: {_reason(exc.info)}. Check the domain's health and access policy."
            ) from exc

    # --- indexes ---------------------------------------------------------------

    def create_index(self, index_key: str) -> None:
        """Create the index with its mapping; one that exists already is fine."""
        name = self.index_name(index_key)

        def create() -> None:
            try:
                self._client.indices.create(index=name, body=bodies.index_body())
            except RequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise

        self._call(f"creating index {name}", create)

    def drop_index(self, index_key: str) -> None:
        """Delete the index; one that does not exist is fine."""
        name = self.index_name(index_key)

        def drop() -> None:
            with contextlib.suppress(NotFoundError):
                self._client.indices.delete(index=name)

        self._call(f"deleting index {name}", drop)

    # --- documents -------------------------------------------------------------

    def apply(self, entries: Sequence[SearchEntry]) -> None:
        """Index or delete each entry, one `_bulk` request per 500 entries.

        Refresh: `refresh=true`, so the entries are searchable when this
        returns. The stream Lambda invalidates live queries right after
        `apply`, and their re-run must find the new entries; `wait_for` would
        hold each batch up to the refresh interval (1 s) for no gain here, as
        one bulk request per stream batch makes at most one refresh per batch.
        A version conflict (409: a newer entry is there) or deleting an absent
        document (404) is the expected outcome of a late or repeated delivery.

        Entries of an index that does not exist are skipped (one HEAD per index
        and batch): OpenSearch would otherwise create it on the fly with a
        dynamic mapping, and a late record of a dropped index would leave an
        index that a later `create_index` takes for its own. Its entries are not
        lost: building an index reads the stored documents.
        """
        for start in range(0, len(entries), OPENSEARCH_BULK_ENTRIES):
            chunk = entries[start : start + OPENSEARCH_BULK_ENTRIES]
            names = {e.index_key: self.index_name(e.index_key) for e in chunk}
            present = {key: self._exists(name) for key, name in names.items()}
            chunk = [e for e in chunk if present[e.index_key]]
            if not chunk:
                continue
            response = self._bulk(bodies.bulk_body(chunk, names), len(chunk))
            failures = bulk_failures(response)
            if failures:
                raise SearchUnavailable(
                    f"OpenSearch at {self.endpoint} failed {len(failures)} of {len(chunk)} search "
                    f"entries: {'; '.join(failures[:5])}. The stream will deliver them again; "
                    "check the index exists (schema push) and its mapping."
                )

    def _bulk(self, body: str, count: int) -> dict[str, Any]:
        def send() -> dict[str, Any]:
            result: dict[str, Any] = self._client.bulk(body=body, params={"refresh": "true"})
            return result

        return self._call(f"a bulk request of {count} entries", send)

    def _exists(self, name: str) -> bool:
        return bool(
            self._call(f"checking index {name}", lambda: self._client.indices.exists(index=name))
        )

    # --- queries ---------------------------------------------------------------

    def candidates(
        self, index_key: str, terms: SearchTerms, filters: Mapping[int, Value], limit: int
    ) -> list[Candidate]:
        """At most `limit` documents matching any term and every filter, best
        first, then newest first (see `opensearch_bodies.search_body`)."""
        check_filter_count(len(filters))
        check_limit(
            "SEARCH_RESULTS", limit, SEARCH_RESULTS, "Ask for at most 1,024 search results at once."
        )
        if terms.empty or limit <= 0:
            return []
        name = self.index_name(index_key)
        body = bodies.search_body(terms, filters, limit)
        response = self._call(
            f"a search of index {name}", lambda: self._client.search(index=name, body=body)
        )
        out: list[Candidate] = []
        for hit in response["hits"]["hits"]:
            score = hit.get("_score")
            out.append(
                Candidate(
                    str(hit["_id"]),
                    float(score if score is not None else hit["sort"][0]),
                    float(hit["sort"][1]),
                )
            )
        return out

    def stats(self, index_key: str, terms: SearchTerms) -> CorpusStats:
        """Documents, average length and each term's document count, in one `_msearch`."""
        name = self.index_name(index_key)
        body, keys = bodies.stats_body(name, terms)
        response = self._call(
            f"the statistics of index {name}", lambda: self._client.msearch(body=body)
        )
        results = response["responses"]
        for r in results:
            if "error" in r:
                raise SearchUnavailable(
                    f"OpenSearch at {self.endpoint} failed the statistics of index {name}: "
                    f"{_reason(r)}. Check the index exists (schema push)."
                )
        documents = _total(results[0])
        words = float(results[0]["aggregations"]["words"]["value"] or 0.0)
        frequency = {key: _total(r) for key, r in zip(keys, results[1:], strict=True)}
        return CorpusStats(documents, words / documents if documents else 0.0, frequency)

    def score(self, frequencies: Mapping[str, int], length: int, stats: CorpusStats) -> float:
        """Lucene's BM25, OpenSearch's own formula (runtime/search/lucene.py)."""
        return lucene_score(frequencies, length, stats)


def bulk_failures(response: Mapping[str, Any]) -> list[str]:
    """The items of a `_bulk` response that failed for a reason other than a
    newer version being there (409) or deleting an absent document (404)."""
    if not response.get("errors"):
        return []
    failures: list[str] = []
    for item in response.get("items", []):
        for action, result in item.items():
            status = int(result.get("status", 0))
            if status < 300 or status == 409 or (action == "delete" and status == 404):
                continue
            failures.append(f"{action} {result.get('_id')}: HTTP {status} {_reason(result)}")
    return failures


def _total(result: Mapping[str, Any]) -> int:
    total = result["hits"]["total"]
    return int(total["value"] if isinstance(total, Mapping) else total)


def _reason(info: Any) -> str:
    if isinstance(info, Mapping):
        error = info.get("error", info)
        if isinstance(error, Mapping):
            return f"{error.get('type', '')}: {error.get('reason', '')}".strip(": ")
        return str(error)
    return str(info)


def _sigv4_auth(region: str | None) -> Any:
    """SigV4 signing with boto3's default credentials (the Lambda's role)."""
    import boto3
    from opensearchpy import AWSV4SignerAuth

    session = boto3.Session(region_name=region)
    credentials = session.get_credentials()
    if credentials is None:
        raise SearchUnavailable(
            "No AWS credentials to sign OpenSearch requests: run with a role or set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass sigv4=False for an unsigned server."
        )
    resolved = region or session.region_name
    if not resolved:
        raise SearchUnavailable(
            "No AWS region to sign OpenSearch requests: set AWS_REGION or pass region=."
        )
    return AWSV4SignerAuth(credentials, resolved, "es")
