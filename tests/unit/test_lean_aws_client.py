"""The Lambdas' lean AWS client (runtime/aws/sigv4.py, signed_http.py,
dynamodb_client.py): signatures equal botocore's; retries, kept-alive
connections and errors against a scripted local server (the failures
DynamoDB Local never produces: throttling, 5xx, torn bodies, closed
connections); credentials from the environment and the container
endpoint; and, on DynamoDB Local, the same answers as botocore's client."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from runtime.aws.dynamodb_client import DynamoDBClient
from runtime.aws.json_api import operation_name
from runtime.aws.signed_http import (
    ContainerCredentials,
    SignedHttp,
    StaticCredentials,
    credentials_from_env,
    endpoint_from_env,
)
from runtime.aws.sigv4 import Credentials, sign
from runtime.store.dynamodb_calls import call
from runtime.store.port import StoreError
from tests.support.scripted_http import Script, scripted_server

# ---- signatures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "service", "token"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com/", "/", "dynamodb", None),
        ("http://127.0.0.1:8000/", "/", "dynamodb", "session-token"),
        (
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/@connections/L0SM9c%3D",
            "/prod/@connections/L0SM9c%3D",
            "execute-api",
            "t",
        ),
    ],
)
def test_a_signature_is_botocores(url: str, path: str, service: str, token: str | None) -> None:
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    body = b'{"TableName":"t","Key":{"pk":{"S":"a  b"}}}'
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "X.GetItem"}
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(BotocoreCredentials("AKID", "secret/key", token), service, "eu-west-1").add_auth(
        request
    )
    parts = urlsplit(url)
    mine = sign(
        method="POST",
        host=parts.netloc if parts.port else (parts.hostname or ""),
        path=path,
        headers=headers,
        body=body,
        credentials=Credentials("AKID", "secret/key", token),
        region="eu-west-1",
        service=service,
        amz_date=request.headers["X-Amz-Date"],
    )
    assert mine["Authorization"] == request.headers["Authorization"]
    assert mine.get("X-Amz-Security-Token") == token


def test_credentials_never_print_their_secret() -> None:
    assert "secret" not in repr(Credentials("AKID", "secret", "tok"))


def test_operation_names() -> None:
    assert operation_name("transact_write_items") == "TransactWriteItems"
    assert operation_name("describe_time_to_live") == "DescribeTimeToLive"


# ---- a scripted server ---------------------------------------------------------------


@pytest.fixture
def script() -> Iterator[tuple[Script, str]]:
    with scripted_server() as served:
        yield served


_made: list[DynamoDBClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def _client(endpoint: str, attempts: int = 4) -> DynamoDBClient:
    http = SignedHttp(
        endpoint,
        region="us-east-1",
        service="dynamodb",
        credentials=StaticCredentials(Credentials("AKID", "secret")),
        max_attempts=attempts,
        base_delay=0.001,
    )
    client = DynamoDBClient(http)
    _made.append(client)
    return client


def _error(code: str, message: str, **rest: Any) -> dict[str, Any]:
    return {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **rest}


def test_a_request_is_signed_json_and_binary_travels_as_base64(
    script: tuple[Script, str],
) -> None:
    s, endpoint = script
    s.answer(
        200,
        {"Item": {"sk": {"B": base64.b64encode(b"\x00\xff").decode()}}},
        **{"x-amzn-RequestId": "R1"},
    )
    client = _client(endpoint)
    got = client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"B": b"\x01\x02"}})
    assert got["Item"] == {"sk": {"B": b"\x00\xff"}}
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["ResponseMetadata"]["RequestId"] == "R1"
    path, headers, body = s.seen[0]
    assert path == "/"
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert json.loads(body)["Key"]["sk"] == {"B": base64.b64encode(b"\x01\x02").decode()}


def test_binary_values_come_back_as_bytes_wherever_they_are(script: tuple[Script, str]) -> None:
    s, endpoint = script
    b64 = base64.b64encode(b"x").decode()
    item = {
        "b": {"B": b64},
        "bs": {"BS": [b64, b64]},
        "m": {"M": {"B": {"S": "a map field named B"}, "in": {"B": b64}}},
        "l": {"L": [{"B": b64}, {"S": b64}]},
        "B": {"S": "an attribute named B"},
    }
    s.answer(200, {"Items": [item], "LastEvaluatedKey": {"sk": {"B": b64}}})
    got = _client(endpoint).query(TableName="t")
    assert got["Items"][0] == {
        "b": {"B": b"x"},
        "bs": {"BS": [b"x", b"x"]},
        "m": {"M": {"B": {"S": "a map field named B"}, "in": {"B": b"x"}}},
        "l": {"L": [{"B": b"x"}, {"S": b64}]},
        "B": {"S": "an attribute named B"},
    }
    assert got["LastEvaluatedKey"] == {"sk": {"B": b"x"}}


def test_throttling_and_server_errors_are_retried(script: tuple[Script, str]) -> None:
    s, endpoint = script
    s.answer(400, _error("ProvisionedThroughputExceededException", "slow down"))
    s.answer(500, b"")
    s.answer(503, _error("ServiceUnavailable", "busy"))
    s.answer(200, {"Item": {"pk": {"S": "a"}}})
    got = _client(endpoint).get_item(TableName="t", Key={})
    assert got["Item"] == {"pk": {"S": "a"}}
    assert got["ResponseMetadata"]["RetryAttempts"] == 3
    assert len(s.seen) == 4


def test_a_torn_body_is_retried(script: tuple[Script, str]) -> None:
    s, endpoint = script
    s.answer(200, {"Item": {}}, **{"X-Amz-CRC32": "1"})  # names in any case
    s.answer(200, {"Item": {"pk": {"S": "b"}}})
    assert _client(endpoint).get_item(TableName="t", Key={})["Item"] == {"pk": {"S": "b"}}
    assert len(s.seen) == 2


def test_retries_stop_at_max_attempts_with_the_last_error(script: tuple[Script, str]) -> None:
    s, endpoint = script
    for _ in range(5):
        s.answer(400, _error("ThrottlingException", "throttled"))
    with pytest.raises(ClientError) as raised:
        _client(endpoint, attempts=3).put_item(TableName="t", Item={})
    assert raised.value.response["Error"] == {"Code": "ThrottlingException", "Message": "throttled"}
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(s.seen) == 3


def test_a_client_error_is_botocores_and_not_retried(script: tuple[Script, str]) -> None:
    s, endpoint = script
    s.answer(400, _error("ValidationException", "One or more parameter values were invalid"))
    with pytest.raises(ClientError) as raised:
        _client(endpoint).put_item(TableName="t", Item={})
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.operation_name == "PutItem"
    assert "(ValidationException) when calling the PutItem operation" in str(raised.value)
    assert len(s.seen) == 1


def test_a_cancelled_transaction_carries_its_reasons_as_botocore_parses_them(
    script: tuple[Script, str],
) -> None:
    s, endpoint = script
    b64 = base64.b64encode(b"k").decode()
    reasons = [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "failed", "Item": {"sk": {"B": b64}}},
    ]
    s.answer(
        400, {**_error("TransactionCanceledException", "cancelled"), "CancellationReasons": reasons}
    )
    with pytest.raises(ClientError) as raised:
        _client(endpoint).transact_write_items(TransactItems=[])
    response = raised.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    assert response["CancellationReasons"][1]["Item"] == {"sk": {"B": b"k"}}


def test_a_connection_the_server_closed_while_idle_is_replaced_at_once(
    script: tuple[Script, str],
) -> None:
    s, endpoint = script
    s.close_after_each = True
    client = _client(endpoint, attempts=1)  # no retries: only the replacement may help
    for _ in range(3):
        assert client.get_item(TableName="t", Key={})["ResponseMetadata"]["RetryAttempts"] == 0
    assert len(s.seen) == 3 and len(set(s.ports)) == 3


def test_connections_are_kept_alive(script: tuple[Script, str]) -> None:
    s, endpoint = script
    client = _client(endpoint)
    for _ in range(3):
        client.get_item(TableName="t", Key={})
    assert len(s.ports) == 3 and len(set(s.ports)) == 1  # one connection, reused


def test_an_endpoint_that_refuses_fails_as_botocore_connection_errors_do() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = _client(f"http://127.0.0.1:{port}", attempts=2)
    with pytest.raises(BotoCoreError):
        client.get_item(TableName="t", Key={})
    with pytest.raises(StoreError, match="DynamoDB GetItem on table t failed"):
        call("t", "GetItem", client.get_item, TableName="t", Key={})


def test_observers_see_each_call(script: tuple[Script, str]) -> None:
    _, endpoint = script
    client = _client(endpoint)
    seen: list[tuple[str, dict[str, Any]]] = []
    client.observers.append(lambda op, params: seen.append((op, params)))
    client.query(TableName="t")
    assert seen == [("Query", {"TableName": "t"})]


def test_the_management_api_poster_posts_signed_and_knows_gone_connections(
    script: tuple[Script, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.aws.connections import ManagementApiError, ManagementApiPoster, reset

    s, endpoint = script
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    poster = ManagementApiPoster(f"{endpoint}/prod/{uuid.uuid4().hex}")  # a transport of its own
    s.answer(500, b"")  # retried
    s.answer(200, b"")
    assert poster.post("L0SM9c=", {"type": "Ping"})
    path, headers, body = s.seen[-1]
    assert path.endswith("/@connections/L0SM9c%3D") and path.startswith("/prod/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert json.loads(body) == {"type": "Ping"}
    s.answer(410, {"message": "Gone"}, **{"x-amzn-ErrorType": "GoneException"})
    assert not poster.post("gone", {"type": "Ping"})
    assert (poster.posted, poster.gone, len(s.seen)) == (1, 1, 3)
    s.answer(403, {"message": "Forbidden"}, **{"x-amzn-ErrorType": "ForbiddenException"})
    with pytest.raises(ManagementApiError, match="403 ForbiddenException: Forbidden"):
        poster.post("c", {"type": "Ping"})
    s.answer(410, b"")
    poster.close("gone")  # a connection already gone is closed
    assert s.seen[-1][0].endswith("/@connections/gone")
    reset()


def test_sqs_and_scheduler_calls_are_botocores(
    script: tuple[Script, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two calls a Lambda makes for scheduled jobs, through the clients
    LazyClient picks from the environment (no botocore client)."""
    from runtime.aws.clients import LazyClient
    from runtime.aws.json_api import JsonApiClient
    from runtime.aws.scheduler_client import SchedulerClient

    s, endpoint = script
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "AWS_ENDPOINT_URL_SCHEDULER": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    sqs, scheduler = LazyClient("sqs"), LazyClient("scheduler")
    s.answer(200, {"MessageId": "m1", "MD5OfMessageBody": "x"})
    assert sqs.send_message(QueueUrl="q", MessageBody="b", DelaySeconds=3)["MessageId"] == "m1"
    assert isinstance(sqs._client, JsonApiClient)
    _, headers, body = s.seen[-1]
    assert headers["X-Amz-Target"] == "AmazonSQS.SendMessage"
    assert "/eu-west-1/sqs/aws4_request" in headers["Authorization"]
    assert json.loads(body) == {"QueueUrl": "q", "MessageBody": "b", "DelaySeconds": 3}
    s.answer(
        400,
        {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no queue"},
        **{"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
    )
    with pytest.raises(ClientError) as raised:
        sqs.send_message_batch(QueueUrl="q", Entries=[])
    assert raised.value.response["Error"] == {"Code": "QueueDoesNotExist", "Message": "no queue"}

    s.answer(200, {"ScheduleArn": "arn:aws:scheduler:eu-west-1:1:schedule/g/job-1"})
    made = scheduler.create_schedule(Name="job 1", GroupName="g", ScheduleExpression="at(x)")
    assert made["ScheduleArn"].endswith("job-1") and isinstance(scheduler._client, SchedulerClient)
    path, headers, body = s.seen[-1]
    assert path == "/schedules/job%201"
    assert "/eu-west-1/scheduler/aws4_request" in headers["Authorization"]
    sent = json.loads(body)
    assert sent["GroupName"] == "g" and uuid.UUID(sent["ClientToken"])
    s.answer(409, {"Message": "exists"}, **{"x-amzn-ErrorType": "ConflictException:http://x"})
    with pytest.raises(ClientError) as raised:
        scheduler.create_schedule(Name="job-1", GroupName="g")
    assert raised.value.response["Error"] == {"Code": "ConflictException", "Message": "exists"}
    sqs.close()
    scheduler.close()


# ---- credentials and endpoints from the environment --------------------------------


def test_the_environment_decides_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    assert credentials_from_env() is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    assert DynamoDBClient.from_env() is None  # no region
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    client = DynamoDBClient.from_env()
    assert client is not None and client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
    creds = credentials_from_env()
    assert creds is not None and creds.get() == Credentials("AKID", "secret", "tok")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1/")
    assert endpoint_from_env("DYNAMODB", "dynamodb", "eu-west-1") == "http://127.0.0.1:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2")
    assert endpoint_from_env("DYNAMODB", "dynamodb", "eu-west-1") == "http://127.0.0.1:2"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert endpoint_from_env("DYNAMODB", "dynamodb", "cn-north-1") == (
        "https://dynamodb.cn-north-1.amazonaws.com.cn"
    )
    monkeypatch.setenv("AWS_PROFILE", "dev")  # only botocore reads profiles
    assert DynamoDBClient.from_env() is None
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds")
    assert isinstance(credentials_from_env(), ContainerCredentials)


def _serve_credentials(script: Script, expires_in: timedelta, key: str = "AKIDC") -> None:
    when = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    script.answer(
        200,
        {"AccessKeyId": key, "SecretAccessKey": "s", "Token": "t", "Expiration": when},
    )


def test_container_credentials_are_fetched_with_the_token_and_refreshed_before_expiry(
    script: tuple[Script, str],
) -> None:
    s, endpoint = script
    source = ContainerCredentials(f"{endpoint}/2021-04-23/credentials", lambda: "the-token")
    _serve_credentials(s, timedelta(hours=6), key="first")
    assert source.get() == Credentials("first", "s", "t")
    assert source.get().access_key == "first"  # cached: one fetch
    assert len(s.seen) == 1
    assert s.seen[0][0] == "/2021-04-23/credentials"
    assert s.seen[0][1]["Authorization"] == "the-token"
    source._expires = time.time() + 60  # within the refresh margin
    _serve_credentials(s, timedelta(hours=6), key="second")
    assert source.get().access_key == "second"
    source._expires = time.time() + 60
    s.answer(500, b"down")  # a failed refresh keeps credentials still valid
    assert source.get().access_key == "second"
    source._expires = time.time() - 1
    s.answer(500, b"down")
    with pytest.raises(OSError, match="container credentials"):
        source.get()


# ---- on DynamoDB Local: botocore's answers -------------------------------------------


@pytest.mark.dynamodb_local
def test_on_dynamodb_local_the_answers_are_botocores(dynamodb_local_endpoint: str) -> None:
    from runtime.store.dynamodb import create_table
    from tests.support.aws import dynamodb_local_client, lean_dynamodb_local_client

    boto = dynamodb_local_client(dynamodb_local_endpoint)
    lean = lean_dynamodb_local_client(dynamodb_local_endpoint)
    table = f"lean{uuid.uuid4().hex[:8]}"
    create_table(boto, table, stream=False)
    try:
        for i in range(3):
            lean.put_item(
                TableName=table,
                Item={
                    "pk": {"S": "p"},
                    "sk": {"B": bytes([i, 0, 255])},
                    "v": {"M": {"bin": {"BS": [b"\x00", b"\x01"]}, "n": {"N": str(i)}}},
                },
            )
        ask = {"TableName": table, "KeyConditionExpression": "pk = :p", "Limit": 2}
        ask["ExpressionAttributeValues"] = {":p": {"S": "p"}}
        mine, theirs = lean.query(**ask), boto.query(**ask)
        for r in (mine, theirs):
            r.pop("ResponseMetadata")
        assert mine == theirs and mine["LastEvaluatedKey"]["sk"]["B"] == bytes([1, 0, 255])
        failing = {
            "TransactItems": [
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "p"}, "sk": {"B": bytes([0, 0, 255])}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        }
        errors: list[dict[str, Any]] = []
        for client in (lean, boto):
            with pytest.raises(ClientError) as raised:
                client.transact_write_items(**failing)
            response = dict(raised.value.response)
            response.pop("ResponseMetadata")
            errors.append(response)
        assert errors[0] == errors[1]
        assert errors[0]["CancellationReasons"][0]["Item"]["sk"]["B"] == bytes([0, 0, 255])
    finally:
        boto.delete_table(TableName=table)
        lean.close()
