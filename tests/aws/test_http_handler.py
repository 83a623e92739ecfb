"""The HTTP Lambda handler with the events API Gateway sends (HTTP API,
payload 2.0), on DynamoDB Local: the Convex HTTP API and HTTP actions."""

from __future__ import annotations

import base64
import json
import secrets
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.store.dynamodb import DynamoDBStore, create_table
from tests.aws.events import LambdaContext, http_event
from tests.support.aws import dynamodb_local_client, http_lambda, secrets_manager

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = secrets.token_hex(32)

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def handler(dynamodb_local_endpoint: str) -> Iterator[Any]:
    table = f"h{uuid.uuid4().hex[:12]}"
    client = dynamodb_local_client(dynamodb_local_endpoint)
    create_table(client, table)
    # What a deploy does once: push the schema (build indexes).
    deploy = Backend(DynamoDBStore(table, client=client), ROOT / "functions", admin_key=None)
    assert deploy.reload().ok
    # The admin key as the template keeps it: a secret the function reads.
    with secrets_manager() as sm:
        arn = sm.create_secret(Name=f"key-{table}", SecretString=ADMIN_KEY)["ARN"]
        with http_lambda(
            dynamodb_local_endpoint, table, ROOT / "functions", PYCONVEX_ADMIN_KEY_SECRET=arn
        ) as handler:
            yield handler
    client.delete_table(TableName=table)


def call(
    handler: Any, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any, dict[str, str]]:
    response = handler(http_event(method, path, body, **kw), LambdaContext())
    text = response.get("body", "")
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    try:
        payload = json.loads(text) if text else None
    except json.JSONDecodeError:
        payload = text
    return response["statusCode"], payload, response.get("headers", {})


def int64(n: int) -> dict[str, str]:
    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


def test_the_http_api_through_api_gateway_events(handler: Any) -> None:
    status, body, _ = call(
        handler, "POST", "/api/mutation", {"path": "bank:open", "args": {"owner": "ann"}}
    )
    assert status == 200 and body["status"] == "success" and len(body["value"]) == 36
    call(handler, "POST", "/api/mutation", {"path": "bank:open", "args": [{"owner": "bob"}]})
    call(
        handler,
        "POST",
        "/api/mutation",
        {"path": "bank:deposit", "args": {"owner": "ann", "amount": int64(9)}},
    )
    status, body, _ = call(
        handler, "POST", "/api/mutation",
        {"path": "bank:transfer", "args": {"source": "ann", "target": "bob", "amount": int64(4)}},
    )  # fmt: skip
    assert body["status"] == "success"
    _, body, _ = call(
        handler,
        "POST",
        "/api/query",
        {"path": "bank:balance", "args": {"owner": "bob"}, "format": "json"},
    )
    assert body == {"status": "success", "value": 4, "logLines": []}
    _, body, _ = call(handler, "POST", "/api/run/bank/total", {"args": {}})
    assert body["value"] == 9
    _, body, _ = call(handler, "POST", "/api/action", {"path": "bank:audit", "args": {}})
    assert body["value"] == 9


def test_errors_keep_their_shapes(handler: Any) -> None:
    status, body, _ = call(
        handler, "POST", "/api/query", {"path": "bank:balance", "args": {"owner": "zed"}}
    )
    assert (
        status == 200
        and body["status"] == "error"
        and body["errorData"] == {"code": "NO_ACCOUNT", "owner": "zed"}
    )
    status, body, _ = call(
        handler, "POST", "/api/mutation", {"path": "bank:close", "args": {"owner": "x"}}
    )
    assert (status, body["code"]) == (404, "FUNCTION_NOT_FOUND")
    status, body, _ = call(handler, "POST", "/api/mutation", "{not json")
    assert (status, body["code"]) == (400, "BAD_JSON_BODY")
    # The admin key reaches internal functions, as the CLI does.
    status, body, _ = call(
        handler, "POST", "/api/function", {"path": "bank:close", "args": {"owner": "x"}},
        headers={"authorization": f"Convex {ADMIN_KEY}"},
    )  # fmt: skip
    assert status == 200 and "NO_ACCOUNT" in body["errorMessage"]


def test_http_actions_share_the_handler(handler: Any) -> None:
    call(handler, "POST", "/api/mutation", {"path": "bank:open", "args": {"owner": "hal"}})
    status, body, _ = call(handler, "POST", "/deposit", {"owner": "hal", "amount": 3})
    assert (status, body) == (200, {"ok": True})
    status, body, _ = call(handler, "GET", "/balance", query="owner=hal")
    assert (status, body) == (200, {"owner": "hal", "balance": 3})
    status, _, _ = call(handler, "GET", "/nowhere")
    assert status == 404


def test_environment_variables_reach_running_lambdas(handler: Any) -> None:
    _, body, _ = call(handler, "POST", "/api/query", {"path": "bank:info", "args": {}})
    assert body["value"]["name"] == "Example Bank"
    status, _, _ = call(
        handler, "POST", "/api/admin/env", {"changes": {"BANK_NAME": "Lambda Bank"}},
        headers={"authorization": f"Convex {ADMIN_KEY}"},
    )  # fmt: skip
    assert status == 200
    _, body, _ = call(handler, "POST", "/api/query", {"path": "bank:info", "args": {}})
    assert body["value"]["name"] == "Lambda Bank"
