"""The blob port's contract, on the local-directory adapter and the S3 adapter (on moto)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from runtime.files.local import LocalBlobStore
from runtime.files.port import BadBlobKey, BlobStore, new_key
from runtime.files.s3 import S3BlobStore

PART = 5 * 1024 * 1024  # S3's smallest part size, so multipart runs with a small blob


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        s: BlobStore = LocalBlobStore(tmp_path / "blobs")
        yield s
        s.close()
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="blobs")
        s = S3BlobStore(client, "blobs", part_size=PART)
        yield s
        s.close()


def _read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes | None:
    f = store.open(key, start, end)
    if f is None:
        return None
    with f:
        return f.read()


def test_round_trip_size_and_sha256(store: BlobStore) -> None:
    key = new_key()
    info = store.put(key, [b"hello ", b"world"])
    assert info.size == 11
    assert info.sha256 == base64.b64encode(hashlib.sha256(b"hello world").digest()).decode()
    assert _read(store, key) == b"hello world"
    assert store.size(key) == 11


def test_empty_blob(store: BlobStore) -> None:
    key = new_key()
    assert store.put(key, []).size == 0
    assert _read(store, key) == b""


def test_ranges(store: BlobStore) -> None:
    key = new_key()
    store.put(key, [b"0123456789"])
    assert _read(store, key, 2, 5) == b"234"
    assert _read(store, key, 7) == b"789"
    assert _read(store, key, 8, 100) == b"89"
    assert _read(store, key, 10) == b""


def test_missing_key(store: BlobStore) -> None:
    key = new_key()
    assert store.open(key) is None
    assert store.open(key, 1, 3) is None
    assert store.size(key) is None


def test_delete_is_idempotent(store: BlobStore) -> None:
    key = new_key()
    store.put(key, [b"x"])
    store.delete(key)
    store.delete(key)
    assert store.open(key) is None


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", "A" * 32, "x" * 31, "/" + "a" * 31])
def test_bad_keys_refused(store: BlobStore, bad: str) -> None:
    with pytest.raises(BadBlobKey):
        store.put(bad, [b"x"])
    with pytest.raises(BadBlobKey):
        store.open(bad)
    with pytest.raises(BadBlobKey):
        store.delete(bad)


def test_failed_put_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    key = new_key()

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield os.urandom(PART)  # past one part: S3 is mid multipart upload
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        store.put(key, chunks())
    assert store.open(key) is None
    if isinstance(store, LocalBlobStore):
        assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
    else:
        assert store._s3.list_multipart_uploads(Bucket="blobs").get("Uploads", []) == []


def test_streamed_put_memory_bounded(store: BlobStore) -> None:
    key = new_key()
    block = b"z" * (1024 * 1024)
    expected = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            expected.update(block)
            yield block

    if isinstance(store, S3BlobStore):
        # moto keeps the object in this process, so tracemalloc would count S3's copy:
        # check instead that the adapter never sends (so never buffers) more than a part.
        sent: list[int] = []
        real = store._s3

        class Spy:
            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

            def upload_part(self, **kw: object) -> object:
                sent.append(len(kw["Body"]))  # type: ignore[arg-type]
                return real.upload_part(**kw)

        store._s3 = Spy()
        info = store.put(key, chunks())
        assert max(sent) <= PART and len(sent) == 10
        assert info.size == 50 * 1024 * 1024
        assert info.sha256 == base64.b64encode(expected.digest()).decode()
        return
    tracemalloc.start()
    try:
        info = store.put(key, chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 50 * 1024 * 1024
    assert info.sha256 == base64.b64encode(expected.digest()).decode()
    assert peak < 20 * 1024 * 1024  # a few parts at most, never the 50 MB blob


def test_s3_multipart_for_large_blob() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="blobs")
        s = S3BlobStore(client, "blobs", part_size=PART)
        key = new_key()
        data = os.urandom(PART * 2 + 123)
        s.put(key, [data[i : i + 65536] for i in range(0, len(data), 65536)])
        head = client.head_object(Bucket="blobs", Key=key)
        assert head["ETag"].strip('"').endswith("-3")  # a 3-part multipart object
        assert _read(s, key) == data
        assert _read(s, key, PART - 1, PART + 1) == data[PART - 1 : PART + 1]


def test_local_modes(tmp_path: Path) -> None:
    s = LocalBlobStore(tmp_path / "blobs")
    key = new_key()
    s.put(key, [b"secret"])
    f = tmp_path / "blobs" / key[:2] / key
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700


def test_put_takes_a_content_type(store: BlobStore) -> None:
    key = new_key()
    store.put(key, [b"<svg/>"], "image/svg+xml")
    assert _read(store, key) == b"<svg/>"


@pytest.mark.parametrize("size", [10, PART + 1], ids=["single", "multipart"])
def test_s3_object_has_the_content_type(size: int) -> None:
    """S3 (and CloudFront in front of it) serves the file with the type it was stored with."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="blobs")
        s = S3BlobStore(client, "blobs", prefix="api/storage/", part_size=PART)
        typed, untyped = new_key(), new_key()
        s.put(typed, [b"x" * size], "image/png")
        s.put(untyped, [b"x" * size])
        assert client.head_object(Bucket="blobs", Key=f"api/storage/{typed}")["ContentType"] == (
            "image/png"
        )
        assert client.head_object(Bucket="blobs", Key=f"api/storage/{untyped}")["ContentType"] in (
            "binary/octet-stream",
            "application/octet-stream",
        )


def test_keys_lists_blobs_written_before_a_time(store: BlobStore) -> None:
    a, b = new_key(), new_key()
    store.put(a, [b"a"])
    store.put(b, [b"b"])
    assert sorted(store.keys(time.time() + 60)) == sorted([a, b])
    assert list(store.keys(time.time() - 3600)) == []
    store.delete(a)
    assert list(store.keys(time.time() + 60)) == [b]
