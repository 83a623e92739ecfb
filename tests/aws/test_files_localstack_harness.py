"""The local AWS harness with `--localstack`: files' bytes in LocalStack's S3
(started without Docker by tests/support/localstack.py), documents in DynamoDB
Local. `--dynamodb-endpoint` takes precedence over LocalStack's DynamoDB
(runtime/emulator/main.py: dynamodb_endpoint), so the endpoints are chosen per
service: LocalStack 4.9.2 on the host serves DynamoDB only through a DynamoDB
Local of its own (Java, downloaded at first use), which the tests do not need."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from convex.http_client import ConvexHttpClient

from tests.support.awslocal import aws_local
from tests.support.localstack import localstack_endpoint  # noqa: F401 - the fixture

APP = """
from runtime import mutation, query, v


@mutation(args={})
def upload_url(ctx, args):
    return ctx.storage.generate_upload_url()


@mutation(args={"id": v.id("_storage"), "name": v.string()})
def save(ctx, args):
    return ctx.db.insert("files", {"storage": args["id"], "name": args["name"]})


@query(args={"doc": v.id("files")})
def url(ctx, args):
    doc = ctx.db.get(args["doc"])
    return ctx.storage.get_url(doc["storage"])


@mutation(args={"doc": v.id("files")})
def drop(ctx, args):
    doc = ctx.db.get(args["doc"])
    ctx.storage.delete(doc["storage"])
    ctx.db.delete(args["doc"])
"""


def _fetch(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


@pytest.mark.dynamodb_local
def test_aws_local_with_localstack_keeps_files_in_localstack_s3(
    tmp_path: Path,
    dynamodb_local_endpoint: str,
    localstack_endpoint: str,  # noqa: F811
) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "files.py").write_text(APP)
    host = localstack_endpoint.removeprefix("http://")
    with aws_local(
        functions,
        tmp_path / "data",
        table=f"f{uuid.uuid4().hex[:12]}",
        dynamodb_endpoint=dynamodb_local_endpoint,
        extra=["--localstack"],
        env={"LOCALSTACK_HOST": host},
    ) as server:
        client = ConvexHttpClient(server.url)
        upload = client.mutation("files:upload_url", {})
        status, _, body = _fetch(upload, b"\x89PNG bytes", {"Content-Type": "image/png"})
        assert status == 200, (body, server.log())
        storage_id = json.loads(body)["storageId"]
        doc = client.mutation("files:save", {"id": storage_id, "name": "a.png"})
        file_url = client.query("files:url", {"doc": doc})
        # served by LocalStack's S3, not by a moto server the harness started
        assert re.fullmatch(
            rf"{re.escape(localstack_endpoint)}/[^/]+/api/storage/[a-z0-9]{{32}}", file_url
        ), file_url
        assert _fetch(file_url) == (200, "image/png", b"\x89PNG bytes")
        client.mutation("files:drop", {"doc": doc})
        assert _fetch(file_url)[0] == 404
        assert server.stop() == 0, server.log()
