"""Files on the local AWS harness: the Lambdas keep bytes in S3 (moto's S3
server started by the harness, or the one AWS_ENDPOINT_URL_S3 names), as
objects `api/storage/<key>`, and file URLs read the bucket directly, with the
object's Content-Type and Range support, as CloudFront serves them on AWS."""

from __future__ import annotations

import contextlib
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import boto3
import pytest
from convex.http_client import ConvexHttpClient

from runtime.aws import backend as lambda_backend_module
from runtime.aws.backend import lambda_backend
from runtime.aws.s3_client import S3Client
from runtime.aws.settings import Settings, record_deployment_urls
from runtime.emulator.s3 import files_env, running_s3, s3_endpoint, setup_bucket
from runtime.files.s3 import S3BlobStore
from runtime.functions.storage import StorageNotAvailable
from runtime.store.dynamodb import create_table
from tests.support.awslocal import AWS_ENV, aws_local

WAIT = 30

APP = """
from runtime import action, mutation, query, v


@action(args={"text": v.string(), "type": v.string()})
def put(ctx, args):
    storage_id = ctx.storage.store(args["text"].encode(), args["type"])
    return {"id": storage_id, "url": ctx.storage.get_url(storage_id)}


@mutation(args={"id": v.id("_storage")})
def drop(ctx, args):
    ctx.storage.delete(args["id"])


@query(args={"id": v.id("_storage")})
def url(ctx, args):
    return ctx.storage.get_url(args["id"])
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "files.py").write_text(APP)
    return functions


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@contextlib.contextmanager
def _moto_s3() -> Iterator[str]:
    """A moto S3 server of the test's own (the harness is told to use it)."""
    with running_s3(localstack=False) as endpoint:
        yield endpoint


# ---- choosing the S3 and the Lambdas' settings --------------------------------


def test_the_s3_endpoint_is_chosen_in_order() -> None:
    assert s3_endpoint(False, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}) == (
        "http://127.0.0.1:9"
    )
    assert s3_endpoint(False, {"AWS_ENDPOINT_URL": "http://127.0.0.1:8"}) is None  # start moto
    assert s3_endpoint(False, {}) is None
    assert s3_endpoint(True, {}) == "http://localhost:4566"


def test_files_env_names_the_bucket_its_url_and_the_endpoint() -> None:
    assert files_env("http://127.0.0.1:5/", "b") == {
        "PYCONVEX_FILES_BUCKET": "b",
        "PYCONVEX_FILES_URL": "http://127.0.0.1:5/b/api/storage",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:5",
    }


def test_settings_read_the_files_bucket_and_url() -> None:
    base = {"PYCONVEX_TABLE": "t"}
    none = Settings.from_env(base)
    assert (none.files_bucket, none.files_url) == (None, None)
    given = Settings.from_env(
        {**base, "PYCONVEX_FILES_BUCKET": "files", "PYCONVEX_FILES_URL": "http://x/files"}
    )
    assert (given.files_bucket, given.files_url) == ("files", "http://x/files")


@pytest.fixture
def lambda_table(
    app: Path, aws_env: None, monkeypatch: pytest.MonkeyPatch, dynamodb_local_endpoint: str
) -> str:
    """The Lambdas' environment for `app` on a fresh table in DynamoDB Local."""
    table = f"f{uuid.uuid4().hex[:12]}"
    create_table(boto3.client("dynamodb", endpoint_url=dynamodb_local_endpoint), table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb_local_endpoint)
    monkeypatch.setenv("PYCONVEX_TABLE", table)
    monkeypatch.setenv("PYCONVEX_FUNCTIONS", str(app))
    monkeypatch.delenv("PYCONVEX_FILES_BUCKET", raising=False)
    monkeypatch.delenv("PYCONVEX_FILES_URL", raising=False)
    return table


@pytest.mark.dynamodb_local
def test_the_lambda_backend_stores_files_in_the_bucket(
    lambda_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's backend puts blobs at `api/storage/<key>` in the named
    bucket, with their Content-Type, and file URLs point at PYCONVEX_FILES_URL."""
    with _moto_s3() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint)
        setup_bucket(client, "files")
        for name, value in files_env(endpoint, "files").items():
            monkeypatch.setenv(name, value)
        lambda_backend_module.reset()
        try:
            backend, _ = lambda_backend()
            assert backend.files is not None
            assert isinstance(backend.files.blobs, S3BlobStore)
            storage_id = backend.files.store([b"hi"], "text/plain")
            keys = [o["Key"] for o in client.list_objects_v2(Bucket="files")["Contents"]]
            assert len(keys) == 1 and keys[0].startswith("api/storage/")
            key = keys[0].removeprefix("api/storage/")
            assert backend.files.file_url(key) == f"{endpoint}/files/api/storage/{key}"
            head = client.head_object(Bucket="files", Key=keys[0])
            assert head["ContentType"] == "text/plain" and storage_id
            # through the Lambdas' own S3 client, not botocore's (a cold start's ~200 ms)
            assert isinstance(backend.files.blobs._s3._client, S3Client)
        finally:
            lambda_backend_module.reset()


@pytest.mark.dynamodb_local
def test_a_function_without_a_bucket_has_no_file_storage(lambda_table: str) -> None:
    """The stream function's case: no PYCONVEX_FILES_BUCKET, no S3 client."""
    lambda_backend_module.reset()
    try:
        backend, _ = lambda_backend()
        assert backend.files is None
    finally:
        lambda_backend_module.reset()


# ---- the harness, end to end ------------------------------------------------------


def _files_round_trip(url: str, s3: str, bucket: str) -> None:
    client = ConvexHttpClient(url)
    stored = client.action("files:put", {"text": "0123456789", "type": "image/png"})
    file_url = stored["url"]
    assert re.fullmatch(rf"{re.escape(s3)}/{bucket}/api/storage/[a-z0-9]{{32}}", file_url)
    status, headers, body = _get(file_url)
    assert (status, body) == (200, b"0123456789")
    assert headers["Content-Type"] == "image/png"
    status, headers, body = _get(file_url, {"Range": "bytes=2-4"})
    assert (status, body) == (206, b"234")
    assert headers["Content-Range"] == "bytes 2-4/10"
    assert client.query("files:url", {"id": stored["id"]}) == file_url
    client.mutation("files:drop", {"id": stored["id"]})
    assert client.query("files:url", {"id": stored["id"]}) is None
    assert _get(file_url)[0] == 404  # deleted at once


@pytest.mark.dynamodb_local
def test_aws_local_serves_files_from_its_own_moto_s3(
    app: Path, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    table = f"f{uuid.uuid4().hex[:12]}"
    with aws_local(
        app, tmp_path / "data", table=table, dynamodb_endpoint=dynamodb_local_endpoint
    ) as server:
        found = re.search(r"S3 (http://127\.0\.0\.1:\d+) bucket (\S+)", server.log())
        assert found, server.log()
        s3, bucket = found.group(1), found.group(2)
        _files_round_trip(server.url, s3, bucket)
        assert server.stop() == 0, server.log()
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(s3, timeout=2)
    assert not isinstance(refused.value, urllib.error.HTTPError)  # stopped with the harness


@pytest.mark.dynamodb_local
def test_aws_local_uses_the_s3_at_aws_endpoint_url_s3(
    app: Path, tmp_path: Path, dynamodb_local_endpoint: str, aws_env: None
) -> None:
    table = f"f{uuid.uuid4().hex[:12]}"
    with (
        _moto_s3() as s3,
        aws_local(
            app,
            tmp_path / "data",
            table=table,
            dynamodb_endpoint=dynamodb_local_endpoint,
            env={"AWS_ENDPOINT_URL_S3": s3},
        ) as server,
    ):
        assert f"S3 {s3} bucket pyconvex-files" in server.log()
        client = boto3.client("s3", endpoint_url=s3)
        assert "pyconvex-files" in [b["Name"] for b in client.list_buckets()["Buckets"]]
        _files_round_trip(server.url, s3, "pyconvex-files")
        stored = ConvexHttpClient(server.url).action("files:put", {"text": "x", "type": "a/b"})
        key = stored["url"].rsplit("/", 1)[1]
        assert (
            client.get_object(Bucket="pyconvex-files", Key=f"api/storage/{key}")["Body"].read()
            == b"x"
        )


@pytest.mark.dynamodb_local
def test_the_stream_functions_queries_get_file_urls_without_s3(
    lambda_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream function re-runs live queries, which may call get_url: it is
    given the bucket's name (template.yaml) but no S3 access, and needs none,
    since a URL comes from `_storage` alone. Without the name the query fails."""
    with _moto_s3() as endpoint:
        setup_bucket(boto3.client("s3", endpoint_url=endpoint), "files")
        for name, value in files_env(endpoint, "files").items():
            monkeypatch.setenv(name, value)
        lambda_backend_module.reset()
        try:
            backend, _ = lambda_backend()
            assert backend.files is not None
            storage_id = backend.files.store([b"pic"], "image/png")
            record_deployment_urls(backend.store, "https://d.example")
        finally:
            lambda_backend_module.reset()
    # The stream function: the bucket's name, no files URL, no S3 to reach.
    monkeypatch.delenv("PYCONVEX_FILES_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    try:
        backend, _ = lambda_backend()
        result = backend.executor.call("files:url", {"id": storage_id})
        assert result.error is None, result.error_message
        assert re.fullmatch(r"https://d\.example/api/storage/[a-z0-9]{32}", result.value)
        lambda_backend_module.reset()
        monkeypatch.delenv("PYCONVEX_FILES_BUCKET")
        backend, _ = lambda_backend()
        result = backend.executor.call("files:url", {"id": storage_id})
        assert isinstance(result.error, StorageNotAvailable)
    finally:
        lambda_backend_module.reset()
