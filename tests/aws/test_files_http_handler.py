"""Files through the HTTP Lambda handler, with the events API Gateway sends
(HTTP API, payload 2.0): binary bodies arrive base64-encoded
(`isBase64Encoded`), binary answers leave base64-encoded, uploads past the
Lambda's payload cap answer 413 naming FILE_UPLOAD_LAMBDA_BYTES. Documents
on DynamoDB Local, bytes in moto's S3 server on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from runtime.aws.backend import FILES_PREFIX
from runtime.aws.settings import record_deployment_urls
from runtime.backend import Backend
from runtime.emulator.s3 import running_s3
from runtime.limits import FILE_UPLOAD_LAMBDA_BYTES
from runtime.store.dynamodb import DynamoDBStore, create_table
from tests.aws.events import LambdaContext, http_event
from tests.support.aws import dynamodb_local_client, http_lambda

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "https://d111111abcdef8.cloudfront.net"
BUCKET = "pyconvex-files-test"
IMAGE = bytes(range(256)) * 40 + b"\x00\xff\x89PNG"  # not UTF-8

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback, with the bucket: the Lambda's S3 client
    speaks HTTP."""
    with running_s3(localstack=False) as endpoint:
        _client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """A botocore client on the bucket, emptied: what the Lambda stores is
    checked through it."""
    client = _client(s3_endpoint)
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    return client


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture
def handler(dynamodb_local_endpoint: str, s3_endpoint: str, s3: Any) -> Iterator[Any]:
    table = f"f{uuid.uuid4().hex[:12]}"
    client = dynamodb_local_client(dynamodb_local_endpoint)
    create_table(client, table)
    store = DynamoDBStore(table, client=client)
    deploy = Backend(store, ROOT / "functions", admin_key=None)
    assert deploy.reload().ok  # what a deploy does: push the schema, record the URL
    record_deployment_urls(store, DEPLOYMENT)
    with http_lambda(
        dynamodb_local_endpoint,
        table,
        ROOT / "functions",
        PYCONVEX_FILES_BUCKET=BUCKET,
        AWS_ENDPOINT_URL_S3=s3_endpoint,
    ) as handler:
        yield handler
    client.delete_table(TableName=table)


def invoke(handler: Any, method: str, url: str, body: Any = None, **kw: Any) -> dict[str, Any]:
    parts = urlsplit(url)
    response: dict[str, Any] = handler(
        http_event(method, parts.path, body, query=parts.query, **kw), LambdaContext()
    )
    return response


def body_of(response: dict[str, Any]) -> bytes:
    raw = response.get("body", "")
    return base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()


def json_of(response: dict[str, Any]) -> Any:
    return json.loads(body_of(response))


def upload_url(handler: Any) -> str:
    response = invoke(
        handler, "POST", "/api/mutation", {"path": "messages:generate_upload_url", "args": {}}
    )
    url: str = json_of(response)["value"]
    assert url.startswith(f"{DEPLOYMENT}/api/storage/upload?token="), url
    return url


def objects(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_binary_upload_lands_in_s3_and_is_served_base64(handler: Any, s3: Any) -> None:
    response = invoke(
        handler,
        "POST",
        upload_url(handler),
        IMAGE,
        headers={"content-type": "image/png", "content-length": str(len(IMAGE))},
    )
    assert response["statusCode"] == 200, response
    storage_id = json_of(response)["storageId"]
    # The bytes are in the bucket under the file URL's path, with their type.
    (name,) = objects(s3)
    assert name.startswith(FILES_PREFIX)
    stored = s3.get_object(Bucket=BUCKET, Key=name)
    assert stored["Body"].read() == IMAGE and stored["ContentType"] == "image/png"
    # A query sees it; get_url points at the deployment (CloudFront serves the bucket there).
    invoke(
        handler,
        "POST",
        "/api/mutation",
        {"path": "messages:send_image", "args": {"storageId": storage_id, "author": "ann"}},
    )
    listed = json_of(invoke(handler, "POST", "/api/query", {"path": "messages:list", "args": {}}))
    url = listed["value"][0]["url"]
    assert url == f"{DEPLOYMENT}/{name}"
    # The Lambda serves the same path too: binary, so base64 in the response.
    served = invoke(handler, "GET", url)
    assert served["statusCode"] == 200 and served["isBase64Encoded"] is True
    assert body_of(served) == IMAGE
    assert served["headers"]["content-type"] == "image/png"
    ranged = invoke(handler, "GET", url, headers={"range": "bytes=10-19"})
    assert ranged["statusCode"] == 206 and body_of(ranged) == IMAGE[10:20]


def test_an_upload_past_the_lambda_cap_is_refused_naming_it(handler: Any, s3: Any) -> None:
    big = secrets.token_bytes(FILE_UPLOAD_LAMBDA_BYTES + 1)
    # API Gateway passes the client's Content-Length: refused before the body is read.
    declared = invoke(
        handler, "POST", upload_url(handler), big, headers={"content-length": str(len(big))}
    )
    # Without one (a chunked request), the body runs past the cap while stored.
    streamed = invoke(handler, "POST", upload_url(handler), big)
    for response in (declared, streamed):
        assert response["statusCode"] == 413, response
        body = json_of(response)
        assert body["code"] == "FILE_TOO_LARGE"
        assert "FILE_UPLOAD_LAMBDA_BYTES" in body["message"]
    assert objects(s3) == []
    # Up to the cap is fine.
    exact = big[:FILE_UPLOAD_LAMBDA_BYTES]
    response = invoke(handler, "POST", upload_url(handler), exact)
    assert response["statusCode"] == 200
    (name,) = objects(s3)
    got = s3.get_object(Bucket=BUCKET, Key=name)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(exact).digest()


def test_http_actions_store_a_binary_body_and_return_stored_bytes(handler: Any) -> None:
    response = invoke(
        handler, "POST", "/sendImage?author=bo", IMAGE, headers={"content-type": "image/webp"}
    )
    assert response["statusCode"] == 200, response
    storage_id = json_of(response)["storageId"]
    served = invoke(handler, "GET", f"/getImage?storageId={storage_id}")
    assert served["statusCode"] == 200 and served["isBase64Encoded"] is True
    assert body_of(served) == IMAGE and served["headers"]["content-type"] == "image/webp"
