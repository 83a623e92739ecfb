"""The WebSocket and stream Lambda handlers, fed the events AWS documents
(API Gateway WebSocket routes; DynamoDB Streams records from DynamoDB
Local's real stream), on DynamoDB Local. Their posts go through boto3's
Management API client to the local gateway's `@connections`, and reach a
real WebSocket client connected to it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from runtime.backend import Backend
from runtime.emulator import LambdaFunction, LocalGateway, ServerThread
from runtime.store.dynamodb import DynamoDBStore, create_table
from tests.aws.events import LambdaContext, http_event, stream_event, websocket_event
from tests.support.aws import dynamodb_local_client, fake_aws_env

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "tests" / "integration" / "apps" / "chat"

pytestmark = pytest.mark.dynamodb_local


class Harness:
    def __init__(self, endpoint: str, gateway_url: str, table: str, connected: list[str]) -> None:
        self.endpoint = endpoint
        self.gateway_url = gateway_url
        self.table = table
        self._connected = connected
        self.streams = dynamodb_local_client(endpoint, "dynamodbstreams")
        self.client = dynamodb_local_client(endpoint)
        arn = self.client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.stream_arn = arn
        self._iterators: dict[str, str] = {}
        self.records(drain=True)

    def socket(self) -> tuple[ClientConnection, str]:
        """A real client socket on the gateway, and its connection id."""
        before = len(self._connected)
        ws = connect(self.gateway_url.replace("http", "ws") + "/api/1.0.0/sync", open_timeout=5)
        assert len(self._connected) == before + 1
        return ws, self._connected[-1]

    def records(self, *, drain: bool = False) -> list[dict[str, Any]]:
        """The stream records written since the last call (boto3's shape)."""
        out: list[dict[str, Any]] = []
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in shards["Shards"]:
            sid = shard["ShardId"]
            it = (
                self._iterators.get(sid)
                or self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while it:
                resp = self.streams.get_records(ShardIterator=it, Limit=1000)
                out += resp["Records"]
                it = resp.get("NextShardIterator")
                if not resp["Records"]:
                    break
            if it:
                self._iterators[sid] = it
        return [] if drain else out


@pytest.fixture
def harness(dynamodb_local_endpoint: str) -> Iterator[Harness]:
    import runtime.aws.http as http_module
    from runtime.aws import backend as lambda_backend

    table = f"ws{uuid.uuid4().hex[:12]}"
    client = dynamodb_local_client(dynamodb_local_endpoint)
    create_table(client, table)
    assert Backend(DynamoDBStore(table, client=client), CHAT, admin_key=None).reload().ok
    connected: list[str] = []

    def on_socket(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The gateway's own WebSocket Lambda only notes the connection: the
        # tests below call the real handler themselves, with AWS's events.
        if event["requestContext"]["routeKey"] == "$connect":
            connected.append(event["requestContext"]["connectionId"])
        return {"statusCode": 200}

    gateway = LocalGateway(None, LambdaFunction("noting", on_socket))
    server = ServerThread(gateway)
    url = server.start()
    env = {
        "PYCONVEX_TABLE": table,
        "PYCONVEX_FUNCTIONS": str(CHAT),
        "PYCONVEX_PROD": "0",
        "PYCONVEX_WS_ENDPOINT": url,
        "AWS_ENDPOINT_URL": dynamodb_local_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_METRICS_NAMESPACE": "pyconvex-tests",
    }
    try:
        with fake_aws_env(**env):
            lambda_backend.reset()
            yield Harness(dynamodb_local_endpoint, url, table, connected)
            http_module.reset()
            lambda_backend.reset()
    finally:
        server.stop()
        gateway.close()
        client.delete_table(TableName=table)


def ws_call(route: str, conn_id: str, body: Any = None) -> dict[str, Any]:
    from runtime.aws.ws import handler

    text = None if body is None else json.dumps(body)
    response: dict[str, Any] = handler(websocket_event(route, conn_id, text), LambdaContext())
    return response


def stream_call(harness: Harness, records: list[dict[str, Any]]) -> dict[str, Any]:
    from runtime.aws.stream import handler

    response: dict[str, Any] = handler(stream_event(records, harness.stream_arn), LambdaContext())
    return response


def send_over_http(channel: str, body: str) -> None:
    """A mutation through the HTTP Lambda (its writes reach the stream)."""
    from runtime.aws.http import handler

    call = {"path": "messages:send", "args": {"channel": channel, "body": body}}
    response = handler(http_event("POST", "/api/mutation", call), LambdaContext())
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "success"


def subscribe(conn_id: str, channel: str) -> None:
    ws_call(
        "$default", conn_id, {"type": "Connect", "sessionId": f"s-{conn_id}", "connectionCount": 0}
    )
    ws_call(
        "$default",
        conn_id,
        {
            "type": "ModifyQuerySet",
            "baseVersion": 0,
            "newVersion": 1,
            "modifications": [
                {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{"channel": channel}]}
            ],
        },
    )  # fmt: skip


def received(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return message


def test_routes_subscribe_and_mutate(harness: Harness) -> None:
    ws, conn = harness.socket()
    with ws:
        assert ws_call("$connect", conn) == {"statusCode": 200}
        subscribe(conn, "h")
        first = received(ws)
        assert first["type"] == "Transition" and first["modifications"][0]["value"] == []
        ws_call(
            "$default",
            conn,
            {"type": "Mutation", "requestId": 1, "udfPath": "messages:send",
             "args": [{"channel": "h", "body": "hi"}]},
        )  # fmt: skip
        response, transition = received(ws), received(ws)
        assert response["type"] == "MutationResponse" and response["success"] is True
        assert transition["startVersion"] == first["endVersion"]
        assert transition["modifications"][0]["value"] == ["hi"]
        ws_call("$disconnect", conn)
    store = DynamoDBStore(harness.table, client=harness.client)
    assert store.get([("s:conn", conn.encode())]) == [None]


def test_the_stream_pushes_a_write_made_elsewhere(harness: Harness) -> None:
    ws, conn = harness.socket()
    with ws:
        ws_call("$connect", conn)
        subscribe(conn, "s")
        received(ws)
        harness.records(drain=True)
        send_over_http("s", "from http")
        records = harness.records()
        assert records, "the mutation's writes are on the stream"
        assert stream_call(harness, records) == {"batchItemFailures": []}
        pushed = received(ws)
        assert pushed["modifications"][0]["value"] == ["from http"]
        # The same batch again (a retry): nothing changed, nothing is sent.
        assert stream_call(harness, records) == {"batchItemFailures": []}
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)


def test_a_post_to_a_gone_connection_cleans_up(harness: Harness) -> None:
    ws, conn = harness.socket()
    with ws:
        ws_call("$connect", conn)
        subscribe(conn, "gone")
    # Gone without our $disconnect running (the gateway's Lambda only noted it).
    store = DynamoDBStore(harness.table, client=harness.client)
    (owner,) = [item.key[1] for item in store.scan("s:query", limit=10)]
    assert store.scan(f"s:qsub:{owner.hex()}", limit=10)
    harness.records(drain=True)
    send_over_http("gone", "x")
    assert stream_call(harness, harness.records()) == {"batchItemFailures": []}
    # The post answered 410: the connection and its subscription are forgotten.
    assert store.get([("s:conn", conn.encode())]) == [None]
    assert store.scan(f"s:qsub:{owner.hex()}", limit=10) == []


def test_a_bad_record_is_reported_and_the_ones_before_it_are_processed(
    harness: Harness,
) -> None:
    ws, conn = harness.socket()
    with ws:
        ws_call("$connect", conn)
        subscribe(conn, "bad")
        received(ws)
        harness.records(drain=True)
        for text in ("one", "two"):
            send_over_http("bad", text)
        records = harness.records()
        feed = [r for r in records if "f" in r["dynamodb"].get("NewImage", {})]
        assert len(feed) == 2
        # Corrupt the second document's stored value in the event.
        broken = json.loads(json.dumps(feed[1], default=str))
        broken["dynamodb"] = dict(feed[1]["dynamodb"])
        image = dict(feed[1]["dynamodb"]["NewImage"])
        image["v"] = {"B": b"\xffnot a document"}
        broken["dynamodb"]["NewImage"] = image
        batch = [feed[0], broken]
        answer = stream_call(harness, batch)
        assert answer == {
            "batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]
        }
        pushed = received(ws)  # the first record's effect went out
        assert pushed["modifications"][0]["value"][:1] == ["one"]
