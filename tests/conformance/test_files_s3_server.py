"""The S3 blob adapter over real HTTP: moto's S3 server in its own process on
127.0.0.1 (what the local AWS harness runs), through each client it runs on:
botocore's and the Lambdas' lean one (`runtime/aws/s3_client.py`). What the
store wrote is checked through botocore's client.

tests/conformance/test_blob_store.py runs the contract in-process; this one
checks what only a wire shows: streamed bodies, ranged GETs, multipart
uploads (the server is told to take small parts, S3_UPLOAD_PART_MIN_SIZE, so
a few KB need several), an abort that leaves no parts, and Content-Type.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from runtime.aws.s3_client import S3Client
from runtime.files.port import new_key
from runtime.files.s3 import S3BlobStore
from tests.support.aws import lean_s3_client
from tests.support.awslocal import AWS_ENV
from tests.support.devserver import free_port

PART = 1024
BUCKET = "files"
PREFIX = "api/storage/"
START_SECONDS = 60


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **AWS_ENV, "S3_UPLOAD_PART_MIN_SIZE": str(PART)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's S3 server did not start (exit {process.poll()})")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def client(s3_endpoint: str) -> Any:
    c = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    c.create_bucket(Bucket=BUCKET)
    return c


@pytest.fixture(scope="module")
def lean(s3_endpoint: str) -> Iterator[S3Client]:
    c = lean_s3_client(s3_endpoint)
    yield c
    c.close()


@pytest.fixture(params=["botocore", "lean"])
def store(request: pytest.FixtureRequest, client: Any) -> S3BlobStore:
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


def test_multipart_with_small_parts(store: S3BlobStore, client: Any) -> None:
    key = new_key()
    data = os.urandom(PART * 3 + 100)
    info = store.put(key, [data[i : i + 300] for i in range(0, len(data), 300)], "image/png")
    assert info.size == len(data)
    head = client.head_object(Bucket=BUCKET, Key=PREFIX + key)
    assert head["ETag"].strip('"').endswith("-4")  # three full parts and the rest
    assert head["ContentType"] == "image/png"
    assert _read(store, key) == data
    assert _read(store, key, PART - 5, PART + 5) == data[PART - 5 : PART + 5]
    assert _uploads(client) == []


def test_a_failed_multipart_upload_leaves_nothing(store: S3BlobStore, client: Any) -> None:
    key = new_key()

    def chunks() -> Iterator[bytes]:
        yield os.urandom(PART * 2 + 1)  # two parts sent, the upload open
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        store.put(key, chunks())
    assert store.open(key) is None
    assert _uploads(client) == []  # aborted, no orphan parts


# ---- the lean client against botocore's, call by call -------------------------------


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_the_lean_client_refuses_as_botocore_does(client: Any, lean: S3Client) -> None:
    key = PREFIX + new_key()
    for c in (client, lean):
        assert _code(lambda c=c: c.head_object(Bucket=BUCKET, Key=key)) == "404"
        assert _code(lambda c=c: c.get_object(Bucket=BUCKET, Key=key)) == "NoSuchKey"
        assert _code(lambda c=c: c.get_object(Bucket="no-such-bucket", Key=key)) == ("NoSuchBucket")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"abc")
    for c in (client, lean):
        assert _code(lambda c=c: c.get_object(Bucket=BUCKET, Key=key, Range="bytes=5-9")) == (
            "InvalidRange"
        )
        c.delete_object(Bucket=BUCKET, Key=PREFIX + new_key())  # nothing there: no error


def test_any_key_travels_and_is_signed_as_botocore_reads_it(client: Any, lean: S3Client) -> None:
    for name in ("a b/c+d%20e.txt", "ünï/cödé ☃", "x~y!z*(1)'&$@=;:,?#[]"):
        key = PREFIX + name
        lean.put_object(Bucket=BUCKET, Key=key, Body=name.encode(), ContentType="text/plain")
        got = client.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == name.encode() and got["ContentType"] == "text/plain"
        body = lean.get_object(Bucket=BUCKET, Key=key)["Body"]
        with body:
            assert body.read() == name.encode()
        assert lean.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(name.encode())
        lean.delete_object(Bucket=BUCKET, Key=key)
        assert _code(lambda key=key: client.head_object(Bucket=BUCKET, Key=key)) == "404"


def test_listing_pages_as_botocore_does(client: Any, lean: S3Client) -> None:
    prefix = f"list-{new_key()}/"
    names = sorted(f"{prefix}{i:02d} {new_key()}" for i in range(5))
    for name in names:
        client.put_object(Bucket=BUCKET, Key=name, Body=b"x")
    for c in (client, lean):
        seen: list[tuple[str, int, bool]] = []
        token, pages = None, 0
        while True:
            more: dict[str, str] = {"ContinuationToken": token} if token else {}
            page = c.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=2, **more)
            pages += 1
            seen += [
                (o["Key"], o["Size"], o["LastModified"].tzinfo is not None)
                for o in page["Contents"]
            ]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        assert (pages, seen) == (3, [(n, 1, True) for n in names])
    assert "Contents" not in lean.list_objects_v2(Bucket=BUCKET, Prefix=f"none-{new_key()}/")
