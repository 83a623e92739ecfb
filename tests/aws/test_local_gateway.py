"""The AWS harness (`runtime/emulator`): a local API Gateway and event source
mapping in front of Lambda handlers, over real sockets on 127.0.0.1, with
boto3's own Management API client, a real WebSocket client, DynamoDB Local's
stream, and `python -m runtime aws-local` under the official Python client.

The gateway tests use small handlers of their own (an echo WebSocket Lambda
that answers through the Management API), so they test the harness, not
the platform's handlers; the subprocess tests run the real ones.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from convex import ConvexInt64
from convex.http_client import ConvexHttpClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from runtime.emulator import (
    GatewayConfig,
    GatewayLimits,
    LambdaFunction,
    LocalGateway,
    ServerThread,
    StreamPoller,
)
from runtime.emulator.main import AwsLocalOptions, dynamodb_endpoint
from tests.support.aws import dynamodb_local_client
from tests.support.awslocal import aws_local

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0
"""Seconds any one wait in these tests may take before it fails."""

Handler = Callable[[dict[str, Any], Any], Any]


@contextlib.contextmanager
def serving(
    http: Handler | None = None, ws: Handler | None = None, **limits: Any
) -> Iterator[tuple[str, LocalGateway]]:
    gateway = LocalGateway(
        LambdaFunction("test-http", http) if http else None,
        LambdaFunction("test-ws", ws) if ws else None,
        config=GatewayConfig(limits=GatewayLimits(**limits)),
    )
    server = ServerThread(gateway)
    try:
        server.start()
        yield server.url, gateway
    finally:
        server.stop()
        gateway.close()


def management(url: str) -> Any:
    """boto3's Management API client, as a Lambda makes it (fake credentials:
    it signs, the harness does not check)."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def ws_url(url: str, path: str = "/api/1.17.0/sync") -> str:
    return "ws" + url[len("http") :] + path


def take(events: queue.Queue[Any], route: str | None = None) -> Any:
    """The next event (of `route`, skipping others) within WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if route is None or event["requestContext"]["routeKey"] == route:
            return event


# ---- HTTP ----------------------------------------------------------------------------


class Recorder:
    """An HTTP Lambda that keeps each event and context, and answers `answer`."""

    def __init__(self, answer: Callable[[dict[str, Any]], Any]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        return self.answer(event)


def request(
    url: str, method: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
) -> tuple[int, http.client.HTTPMessage, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def test_an_http_request_round_trips_as_a_payload_2_event() -> None:
    payload = bytes(range(256))
    handler = Recorder(
        lambda event: {
            "statusCode": 201,
            "headers": {"X-Answer": "yes", "Content-Type": "application/octet-stream"},
            "multiValueHeaders": {"x-many": ["1", "2"]},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "body": base64.b64encode(payload[::-1]).decode(),
            "isBase64Encoded": True,
        }
    )
    with serving(http=handler) as (url, _):
        status, headers, body = request(
            url,
            "PUT",
            "/files/some%20thing?a=1&a=2&empty=",
            payload,
            [
                ("Content-Type", "application/octet-stream"),
                ("X-Dup", "one"),
                ("X-Dup", "two"),
                ("Cookie", "c1=v1; c2=v2"),
                ("User-Agent", "tests/1.0"),
            ],
        )
    assert (status, body) == (201, payload[::-1])
    assert headers["x-answer"] == "yes" and headers.get_all("x-many") == ["1", "2"]
    assert headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert headers["apigw-requestid"] == handler.events[0]["requestContext"]["requestId"]
    (event,) = handler.events
    port = url.rsplit(":", 1)[1]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/files/some%20thing"
    assert event["rawQueryString"] == "a=1&a=2&empty="
    assert event["queryStringParameters"] == {"a": "1,2", "empty": ""}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-dup"] == "one,two" and "cookie" not in event["headers"]
    assert event["headers"]["host"] == f"127.0.0.1:{port}"
    assert event["headers"]["user-agent"] == "tests/1.0"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    context = event["requestContext"]
    assert context["http"] == {
        "method": "PUT",
        "path": "/files/some%20thing",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests/1.0",
    }
    assert context["domainName"] == f"127.0.0.1:{port}" and context["stage"] == "$default"
    assert context["routeKey"] == "$default" and context["accountId"] and context["apiId"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", context["requestId"])
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    lambda_context = handler.contexts[0]
    assert lambda_context.function_name == "test-http"
    assert lambda_context.invoked_function_arn.endswith(":function:test-http")
    assert 0 < lambda_context.get_remaining_time_in_millis() <= 30_000
    assert lambda_context.log_group_name == "/aws/lambda/test-http"


def test_text_bodies_inferred_answers_and_failures() -> None:
    def answer(event: dict[str, Any]) -> Any:
        path = event["rawPath"]
        if path == "/plain":
            return {"hello": event["body"]}  # no statusCode: API Gateway's inference
        if path == "/bad":
            return {"statusCode": "teapot"}
        raise RuntimeError("the handler failed")

    handler = Recorder(answer)
    with serving(http=handler, http_payload_bytes=1000) as (url, _):
        status, headers, body = request(
            url, "POST", "/plain", '{"x": "é"}'.encode(), [("Content-Type", "application/json")]
        )
        assert (status, headers["content-type"]) == (200, "application/json")
        assert json.loads(body) == {"hello": '{"x": "é"}'}
        assert handler.events[-1]["isBase64Encoded"] is False
        assert request(url, "GET", "/bad")[::2] == (500, b'{"message": "Internal Server Error"}')
        assert request(url, "GET", "/boom")[::2] == (500, b'{"message": "Internal Server Error"}')
        status, _, body = request(url, "POST", "/plain", b"x" * 1001)
        assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    assert len(handler.events) == 3  # the oversized request never reached the Lambda
    assert [c.aws_request_id for c in handler.contexts] == list(
        dict.fromkeys(c.aws_request_id for c in handler.contexts)
    )


def test_a_slow_lambda_gets_the_integration_timeout() -> None:
    release = threading.Event()

    def slow(event: dict[str, Any], context: Any) -> Any:
        release.wait(WAIT)
        return {"statusCode": 200}

    with serving(http=slow, http_timeout=0.2) as (url, _):
        try:
            status, _, body = request(url, "GET", "/slow")
        finally:
            release.set()
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})


# ---- WebSocket and the Management API --------------------------------------------------


class Echo:
    """A WebSocket Lambda: keeps every event; answers each message through the
    Management API (`echo:<body>`); `block` waits for `release`, `boom` raises."""

    def __init__(self) -> None:
        self.url = ""
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.release = threading.Event()
        self.connect_status = 200
        self.post_during_connect: list[str] = []
        self._client: Any = None

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.put(event)
        ctx = event["requestContext"]
        if self._client is None:
            self._client = management(self.url)
        client = self._client
        if ctx["routeKey"] == "$connect":
            try:
                client.post_to_connection(ConnectionId=ctx["connectionId"], Data=b"hi")
                self.post_during_connect.append("posted")
            except client.exceptions.GoneException:
                self.post_during_connect.append("gone")
            return {"statusCode": self.connect_status}
        if ctx["routeKey"] == "$default":
            if event["body"] == "block":
                self.release.wait(WAIT)
            if event["body"] == "boom":
                raise RuntimeError("boom")
            client.post_to_connection(
                ConnectionId=ctx["connectionId"], Data=f"echo:{event['body']}".encode()
            )
        return {"statusCode": 200}


@contextlib.contextmanager
def echo_gateway(**limits: Any) -> Iterator[tuple[str, Echo, LocalGateway]]:
    echo = Echo()
    with serving(ws=echo, **limits) as (url, gateway):
        echo.url = url
        yield url, echo, gateway


def open_socket(url: str, path: str = "/api/1.17.0/sync") -> ClientConnection:
    return connect(ws_url(url, path), open_timeout=WAIT, close_timeout=WAIT)


def test_messages_reach_the_lambda_in_order_and_echoes_come_back() -> None:
    with echo_gateway() as (url, echo, _), open_socket(url) as client:
        connected = take(echo.events, "$connect")
        for i in range(30):
            client.send(f"m{i}")
        assert [client.recv(timeout=WAIT) for _ in range(30)] == [f"echo:m{i}" for i in range(30)]
        messages = [take(echo.events, "$default") for _ in range(30)]
        client.close()
        gone = take(echo.events, "$disconnect")
    port = url.rsplit(":", 1)[1]
    ctx = connected["requestContext"]
    conn_id = ctx["connectionId"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", conn_id)
    assert ctx["eventType"] == "CONNECT" and ctx["messageDirection"] == "IN"
    assert ctx["domainName"] == f"127.0.0.1:{port}" and ctx["stage"] and ctx["apiId"]
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert abs(ctx["connectedAt"] / 1000 - time.time()) < 60 and ctx["requestTimeEpoch"]
    assert connected["headers"]["host"] == f"127.0.0.1:{port}"
    assert connected["multiValueHeaders"]["host"] == [f"127.0.0.1:{port}"]
    assert connected["isBase64Encoded"] is False
    assert echo.post_during_connect == ["gone"]  # not reachable before $connect returns
    assert [m["body"] for m in messages] == [f"m{i}" for i in range(30)]
    assert {m["requestContext"]["eventType"] for m in messages} == {"MESSAGE"}
    assert len({m["requestContext"]["messageId"] for m in messages}) == 30
    assert {m["requestContext"]["connectionId"] for m in messages} == {conn_id}
    gone_ctx = gone["requestContext"]
    assert gone_ctx["eventType"] == "DISCONNECT" and gone_ctx["connectionId"] == conn_id
    assert (gone_ctx["disconnectStatusCode"], gone_ctx["disconnectReason"]) == (1000, "")


def test_connections_run_in_parallel_each_in_order() -> None:
    with (
        echo_gateway() as (url, echo, _),
        open_socket(url) as a,
        open_socket(url, "/api/sync") as b,
    ):
        a.send("block")
        a.send("after-block")
        b.send("hello")
        assert b.recv(timeout=WAIT) == "echo:hello"  # while a's Lambda is still busy
        echo.release.set()
        assert [a.recv(timeout=WAIT) for _ in range(2)] == ["echo:block", "echo:after-block"]


def test_the_management_api_through_boto3() -> None:
    with echo_gateway() as (url, echo, gateway), open_socket(url) as client:
        conn_id = take(echo.events, "$connect")["requestContext"]["connectionId"]
        api = management(url)
        api.post_to_connection(ConnectionId=conn_id, Data=json.dumps({"a": 1}).encode())
        assert json.loads(client.recv(timeout=WAIT)) == {"a": 1}
        info = api.get_connection(ConnectionId=conn_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]
        assert abs(info["ConnectedAt"].timestamp() - time.time()) < 60
        assert gateway.websockets.live() == [conn_id]
        with pytest.raises(api.exceptions.PayloadTooLargeException):
            api.post_to_connection(ConnectionId=conn_id, Data=b"x" * (128 * 1024 + 1))
        api.delete_connection(ConnectionId=conn_id)
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
        gone = take(echo.events, "$disconnect")["requestContext"]
        assert gone["connectionId"] == conn_id and gone["disconnectStatusCode"] == 1000
        calls: list[Callable[[], Any]] = [
            lambda: api.post_to_connection(ConnectionId=conn_id, Data=b"late"),
            lambda: api.get_connection(ConnectionId=conn_id),
            lambda: api.delete_connection(ConnectionId=conn_id),
            lambda: api.post_to_connection(ConnectionId="Tm9TdWNoQ29ubmVjdA=", Data=b"x"),
        ]
        for call in calls:
            with pytest.raises(api.exceptions.GoneException) as raised:
                call()
            assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
        assert gateway.websockets.live() == []


def test_a_closed_connection_is_gone() -> None:
    with echo_gateway() as (url, echo, _):
        with open_socket(url):
            conn_id = take(echo.events, "$connect")["requestContext"]["connectionId"]
        take(echo.events, "$disconnect")
        api = management(url)
        with pytest.raises(api.exceptions.GoneException):
            api.post_to_connection(ConnectionId=conn_id, Data=b"anyone?")


def test_refusals_limits_and_failures() -> None:
    with echo_gateway() as (url, echo, _):
        echo.connect_status = 401
        with pytest.raises(InvalidStatus) as refused:
            open_socket(url)
        assert refused.value.response.status_code == 401
        take(echo.events, "$connect")
        assert echo.events.empty()  # no $disconnect for a refused connection
        echo.connect_status = 200
        with pytest.raises(InvalidStatus):
            open_socket(url, "/elsewhere")
        # A failing Lambda: API Gateway tells the client, the connection stays.
        with open_socket(url) as client:
            client.send("boom")
            failure = json.loads(client.recv(timeout=WAIT))
            assert failure["message"] == "Internal server error"
            assert failure["connectionId"] and failure["requestId"]
            client.send("still here")
            assert client.recv(timeout=WAIT) == "echo:still here"
        assert take(echo.events, "$disconnect")["requestContext"]["disconnectStatusCode"] == 1000
        # Over 128 KiB: closed with 1009.
        with open_socket(url) as client:
            client.send("x" * (128 * 1024 + 1))
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert take(echo.events, "$disconnect")["requestContext"]["disconnectStatusCode"] == 1009
        # Binary frames: closed with 1003.
        with open_socket(url) as client:
            client.send(b"\x00\x01")
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_stopping_the_server_disconnects_its_clients() -> None:
    echo = Echo()
    gateway = LocalGateway(None, LambdaFunction("test-ws", echo))
    server = ServerThread(gateway)
    echo.url = server.start()
    try:
        with open_socket(server.url) as client:
            take(echo.events, "$connect")
            server.stop()
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=WAIT)
        assert take(echo.events, "$disconnect")["requestContext"]["disconnectStatusCode"] == 1012
    finally:
        server.stop()
        gateway.close()


# ---- the stream poller on DynamoDB Local -----------------------------------------------


@pytest.fixture
def stream_table(dynamodb_local_endpoint: str) -> Iterator[tuple[Any, Any, str, str]]:
    """A table with a NEW_AND_OLD_IMAGES stream: (client, streams client, name, stream ARN)."""
    client = dynamodb_local_client(dynamodb_local_endpoint)
    name = f"s{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn = client.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    yield client, dynamodb_local_client(dynamodb_local_endpoint, "dynamodbstreams"), name, arn
    client.delete_table(TableName=name)


class StreamLambda:
    """Keeps each batch's keys (and events); `answer(keys, event)` says what to return."""

    def __init__(self, answer: Callable[[list[str], dict[str, Any]], Any] | None = None) -> None:
        self.answer = answer or (lambda keys, event: {"batchItemFailures": []})
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self.request_ids: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        self.batches.append(keys)
        self.events.append(event)
        self.request_ids.append(context.aws_request_id)
        return self.answer(keys, event)

    def keys(self) -> list[str]:
        return [k for batch in self.batches for k in batch]


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@contextlib.contextmanager
def polling(streams: Any, arn: str, handler: StreamLambda, **kw: Any) -> Iterator[StreamPoller]:
    poller = StreamPoller(
        streams, arn, LambdaFunction("test-stream", handler), poll_interval=0.02, **kw
    )
    poller.start()
    try:
        yield poller
    finally:
        poller.stop()


@pytest.mark.dynamodb_local
def test_stream_records_arrive_as_lambda_events(stream_table: tuple[Any, Any, str, str]) -> None:
    client, streams, table, arn = stream_table
    client.put_item(TableName=table, Item={"pk": {"S": "before"}})
    handler = StreamLambda()
    blob = b"\x00\xffbinary"
    with polling(streams, arn, handler):
        client.put_item(
            TableName=table,
            Item={
                "pk": {"S": "a"},
                "data": {"B": blob},
                "tags": {"BS": [b"x", b"\x01"]},
                "nested": {"M": {"inner": {"L": [{"B": b"\x02"}, {"N": "7"}]}}},
                "n": {"N": "5"},
            },
        )
        client.update_item(
            TableName=table,
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "6"}},
        )
        client.delete_item(TableName=table, Key={"pk": {"S": "a"}})
        wait_for(lambda: len(handler.keys()) >= 3)
    assert handler.keys() == ["a", "a", "a"]  # LATEST: "before" was written before the start
    records = [r for event in handler.events for r in event["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    for r in records:
        assert (r["eventSource"], r["eventVersion"], r["awsRegion"]) == (
            "aws:dynamodb",
            "1.1",
            "us-east-1",
        )
        assert r["eventSourceARN"] == arn and r["eventID"]
        data = r["dynamodb"]
        assert isinstance(data["ApproximateCreationDateTime"], int | float)
        assert abs(data["ApproximateCreationDateTime"] - time.time()) < 600
        assert data["Keys"] == {"pk": {"S": "a"}}
        assert data["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(data["SequenceNumber"], str) and data["SizeBytes"] > 0
    json.dumps(records)  # an event is JSON, as Lambda's are: no bytes, no datetimes
    insert, modify, remove = (r["dynamodb"] for r in records)
    image = insert["NewImage"]
    assert base64.b64decode(image["data"]["B"]) == blob
    assert sorted(base64.b64decode(b) for b in image["tags"]["BS"]) == [b"\x01", b"x"]
    inner = image["nested"]["M"]["inner"]["L"]
    assert base64.b64decode(inner[0]["B"]) == b"\x02" and inner[1] == {"N": "7"}
    assert "OldImage" not in insert
    assert (modify["OldImage"]["n"], modify["NewImage"]["n"]) == ({"N": "5"}, {"N": "6"})
    assert remove["OldImage"]["n"] == {"N": "6"} and "NewImage" not in remove
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequences == sorted(sequences)
    assert len(set(handler.request_ids)) == len(handler.request_ids)


@pytest.mark.dynamodb_local
def test_a_partial_batch_failure_is_redelivered_from_the_failed_record(
    stream_table: tuple[Any, Any, str, str],
) -> None:
    client, streams, table, arn = stream_table
    for key in ("a", "b", "bad", "c", "d"):
        client.put_item(TableName=table, Item={"pk": {"S": key}})
    failures = [2]

    def answer(keys: list[str], event: dict[str, Any]) -> Any:
        if "bad" in keys and failures[0] > 0:
            failures[0] -= 1
            record = event["Records"][keys.index("bad")]
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    handler = StreamLambda(answer)
    with polling(streams, arn, handler, start="TRIM_HORIZON", backoff=0.01) as poller:
        wait_for(lambda: poller.delivered >= 5)
    assert handler.batches == [
        ["a", "b", "bad", "c", "d"],
        ["bad", "c", "d"],
        ["bad", "c", "d"],
    ]
    assert (poller.delivered, poller.skipped) == (5, 0)


@pytest.mark.dynamodb_local
def test_a_failing_batch_is_retried_then_skipped(stream_table: tuple[Any, Any, str, str]) -> None:
    client, streams, table, arn = stream_table

    def answer(keys: list[str], event: dict[str, Any]) -> Any:
        if "poison" in keys:
            raise RuntimeError("cannot handle poison")
        if "odd" in keys:
            return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
        return None  # no partial answer: the whole batch succeeded

    handler = StreamLambda(answer)
    with polling(streams, arn, handler, max_retries=2, backoff=0.01) as poller:
        client.put_item(TableName=table, Item={"pk": {"S": "poison"}})
        wait_for(lambda: poller.skipped == 1)
        client.put_item(TableName=table, Item={"pk": {"S": "odd"}})
        wait_for(lambda: poller.skipped == 2)
        client.put_item(TableName=table, Item={"pk": {"S": "fine"}})
        wait_for(lambda: poller.delivered == 1)
    assert handler.batches == [["poison"]] * 3 + [["odd"]] * 3 + [["fine"]]


def test_stream_poller_settings_are_checked() -> None:
    handler = LambdaFunction("x", StreamLambda())
    with pytest.raises(ValueError, match="batch_size"):
        StreamPoller(None, "arn", handler, batch_size=0)
    with pytest.raises(ValueError, match="LATEST or TRIM_HORIZON"):
        StreamPoller(None, "arn", handler, start="AT_TIMESTAMP")  # type: ignore[arg-type]


# ---- python -m runtime aws-local -------------------------------------------------------


def test_the_dynamodb_endpoint_is_chosen_in_order() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:2",
    }
    given = AwsLocalOptions(dynamodb_endpoint="http://127.0.0.1:3")
    assert dynamodb_endpoint(given, env) == "http://127.0.0.1:3"
    assert dynamodb_endpoint(AwsLocalOptions(), env) == "http://127.0.0.1:2"
    assert dynamodb_endpoint(AwsLocalOptions(), {"AWS_ENDPOINT_URL": "http://x:1"}) == "http://x:1"
    assert dynamodb_endpoint(AwsLocalOptions(), {}) is None  # start DynamoDB Local
    assert dynamodb_endpoint(AwsLocalOptions(localstack=True), env) == "http://localhost:4566"


@pytest.mark.dynamodb_local
def test_aws_local_serves_the_app_to_the_official_client(
    tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = f"a{uuid.uuid4().hex[:12]}"
    data = tmp_path / "data"
    with aws_local(
        ROOT / "functions", data, table=table, dynamodb_endpoint=dynamodb_local_endpoint
    ) as server:
        with urllib.request.urlopen(server.url + "/version", timeout=WAIT) as answer:
            assert answer.status == 200
        client = ConvexHttpClient(server.url)
        assert len(client.mutation("bank:open", {"owner": "ann"})) > 0
        client.mutation("bank:deposit", {"owner": "ann", "amount": ConvexInt64(7)})
        assert client.query("bank:balance", {"owner": "ann"}) == ConvexInt64(7)
        done = subprocess.run(
            [sys.executable, "-m", "runtime", "run", "bank:info", "--url", server.url,
             "--data", str(data)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["accounts"] == 1
        code = server.stop()
    log = server.log()
    assert code == 0, log
    assert f"pyconvex aws-local ready: {server.url}" in log and "aws-local stopped" in log
    dynamodb_local_client(dynamodb_local_endpoint).delete_table(TableName=table)


@pytest.mark.dynamodb_local
def test_aws_local_starts_and_stops_its_own_dynamodb_local(tmp_path: Path) -> None:
    with aws_local(ROOT / "functions", tmp_path / "data", table="pyconvex") as server:
        found = re.search(r"started DynamoDB Local on (http://127\.0\.0\.1:\d+)", server.log())
        assert found, server.log()
        endpoint = found.group(1)
        assert ConvexHttpClient(server.url).query("bank:info")["accounts"] == ConvexInt64(0)
        assert server.stop() == 0, server.log()
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(endpoint, timeout=2)
    assert not isinstance(refused.value, urllib.error.HTTPError)  # nobody answered


def test_aws_local_explains_a_missing_functions_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "aws-local", "--functions", str(tmp_path / "none"),
         "--data", str(tmp_path / "data"), "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    assert "no functions folder" in done.stderr
