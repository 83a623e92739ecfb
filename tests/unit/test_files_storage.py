"""File storage's core (runtime/files/storage.py, runtime/functions/storage.py):
`ctx.storage` by kind, the `_storage` table, upload tokens, delete on commit,
on a real SQLite store and a real local blob directory."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.files.local import LocalBlobStore
from runtime.files.storage import ChecksumMismatch, FileTooLarge, key_of
from runtime.files.tokens import UploadRefused
from runtime.functions.executor import ArgumentsInvalid
from runtime.limits import FILE_ORPHAN_SECONDS, UPLOAD_URL_SECONDS
from runtime.store.sqlite import SqliteStore
from runtime.values import make_id

FUNCTIONS = """
from runtime import query, mutation, action, v

@mutation(args={})
def upload_url(ctx, args):
    return ctx.storage.generate_upload_url()

@query(args={"id": v.id("_storage")})
def url(ctx, args):
    return ctx.storage.get_url(args["id"])

@query(args={"id": v.id("_storage")})
def meta(ctx, args):
    return ctx.db.system.get(args["id"])

@query(args={"id": v.string()})
def metadata(ctx, args):
    return ctx.storage.get_metadata(args["id"])

@action(args={"id": v.string()})
def metadata_in_action(ctx, args):
    return ctx.storage.get_metadata(args["id"])

@query(args={})
def files(ctx, args):
    return ctx.db.system.query("_storage").collect()

@mutation(args={"id": v.id("_storage"), "fail": v.boolean()})
def remove(ctx, args):
    ctx.storage.delete(args["id"])
    ctx.db.insert("notes", {"removed": args["id"]})
    if args["fail"]:
        raise ValueError("rolled back")

@action(args={"text": v.string()})
def put(ctx, args):
    return ctx.storage.store(args["text"].encode(), "text/plain")

@action(args={"id": v.id("_storage")})
def read(ctx, args):
    data = ctx.storage.get(args["id"])
    return None if data is None else data.decode()

@action(args={"text": v.string()})
async def put_async(ctx, args):
    sid = await ctx.storage.store(args["text"].encode())
    back = await ctx.storage.get(sid)
    return [sid, back.decode(), await ctx.storage.get_url(sid) is not None]

@action(args={"id": v.id("_storage")})
def drop(ctx, args):
    ctx.storage.delete(args["id"])

@query(args={})
def store_in_query(ctx, args):
    return ctx.storage.store(b"x")

@mutation(args={"id": v.string()})
def delete_any(ctx, args):
    ctx.storage.delete(args["id"])
"""

URLS = {"CONVEX_CLOUD_URL": "http://127.0.0.1:1", "CONVEX_SITE_URL": "http://127.0.0.1:2"}


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    fns = tmp_path / "functions"
    fns.mkdir()
    (fns / "files.py").write_text(FUNCTIONS)
    b = Backend(
        SqliteStore(str(tmp_path / "db.sqlite3")),
        fns,
        admin_key=None,
        urls=URLS,
        blobs=LocalBlobStore(tmp_path / "blobs"),
    )
    assert b.reload().ok, b.load_error
    yield b
    b.close()


def _call(backend: Backend, path: str, args: dict[str, Any] | None = None) -> Any:
    result = backend.executor.call(f"files:{path}", args or {})
    assert result.ok, result.error_text
    return result.value


def _fail(backend: Backend, path: str, args: dict[str, Any] | None = None) -> str:
    result = backend.executor.call(f"files:{path}", args or {})
    assert not result.ok
    return result.error_text or ""


def _token(url: str) -> str:
    return url.split("token=", 1)[1]


def _upload(backend: Backend, data: bytes, content_type: str | None = "image/png") -> str:
    files = backend.files
    assert files is not None
    ticket = files.check_upload(_token(_call(backend, "upload_url")))
    return files.accept_upload(ticket, [data[:3], data[3:]], content_type)


def _blob_count(tmp_path: Path) -> int:
    return sum(1 for p in (tmp_path / "blobs").rglob("*") if p.is_file())


def test_an_upload_is_a_file_with_convex_metadata_and_a_url(backend: Backend) -> None:
    data = b"\x89PNG not really"
    sid = _upload(backend, data)
    meta = _call(backend, "meta", {"id": sid})
    assert meta["_id"] == sid and isinstance(meta["_creationTime"], float)
    assert meta["size"] == len(data)
    assert meta["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert meta["contentType"] == "image/png"
    assert set(meta) == {"_id", "_creationTime", "sha256", "size", "contentType"}
    url = _call(backend, "url", {"id": sid})
    assert url == f"http://127.0.0.1:1/api/storage/{key_of(sid)}"
    assert [d["_id"] for d in _call(backend, "files")] == [sid]
    assert backend.files is not None and backend.files.read(sid) == data


def test_upload_without_content_type_has_none(backend: Backend) -> None:
    sid = _upload(backend, b"abc", None)
    assert "contentType" not in _call(backend, "meta", {"id": sid})


def test_an_upload_url_is_single_use(backend: Backend, tmp_path: Path) -> None:
    files = backend.files
    assert files is not None
    token = _token(_call(backend, "upload_url"))
    ticket = files.check_upload(token)
    files.accept_upload(ticket, [b"one"], None)
    with pytest.raises(UploadRefused) as refused:
        files.check_upload(token)
    assert refused.value.status == 409 and "used already" in refused.value.message
    # Two uploads that both passed the check before either committed: one stores.
    with pytest.raises(UploadRefused):
        files.accept_upload(ticket, [b"two"], None)
    assert len(_call(backend, "files")) == 1
    assert _blob_count(tmp_path) == 1


def test_tampered_and_foreign_tokens_are_refused(backend: Backend) -> None:
    files = backend.files
    assert files is not None
    token = _token(_call(backend, "upload_url"))
    body, mac = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad, status in [
        (f"{flipped}.{mac}", 403),
        (f"{body}.{mac[:-2]}xx", 403),
        ("nonsense", 400),
        ("", 400),
        (f"{body}", 400),
    ]:
        with pytest.raises(UploadRefused) as refused:
            files.check_upload(bad)
        assert refused.value.status == status, bad


def test_an_expired_url_is_refused(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    files = backend.files
    assert files is not None
    token = _token(_call(backend, "upload_url"))
    real = files._clock
    monkeypatch.setattr(files, "_clock", lambda: real() + UPLOAD_URL_SECONDS + 1)
    with pytest.raises(UploadRefused) as refused:
        files.check_upload(token)
    assert refused.value.status == 410 and "expired" in refused.value.message


def test_a_too_large_upload_stores_nothing(backend: Backend, tmp_path: Path) -> None:
    files = backend.files
    assert files is not None
    ticket = files.check_upload(_token(_call(backend, "upload_url")))
    with pytest.raises(FileTooLarge) as too_large:
        files.accept_upload(ticket, [b"x" * 10, b"y" * 10], None, max_bytes=15)
    assert "FILE_BYTES" in too_large.value.message and "15" in too_large.value.message
    assert _call(backend, "files") == [] and _blob_count(tmp_path) == 0
    # The URL was not used up by the refused body.
    files.accept_upload(ticket, [b"small"], None)


def test_delete_in_a_mutation_takes_effect_only_if_it_commits(
    backend: Backend, tmp_path: Path
) -> None:
    sid = _upload(backend, b"keep me")
    assert "rolled back" in _fail(backend, "remove", {"id": sid, "fail": True})
    assert _call(backend, "url", {"id": sid}) is not None
    assert backend.files is not None and backend.files.read(sid) == b"keep me"
    assert _blob_count(tmp_path) == 1
    _call(backend, "remove", {"id": sid, "fail": False})
    assert _call(backend, "url", {"id": sid}) is None
    assert _call(backend, "meta", {"id": sid}) is None
    assert _blob_count(tmp_path) == 0
    assert "no file" in _fail(backend, "remove", {"id": sid, "fail": False})


def test_actions_store_read_and_delete(backend: Backend, tmp_path: Path) -> None:
    sid = _call(backend, "put", {"text": "hello"})
    assert _call(backend, "read", {"id": sid}) == "hello"
    assert _call(backend, "meta", {"id": sid})["contentType"] == "text/plain"
    got = _call(backend, "put_async", {"text": "async"})
    assert got[1:] == ["async", True]
    _call(backend, "drop", {"id": sid})
    assert _call(backend, "read", {"id": sid}) is None
    assert _blob_count(tmp_path) == 1  # the async one


def test_storage_calls_outside_their_kind_say_where_they_belong(backend: Backend) -> None:
    assert "store files from an action" in _fail(backend, "store_in_query")
    text = _fail(backend, "delete_any", {"id": "not-an-id"})
    assert "is not a storage id" in text


def test_v_id_storage_refuses_other_tables_ids(backend: Backend) -> None:
    sid = _upload(backend, b"a")
    other = make_id("notes", bytes.fromhex(key_of(sid)))
    with pytest.raises(ArgumentsInvalid, match=re.escape('v.id("_storage")')):
        backend.executor.call("files:url", {"id": other})


def test_without_a_blob_store_storage_says_it_is_not_configured(tmp_path: Path) -> None:
    fns = tmp_path / "functions"
    fns.mkdir()
    (fns / "files.py").write_text(FUNCTIONS)
    b = Backend(SqliteStore(":memory:"), fns, admin_key=None, urls=URLS)
    assert b.reload().ok
    text = _fail(b, "upload_url")
    assert "file storage is not configured" in text
    b.close()


def test_get_metadata_reads_as_convex_file_metadata(backend: Backend) -> None:
    data = b"some bytes"
    sid = _upload(backend, data, "text/plain")
    expected = {
        "storageId": sid,
        "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "size": len(data),
        "contentType": "text/plain",
    }
    assert _call(backend, "metadata", {"id": sid}) == expected
    assert _call(backend, "metadata_in_action", {"id": sid}) == expected
    untyped = _upload(backend, b"x", None)
    assert _call(backend, "metadata", {"id": untyped})["contentType"] is None
    _call(backend, "drop", {"id": sid})
    assert _call(backend, "metadata", {"id": sid}) is None
    assert _call(backend, "metadata_in_action", {"id": sid}) is None
    assert "is not a storage id" in _fail(backend, "metadata", {"id": "nope"})


def test_the_example_app_sends_lists_and_removes_images(tmp_path: Path) -> None:
    app = Path(__file__).resolve().parents[2] / "functions"
    b = Backend(
        SqliteStore(":memory:"), app, admin_key=None, urls=URLS, blobs=LocalBlobStore(tmp_path)
    )
    assert b.reload().ok, b.load_error
    files = b.files
    assert files is not None
    url = b.executor.call("messages:generate_upload_url", {}).value
    sid = files.accept_upload(files.check_upload(_token(url)), [b"img"], "image/png")
    assert b.executor.call("messages:send_image", {"storageId": sid, "author": "ann"}).ok
    assert b.executor.call("messages:send", {"body": "hi", "author": "bob"}).ok
    listed = b.executor.call("messages:list", {}).value
    assert [m["format"] for m in listed] == ["text", "image"]
    assert listed[1]["url"] == files.file_url(key_of(sid)) and "url" not in listed[0]
    assert b.executor.call("messages:remove", {"id": listed[1]["_id"]}).ok
    assert files.meta(sid) is None and files.read(sid) is None
    b.close()


def test_size_is_a_float64_and_store_checks_a_given_sha256(
    backend: Backend, tmp_path: Path
) -> None:
    sid = _upload(backend, b"four")
    size = _call(backend, "meta", {"id": sid})["size"]
    assert type(size) is float and size == 4.0  # Convex's `_storage.size: v.float64()`
    files = backend.files
    assert files is not None
    digest = base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    with pytest.raises(ChecksumMismatch):
        files.store([b"not the data"], sha256=digest)
    assert _blob_count(tmp_path) == 1
    assert files.read(files.store([b"data"], sha256=digest)) == b"data"


def test_the_sweep_removes_only_old_blobs_without_a_document(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = backend.files
    assert files is not None
    kept = _upload(backend, b"referenced")
    orphan, fresh = secrets.token_hex(16), secrets.token_hex(16)
    files.blobs.put(orphan, [b"left by a crash"])
    files.blobs.put(fresh, [b"a document is about to commit"])
    old = time.time() - 2 * FILE_ORPHAN_SECONDS
    os.utime(tmp_path / "blobs" / orphan[:2] / orphan, (old, old))
    os.utime(tmp_path / "blobs" / key_of(kept)[:2] / key_of(kept), (old, old))
    assert files.sweep_orphans() == 1
    assert files.blobs.size(orphan) is None
    assert files.blobs.size(fresh) is not None  # younger than FILE_ORPHAN_SECONDS
    assert files.read(kept) == b"referenced"
    assert files.sweep_orphans() == 0
