"""The S3 blob adapter against LocalStack's S3 (no Docker; tests/support/localstack.py
starts it from .venv-localstack): put/get/range/delete, Content-Type, multipart,
and an abort that leaves no parts.

LocalStack 4.9.2 enforces S3's 5 MiB minimum for every part but the last
(S3_UPLOAD_PART_MIN_SIZE in localstack/services/s3/constants.py, a constant,
not a setting), so the multipart tests use 5 MiB parts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from runtime.aws.s3_client import S3Client
from runtime.files.port import new_key
from runtime.files.s3 import S3BlobStore
from tests.support import localstack
from tests.support.aws import lean_s3_client
from tests.support.awslocal import AWS_ENV
from tests.support.localstack import localstack_endpoint  # noqa: F401 - the fixture

PART = 5 * 1024 * 1024  # LocalStack's (and S3's) minimum part size
BUCKET = "files"
PREFIX = "api/storage/"


@pytest.fixture(scope="module")
def client(localstack_endpoint: str) -> Any:  # noqa: F811
    c = boto3.client(
        "s3",
        endpoint_url=localstack_endpoint,
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    c.create_bucket(Bucket=BUCKET)
    return c


@pytest.fixture(scope="module")
def lean(localstack_endpoint: str) -> Iterator[S3Client]:  # noqa: F811
    c = lean_s3_client(localstack_endpoint)
    yield c
    c.close()


@pytest.fixture(params=["botocore", "lean"])
def store(request: pytest.FixtureRequest, client: Any) -> S3BlobStore:
    """The adapter on botocore's client and on the Lambdas' lean one
    (`runtime/aws/s3_client.py`); what it wrote is checked through botocore's."""
    used = client if request.param == "botocore" else request.getfixturevalue("lean")
    return S3BlobStore(used, BUCKET, prefix=PREFIX, part_size=PART)


def _read(store: S3BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes | None:
    f = store.open(key, start, end)
    if f is None:
        return None
    with f:
        return f.read()


def _uploads(client: Any) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_put_get_range_delete(store: S3BlobStore, client: Any) -> None:
    key = new_key()
    info = store.put(key, [b"hello ", b"world"], "text/plain")
    assert (info.size, store.size(key)) == (11, 11)
    assert _read(store, key) == b"hello world"
    assert _read(store, key, 6) == b"world"
    assert _read(store, key, 2, 5) == b"llo"
    assert _read(store, key, 11) == b""
    head = client.head_object(Bucket=BUCKET, Key=PREFIX + key)
    assert head["ContentType"] == "text/plain" and head["ContentLength"] == 11
    store.delete(key)
    store.delete(key)  # again: no error
    assert store.open(key) is None and store.open(key, 1, 2) is None
    assert store.size(key) is None


def test_an_empty_blob(store: S3BlobStore) -> None:
    key = new_key()
    assert store.put(key, []).size == 0
    assert _read(store, key) == b""


def test_multipart_keeps_bytes_and_content_type(store: S3BlobStore, client: Any) -> None:
    key = new_key()
    data = os.urandom(PART * 2 + 100)
    info = store.put(key, _chunks(data), "image/png")
    assert info.size == len(data)
    head = client.head_object(Bucket=BUCKET, Key=PREFIX + key, PartNumber=1)
    assert head["PartsCount"] == 3  # really multipart
    assert head["ContentType"] == "image/png"
    assert _read(store, key) == data
    assert _read(store, key, PART - 5, PART + 5) == data[PART - 5 : PART + 5]
    assert _uploads(client) == []
    store.delete(key)
    assert store.open(key) is None


class _Broken(Exception):
    pass


def test_a_failed_multipart_put_aborts_and_leaves_no_parts(store: S3BlobStore, client: Any) -> None:
    key = new_key()

    def chunks() -> Iterator[bytes]:
        yield os.urandom(PART + 10)  # one part uploaded
        raise _Broken

    with pytest.raises(_Broken):
        store.put(key, chunks(), "image/png")
    assert _uploads(client) == []
    assert store.open(key) is None


def test_without_its_venv_the_fixture_fails_saying_run_make_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localstack, "LOCALSTACK_PYTHON", tmp_path / "absent" / "python")
    with (
        pytest.raises(pytest.fail.Exception, match="run `make test`"),
        localstack.running_localstack(),
    ):
        pass
