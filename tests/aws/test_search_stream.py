"""The stream Lambda feeds OpenSearch: DynamoDB Local's real stream records,
delivered to the real handler as the event source mapping delivers them,
index, re-index and remove documents in the local OpenSearch-compatible
server through the OpenSearch adapter, with the commit timestamp as the
version, so re-delivered and out-of-order records are harmless. The schema
push (deploy's `push_schema`) created the index there first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.aws.deploy import push_schema
from runtime.aws.search import engine_for, search_prefix
from runtime.aws.settings import Settings
from runtime.emulator.opensearch import LocalOpenSearch
from runtime.search.opensearch import OpenSearchEngine
from runtime.search.text import parse_search
from runtime.store.dynamodb import create_table
from tests.aws.events import LambdaContext, stream_event
from tests.support.aws import dynamodb_local_client, fake_aws_env, stream_records

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "integration" / "apps" / "search"
INDEX = "messages/search_body/body,channel"

pytestmark = pytest.mark.dynamodb_local


class Fed:
    """A table with the search app's schema pushed, its OpenSearch server, and
    the stream handler's environment."""

    def __init__(self, endpoint: str, table: str, server: LocalOpenSearch) -> None:
        self.client = dynamodb_local_client(endpoint)
        self.streams = dynamodb_local_client(endpoint, "dynamodbstreams")
        self.table = table
        self.server = server
        self.arn = self.client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._seen: set[str] = {r["dynamodb"]["SequenceNumber"] for r in self.records()}

    def records(self) -> list[dict[str, Any]]:
        return stream_records(self.client, self.streams, self.table)

    def new_records(self) -> list[dict[str, Any]]:
        """Document writes' records not returned before, in stream order."""
        out = [
            r
            for r in self.records()
            if r["dynamodb"]["SequenceNumber"] not in self._seen
            and "f" in (r["dynamodb"].get("NewImage") or r["dynamodb"].get("OldImage") or {})
        ]
        self._seen |= {r["dynamodb"]["SequenceNumber"] for r in out}
        return out

    def mutation(self, fn: Any) -> Any:
        from runtime.aws.backend import lambda_backend

        return lambda_backend()[0].database.mutation(fn).value

    def deliver(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        from runtime.aws.stream import handler

        answer: dict[str, Any] = handler(stream_event(records, self.arn), LambdaContext())
        return answer

    def found(self, text: str, channel: str | None = None) -> list[str]:
        """The ids OpenSearch proposes for a search (what the engine holds)."""
        engine = OpenSearchEngine(self.server.url, prefix=search_prefix(self.table), sigv4=False)
        filters: dict[int, Any] = {} if channel is None else {0: channel}
        return [c.doc_id for c in engine.candidates(INDEX, parse_search(text), filters, 10)]


def _fed(endpoint: str, lambdas_search: bool) -> Iterator[Fed]:
    """`lambdas_search` False: the schema was pushed with an engine, and the
    Lambdas have none (a stack whose endpoint was removed afterwards)."""
    import runtime.aws.http as http_module
    from runtime.aws import backend as lambda_backend

    table = f"se{uuid.uuid4().hex[:12]}"
    client = dynamodb_local_client(endpoint)
    create_table(client, table)
    server = LocalOpenSearch(refresh_interval=None).start()
    env = {
        "PYCONVEX_TABLE": table,
        "PYCONVEX_FUNCTIONS": str(APP),
        "PYCONVEX_PROD": "0",
        "PYCONVEX_WS_ENDPOINT": "http://127.0.0.1:9",  # no subscribers here: never posted to
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",  # DynamoDB Local keeps tables per key
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_METRICS_NAMESPACE": "pyconvex-tests",
        "OPENSEARCH_ENDPOINT": server.url if lambdas_search else "",
        "OPENSEARCH_SIGV4": "false",
    }
    try:
        with fake_aws_env(**env):
            search = engine_for(server.url, table, sigv4=False)
            streams = dynamodb_local_client(endpoint, "dynamodbstreams")
            push_schema(table, APP, client=client, streams_client=streams, search=search)
            lambda_backend.reset()
            yield Fed(endpoint, table, server)
            http_module.reset()
            lambda_backend.reset()
    finally:
        server.stop()
        client.delete_table(TableName=table)


@pytest.fixture
def fed(dynamodb_local_endpoint: str) -> Iterator[Fed]:
    yield from _fed(dynamodb_local_endpoint, lambdas_search=True)


def send(fed: Fed, body: str, channel: str = "py") -> str:
    doc_id: str = fed.mutation(lambda tx: tx.insert("messages", {"body": body, "channel": channel}))
    return doc_id


def test_the_settings_name_the_engine() -> None:
    settings = Settings.from_env(
        {"PYCONVEX_TABLE": "t", "OPENSEARCH_ENDPOINT": " ", "OPENSEARCH_SIGV4": "false"}
    )
    assert (settings.opensearch_endpoint, settings.opensearch_sigv4) == (None, False)
    assert settings.search_prefix == "t"
    settings = Settings.from_env(
        {
            "PYCONVEX_TABLE": "t",
            "OPENSEARCH_ENDPOINT": "https://search-x.us-east-1.es.amazonaws.com",
            "PYCONVEX_SEARCH_PREFIX": "My-Stack",
        }
    )
    assert settings.opensearch_endpoint == "https://search-x.us-east-1.es.amazonaws.com"
    assert settings.opensearch_sigv4 is True
    assert search_prefix(settings.search_prefix) == "my-stack"
    assert search_prefix("_Odd Name!") == "odd-name-"
    assert engine_for("", "t") is None


def test_every_lambda_store_has_the_engine(fed: Fed) -> None:
    from runtime.aws.backend import lambda_backend

    engine = lambda_backend()[0].store.search  # type: ignore[attr-defined]
    assert isinstance(engine, OpenSearchEngine)
    assert engine.endpoint == fed.server.url
    assert engine.prefix == search_prefix(fed.table)


def test_inserts_patches_and_deletes_reach_opensearch(fed: Fed) -> None:
    first = send(fed, "hello world")
    other = send(fed, "hello there", channel="elsewhere")
    assert fed.found("hello") == []  # nothing delivered yet: the store wrote no entries
    assert fed.deliver(fed.new_records()) == {"batchItemFailures": []}
    assert sorted(fed.found("hello")) == sorted([first, other])
    assert fed.found("hello", "py") == [first]

    fed.mutation(lambda tx: tx.patch(first, {"body": "goodbye moon"}))
    fed.mutation(lambda tx: tx.patch(other, {"channel": "py"}))  # a filter field
    assert fed.deliver(fed.new_records()) == {"batchItemFailures": []}
    assert fed.found("hello") == [other]
    assert fed.found("hello", "py") == [other]
    assert fed.found("goodbye") == [first]

    fed.mutation(lambda tx: tx.delete(first))
    assert fed.deliver(fed.new_records()) == {"batchItemFailures": []}
    assert fed.found("goodbye") == []
    assert fed.found("hello") == [other]


def test_a_redelivered_batch_and_an_older_record_change_nothing(fed: Fed) -> None:
    doc = send(fed, "hello world")
    inserted = fed.new_records()
    fed.mutation(lambda tx: tx.patch(doc, {"body": "goodbye moon"}))
    patched = fed.new_records()
    assert fed.deliver(inserted + patched) == {"batchItemFailures": []}
    assert (fed.found("hello"), fed.found("goodbye")) == ([], [doc])
    # Lambda re-delivers the batch (a later record failed, a timeout): harmless.
    assert fed.deliver(inserted + patched) == {"batchItemFailures": []}
    assert (fed.found("hello"), fed.found("goodbye")) == ([], [doc])
    # The insert's record alone, after the patch's (out of order): older, refused.
    assert fed.deliver(inserted) == {"batchItemFailures": []}
    assert (fed.found("hello"), fed.found("goodbye")) == ([], [doc])
    # A delete, then the insert's record again: the document stays gone.
    fed.mutation(lambda tx: tx.delete(doc))
    assert fed.deliver(fed.new_records()) == {"batchItemFailures": []}
    assert fed.deliver(inserted + patched) == {"batchItemFailures": []}
    assert fed.found("goodbye") == [] and fed.found("hello") == []


def test_a_search_query_finds_what_the_stream_fed(fed: Fed) -> None:
    """The core's search on DynamoDB proposes from OpenSearch only: a document
    is found once its record is delivered (and re-read from the table)."""
    from runtime.aws.backend import lambda_backend

    send(fed, "an otter swims")

    def search(tx: Any) -> list[str]:
        q = tx.query("messages").with_search_index("search_body", lambda q: q.search("body", "ott"))
        return [m["body"] for m in q.take(10)]

    database = lambda_backend()[0].database
    assert database.query(search).value == []
    fed.deliver(fed.new_records())
    assert database.query(search).value == ["an otter swims"]


def test_an_unreachable_engine_fails_the_batch_from_its_first_search_record(fed: Fed) -> None:
    send(fed, "hello one")
    send(fed, "hello two")
    records = fed.new_records()
    fed.server.stop()
    answer = fed.deliver(records)
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    }


def test_without_an_engine_search_records_are_skipped_and_logged_once(
    dynamodb_local_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    import runtime.aws.stream as stream_module

    stream_module._warned_no_engine = False
    for bare in _fed(dynamodb_local_endpoint, lambdas_search=False):
        from runtime.aws.backend import lambda_backend

        assert lambda_backend()[0].store.search is None  # type: ignore[attr-defined]
        send(bare, "hello world")
        send(bare, "hello again")
        records = bare.new_records()
        caplog.clear()
        assert bare.deliver(records[:1]) == {"batchItemFailures": []}
        assert bare.deliver(records[1:]) == {"batchItemFailures": []}
        warned = [
            r.getMessage() for r in caplog.records if "no OpenSearch engine" in r.getMessage()
        ]
        assert len(warned) == 1
        assert "OpenSearchEndpoint" in warned[0]
        assert bare.found("hello") == []


def test_a_search_logs_no_opensearch_requests_into_the_functions_lines(fed: Fed) -> None:
    """opensearch-py logs each request at INFO: the platform's, not the app's,
    so a caller's logLines never hold them (the harness logs at INFO)."""
    import logging

    from runtime.aws.backend import lambda_backend
    from runtime.functions import logs

    send(fed, "an otter swims")
    fed.deliver(fed.new_records())
    database = lambda_backend()[0].database
    client_log = logging.getLogger("opensearch")
    level = client_log.level
    client_log.setLevel(logging.INFO)
    try:
        with logs.capture(logs.LogLines()) as lines:
            found = database.query(
                lambda tx: (
                    tx.query("messages")
                    .with_search_index("search_body", lambda q: q.search("body", "otter"))
                    .take(10)
                )
            ).value
    finally:
        client_log.setLevel(level)
    assert [m["body"] for m in found] == ["an otter swims"]
    assert lines.lines == []
