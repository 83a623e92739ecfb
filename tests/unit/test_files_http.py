"""The file routes (runtime/http/storage_routes.py) and HTTP actions with
files, in-process: the real Starlette apps driven through ASGI over a real
SQLite backend and a real local blob directory. Requests are fed to the app
chunk by chunk, as a server would, so streamed (chunked) bodies are tested
as they arrive."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from runtime.backend import Backend
from runtime.files.local import LocalBlobStore
from runtime.files.port import BlobInfo
from runtime.http.api import make_api_app
from runtime.http.site import make_site_app
from runtime.http.storage_routes import byte_range
from runtime.limits import UPLOAD_QUEUE_CHUNKS, UPLOAD_URL_SECONDS
from runtime.store.sqlite import SqliteStore

FILES = """
from runtime import query, mutation, v

@mutation(args={})
def upload_url(ctx, args):
    return ctx.storage.generate_upload_url()

@query(args={"id": v.id("_storage")})
def url(ctx, args):
    return ctx.storage.get_url(args["id"])

@query(args={"id": v.id("_storage")})
def meta(ctx, args):
    return ctx.db.system.get(args["id"])

@query(args={})
def count(ctx, args):
    return len(ctx.db.system.query("_storage").collect())

@mutation(args={"id": v.id("_storage")})
def remove(ctx, args):
    ctx.storage.delete(args["id"])
"""

HTTP = """
from starlette.responses import JSONResponse, PlainTextResponse, Response
from runtime import HttpRouter, http_action

@http_action
async def store_body(ctx, request):
    sid = await ctx.storage.store(await request.body(), request.headers.get("content-type"))
    return JSONResponse({"storageId": sid})

@http_action
def serve_blob(ctx, request):
    sid = request.query_params["id"]
    meta = ctx.storage.get_metadata(sid)
    data = ctx.storage.get(sid)
    if meta is None or data is None:
        return PlainTextResponse("no such file", status_code=404)
    return Response(data, media_type=meta["contentType"] or "application/octet-stream")

http = HttpRouter()
http.route(path="/store", method="POST", handler=store_body)
http.route(path="/serve", method="GET", handler=serve_blob)
"""

URLS = {"CONVEX_CLOUD_URL": "http://127.0.0.1:1", "CONVEX_SITE_URL": "http://127.0.0.1:2"}
LIMIT = 1000
PNG = bytes(range(256)) * 3


class CountingBlobStore(LocalBlobStore):
    """The local blob directory, counting the bytes a put has consumed, so a
    test can see how far the request body ran ahead of the store."""

    consumed = 0

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> BlobInfo:
        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                CountingBlobStore.consumed += len(chunk)
                yield chunk

        return super().put(key, counted(), content_type)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    fns = tmp_path / "functions"
    fns.mkdir()
    (fns / "files.py").write_text(FILES)
    (fns / "http.py").write_text(HTTP)
    b = Backend(
        SqliteStore(str(tmp_path / "db.sqlite3")),
        fns,
        admin_key=None,
        urls=URLS,
        blobs=CountingBlobStore(tmp_path / "blobs"),
    )
    assert b.reload().ok, b.load_error
    yield b
    b.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    app: Any,
    method: str,
    url: str,
    chunks: Iterable[bytes] = (),
    headers: dict[str, str] | None = None,
    on_chunk: Any = None,
    *,
    stop_after: int | None = None,
    disconnect: bool = False,
) -> Answer:
    """One request through the ASGI app: the body handed over chunk by chunk
    (`on_chunk(i)` called as chunk i is taken), the answer collected. With
    `stop_after`, the client sends that many chunks and then nothing more
    until the answer is complete (a stalled client), or, with `disconnect`,
    goes away."""
    parts = urlsplit(url)
    pending = list(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 3210),
    }
    answer = Answer(0, {}, b"")

    async def run() -> None:
        done = anyio.Event()
        taken = 0

        async def receive() -> dict[str, Any]:
            nonlocal taken
            if stop_after is not None and taken >= stop_after:
                if not disconnect:
                    await done.wait()
                return {"type": "http.disconnect"}
            if taken < len(pending) or (taken == 0 and not pending):
                chunk = pending[taken] if pending else b""
                if on_chunk is not None:
                    on_chunk(taken)
                taken += 1
                return {"type": "http.request", "body": chunk, "more_body": taken < len(pending)}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")
                if not message.get("more_body"):
                    done.set()

        with anyio.fail_after(60):  # a bound on a hang, not a timed assertion
            await app(scope, receive, send)

    anyio.run(run)
    return answer


def call(backend: Backend, path: str, args: dict[str, Any] | None = None) -> Any:
    result = backend.executor.call(f"files:{path}", args or {})
    assert result.ok, result.error_text
    return result.value


def upload_path(backend: Backend) -> str:
    url: str = call(backend, "upload_url")
    assert url.startswith(URLS["CONVEX_CLOUD_URL"] + "/api/storage/upload?token=")
    return url[len(URLS["CONVEX_CLOUD_URL"]) :]


def blobs(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]


@pytest.fixture
def api(backend: Backend) -> Any:
    return make_api_app(backend, upload_limit=(LIMIT, "FILE_BYTES"))


def upload(api: Any, backend: Backend, data: bytes, content_type: str = "image/png") -> str:
    got = request(
        api,
        "POST",
        upload_path(backend),
        [data],
        {"content-type": content_type, "content-length": str(len(data))},
    )
    assert got.status == 200, got.body
    storage_id: str = got.json()["storageId"]
    return storage_id


def test_an_upload_stores_the_body_with_its_type_and_serves_it(api: Any, backend: Backend) -> None:
    storage_id = upload(api, backend, PNG)
    meta = call(backend, "meta", {"id": storage_id})
    assert meta["size"] == len(PNG) and meta["contentType"] == "image/png"
    assert meta["sha256"] == base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    url = call(backend, "url", {"id": storage_id})
    path = urlsplit(url).path
    got = request(api, "GET", path)
    assert got.status == 200 and got.body == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(PNG))
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["etag"] == f'"{meta["sha256"]}"'
    assert got.headers["digest"] == f"sha-256={meta['sha256']}"
    assert got.headers["x-content-type-options"] == "nosniff"
    # HEAD: the same headers, no body.
    head = request(api, "HEAD", path)
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == str(len(PNG))
    assert head.headers["content-type"] == "image/png"
    # A cached copy is still good while the ETag matches.
    again = request(api, "GET", path, headers={"if-none-match": got.headers["etag"]})
    assert (again.status, again.body) == (304, b"")


def test_a_file_without_a_type_is_served_as_octet_stream(api: Any, backend: Backend) -> None:
    got = request(api, "POST", upload_path(backend), [b"raw"])
    storage_id = got.json()["storageId"]
    assert call(backend, "meta", {"id": storage_id}).get("contentType") is None
    served = request(api, "GET", urlsplit(call(backend, "url", {"id": storage_id})).path)
    assert served.body == b"raw"
    assert served.headers["content-type"] == "application/octet-stream"


def test_an_empty_file(api: Any, backend: Backend) -> None:
    storage_id = upload(api, backend, b"", "text/plain")
    assert call(backend, "meta", {"id": storage_id})["size"] == 0
    path = urlsplit(call(backend, "url", {"id": storage_id})).path
    got = request(api, "GET", path)
    assert (got.status, got.body, got.headers["content-length"]) == (200, b"", "0")
    assert request(api, "GET", path, headers={"range": "bytes=0-"}).status == 416


def test_byte_ranges(api: Any, backend: Backend) -> None:
    storage_id = upload(api, backend, PNG)
    path = urlsplit(call(backend, "url", {"id": storage_id})).path
    size = len(PNG)
    for header, start, end in [
        ("bytes=0-9", 0, 10),
        ("bytes=700-", 700, size),
        ("bytes=-16", size - 16, size),
        ("bytes=760-5000", 760, size),  # past the end: up to the end
        ("bytes=-5000", 0, size),
    ]:
        got = request(api, "GET", path, headers={"range": header})
        assert got.status == 206, header
        assert got.body == PNG[start:end], header
        assert got.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert got.headers["content-length"] == str(end - start)
    for header in ["bytes=768-", "bytes=5000-6000", "bytes=-0"]:
        got = request(api, "GET", path, headers={"range": header})
        assert got.status == 416, header
        assert got.headers["content-range"] == f"bytes */{size}"
    # Several ranges, or a malformed one: the whole file (RFC 9110 allows it).
    for header in ["bytes=0-1,4-5", "items=0-1", "bytes=9-3"]:
        got = request(api, "GET", path, headers={"range": header})
        assert (got.status, got.body) == (200, PNG), header


def test_byte_range_parsing() -> None:
    assert byte_range(None, 10) is None
    assert byte_range("bytes=2-4", 10) == (2, 5)
    assert byte_range("bytes=-3", 10) == (7, 10)
    assert byte_range("bytes=5-", 10) == (5, 10)
    with pytest.raises(ValueError):
        byte_range("bytes=0-", 0)  # an empty file satisfies no range
    with pytest.raises(ValueError):
        byte_range("bytes=-1", 0)


def test_unknown_malformed_and_deleted_files_are_404(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    storage_id = upload(api, backend, PNG)
    path = urlsplit(call(backend, "url", {"id": storage_id})).path
    for bad in ["/api/storage/" + "0" * 32, "/api/storage/nothex", "/api/storage/" + "g" * 32]:
        got = request(api, "GET", bad)
        assert got.status == 404 and got.json()["code"] == "FILE_NOT_FOUND", bad
    assert request(api, "GET", "/api/storage/../../x").status == 404  # no route
    call(backend, "remove", {"id": storage_id})
    for method in ("GET", "HEAD"):
        assert request(api, method, path).status == 404
    assert blobs(tmp_path) == []


def test_a_used_url_is_refused_and_stores_nothing(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    path = upload_path(backend)
    assert request(api, "POST", path, [b"first"]).status == 200
    again = request(api, "POST", path, [b"second"])
    assert (again.status, again.json()["code"]) == (409, "UPLOAD_URL_USED")
    assert call(backend, "count") == 1 and len(blobs(tmp_path)) == 1


@pytest.mark.parametrize(
    ("mangle", "status", "code"),
    [
        (
            lambda p: p[:-3] + ("AAA" if not p.endswith("AAA") else "BBB"),
            403,
            "INVALID_UPLOAD_TOKEN",
        ),
        (lambda p: p.split("?")[0], 400, "MISSING_UPLOAD_TOKEN"),
        (lambda p: p.split("?")[0] + "?token=junk", 400, "INVALID_UPLOAD_TOKEN"),
    ],
)
def test_bad_tokens_are_refused_before_the_body_is_read(
    api: Any, backend: Backend, tmp_path: Path, mangle: Any, status: int, code: str
) -> None:
    taken: list[int] = []
    got = request(api, "POST", mangle(upload_path(backend)), [b"x"], on_chunk=taken.append)
    assert (got.status, got.json()["code"]) == (status, code)
    assert taken == [] and call(backend, "count") == 0 and blobs(tmp_path) == []


def test_an_expired_url_is_refused(
    api: Any, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = backend.files
    assert files is not None
    path = upload_path(backend)
    real = files._clock
    monkeypatch.setattr(files, "_clock", lambda: real() + UPLOAD_URL_SECONDS + 1)
    got = request(api, "POST", path, [b"late"])
    assert (got.status, got.json()["code"]) == (410, "UPLOAD_URL_EXPIRED")
    assert "expired" in got.json()["message"]
    assert call(backend, "count") == 0 and blobs(tmp_path) == []


def test_a_declared_length_over_the_limit_is_refused_at_once(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    taken: list[int] = []
    got = request(
        api,
        "POST",
        upload_path(backend),
        [b"x" * 10],
        {"content-length": str(LIMIT + 1)},
        on_chunk=taken.append,
    )
    assert (got.status, got.json()["code"]) == (413, "FILE_TOO_LARGE")
    assert "FILE_BYTES" in got.json()["message"] and "1,000" in got.json()["message"]
    assert taken == [] and call(backend, "count") == 0 and blobs(tmp_path) == []


def test_a_streamed_body_past_the_limit_is_refused_and_stores_nothing(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    path = upload_path(backend)
    taken: list[int] = []
    chunks = [b"y" * 100] * 50  # 5,000 bytes, no Content-Length (chunked)
    got = request(api, "POST", path, chunks, on_chunk=taken.append)
    assert (got.status, got.json()["code"]) == (413, "FILE_TOO_LARGE")
    assert "FILE_BYTES" in got.json()["message"]
    # Reading stopped soon after the limit was passed, not at the body's end.
    assert len(taken) <= LIMIT // 100 + 1 + UPLOAD_QUEUE_CHUNKS + 2
    assert call(backend, "count") == 0 and blobs(tmp_path) == []
    # The refused body did not use the URL up.
    assert request(api, "POST", path, [b"small"]).status == 200


def test_a_stalled_client_past_the_limit_is_answered_at_once(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    """Past the limit the route stops reading: it does not wait for the
    client's next chunk to answer 413."""
    got = request(api, "POST", upload_path(backend), [b"s" * 600] * 4, stop_after=2)
    assert (got.status, got.json()["code"]) == (413, "FILE_TOO_LARGE")
    assert call(backend, "count") == 0 and blobs(tmp_path) == []


def test_a_client_that_goes_away_mid_upload_leaves_nothing(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    path = upload_path(backend)
    got = request(api, "POST", path, [b"a" * 100] * 5, stop_after=3, disconnect=True)
    assert got.status == 400 and got.json()["code"] == "UPLOAD_INTERRUPTED"
    assert call(backend, "count") == 0 and blobs(tmp_path) == []
    assert request(api, "POST", path, [b"whole"]).status == 200


def test_a_large_upload_is_streamed_a_few_chunks_at_a_time(
    backend: Backend, tmp_path: Path
) -> None:
    """The body runs at most a few chunks ahead of the blob store."""
    api = make_api_app(backend)
    chunk = bytes(range(256)) * 256  # 64 KiB
    count = 160  # 10 MiB
    ahead: list[int] = []
    CountingBlobStore.consumed = 0

    def taken(i: int) -> None:
        ahead.append(i * len(chunk) - CountingBlobStore.consumed)

    got = request(api, "POST", upload_path(backend), [chunk] * count, on_chunk=taken)
    assert got.status == 200, got.body
    assert len(ahead) == count
    assert max(ahead) <= (2 * UPLOAD_QUEUE_CHUNKS + 2) * len(chunk)
    meta = call(backend, "meta", {"id": got.json()["storageId"]})
    assert meta["size"] == len(chunk) * count
    assert meta["sha256"] == base64.b64encode(hashlib.sha256(chunk * count).digest()).decode()


def test_cors_lets_a_browser_on_another_origin_upload_and_read(api: Any, backend: Backend) -> None:
    path = upload_path(backend)
    origin = {"origin": "http://localhost:5173"}
    preflight = request(
        api,
        "OPTIONS",
        path,
        headers={
            **origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    got = request(api, "POST", path, [PNG], {**origin, "content-type": "image/png"})
    assert got.status == 200 and got.headers["access-control-allow-origin"] == "*"
    file_path = urlsplit(call(backend, "url", {"id": got.json()["storageId"]})).path
    served = request(api, "GET", file_path, headers={**origin, "range": "bytes=0-3"})
    assert served.status == 206 and served.headers["access-control-allow-origin"] == "*"
    assert "content-range" in served.headers["access-control-expose-headers"].lower()


def test_http_actions_store_a_request_body_and_serve_stored_bytes(backend: Backend) -> None:
    site = make_site_app(backend)
    got = request(site, "POST", "/store", [PNG[:300], PNG[300:]], {"content-type": "image/gif"})
    assert got.status == 200, got.body
    storage_id = got.json()["storageId"]
    meta = call(backend, "meta", {"id": storage_id})
    assert (meta["size"], meta["contentType"]) == (len(PNG), "image/gif")
    served = request(site, "GET", f"/serve?id={storage_id}")
    assert served.status == 200 and served.body == PNG
    assert served.headers["content-type"] == "image/gif"
    call(backend, "remove", {"id": storage_id})
    assert request(site, "GET", f"/serve?id={storage_id}").status == 404


def test_without_file_storage_the_routes_say_so(tmp_path: Path) -> None:
    fns = tmp_path / "functions"
    fns.mkdir()
    b = Backend(SqliteStore(":memory:"), fns, admin_key=None, urls=URLS)
    try:
        app = make_api_app(b)
        got = request(app, "POST", "/api/storage/upload?token=x", [b"x"])
        assert (got.status, got.json()["code"]) == (404, "FILE_STORAGE_NOT_CONFIGURED")
        got = request(app, "GET", "/api/storage/" + "a" * 32)
        assert got.status == 404
    finally:
        b.close()


def test_a_digest_header_is_checked_and_a_mismatch_stores_nothing(
    api: Any, backend: Backend, tmp_path: Path
) -> None:
    data = b"checked bytes"
    right = base64.b64encode(hashlib.sha256(data).digest()).decode()
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    path = upload_path(backend)
    refused = request(api, "POST", path, [data], {"digest": f"sha-256={wrong}"})
    assert (refused.status, refused.json()["code"]) == (400, "CHECKSUM_MISMATCH")
    assert call(backend, "count") == 0 and blobs(tmp_path) == []
    malformed = request(api, "POST", path, [data], {"digest": "sha-256=nope"})
    assert (malformed.status, malformed.json()["code"]) == (400, "BAD_DIGEST")
    # The URL is still unused: the refused bodies were never committed.
    ok = request(api, "POST", path, [data], {"digest": f"md5=xyz, SHA-256={right}"})
    assert ok.status == 200, ok.body
    assert call(backend, "meta", {"id": ok.json()["storageId"]})["sha256"] == right
