"""`export --include-files` and `import` of a zip with files through the CLI
and two dev servers (the bytes travel streamed over the admin routes both
ways); a zip whose file does not match its line is refused and leaves
nothing behind on the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from convex.http_client import ConvexHttpClient

from tests.support.devserver import ROOT, DevServer

FUNCTIONS = """
from runtime import action, mutation, query, v


@action(args={"data": v.bytes(), "type": v.string()})
def put(ctx, args):
    return ctx.storage.store(args["data"], args["type"])


@action(args={"id": v.id("_storage")})
def read(ctx, args):
    return ctx.storage.get(args["id"])


@mutation(args={"file": v.id("_storage"), "caption": v.string()})
def note(ctx, args):
    return ctx.db.insert("notes", args)


@query(args={})
def state(ctx, args):
    return {
        "notes": ctx.db.query("notes").collect(),
        "files": ctx.db.system.query("_storage").collect(),
    }
"""

BIG = os.urandom(3 * 1024 * 1024 + 17)  # many chunks each way
SMALL = b"a small text file\n"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "files.py").write_text(FUNCTIONS)
    return folder


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def state(server: DevServer) -> dict[str, Any]:
    result: dict[str, Any] = ConvexHttpClient(server.url).query("files:state")
    return result


def blobs(server: DevServer) -> list[Path]:
    return [p for p in (server.data / "files").rglob("*") if p.is_file()]


def test_files_round_trip_through_the_cli(
    start_server: Callable[..., DevServer], app: Path, tmp_path: Path
) -> None:
    source, target = start_server(app), start_server(app)
    client = ConvexHttpClient(source.url)
    big = client.action("files:put", {"data": BIG, "type": "application/octet-stream"})
    small = client.action("files:put", {"data": SMALL, "type": "text/plain"})
    client.mutation("files:note", {"file": big, "caption": "big"})
    client.mutation("files:note", {"file": small, "caption": "small"})

    plain = tmp_path / "plain.zip"
    done = ok(source.cli("export", "--path", str(plain)))
    assert "exported 2 documents from 1 tables to" in done.stdout
    with zipfile.ZipFile(plain) as z:
        assert not [n for n in z.namelist() if n.startswith("_storage")]

    snap = tmp_path / "snap.zip"
    done = ok(source.cli("export", "--path", str(snap), "--include-files"))
    assert "exported 2 documents from 1 tables and 2 files to" in done.stdout
    with zipfile.ZipFile(snap) as z:
        assert z.read(f"_storage/{big}.bin") == BIG
        assert z.read(f"_storage/{small}.txt") == SMALL

    done = ok(target.cli("import", str(snap)))
    assert "imported 2 files" in done.stdout
    assert "imported 2 documents into notes" in done.stdout
    assert state(target) == state(source)  # ids, creation times, metadata, notes
    reader = ConvexHttpClient(target.url)
    assert reader.action("files:read", {"id": big}) == BIG
    assert reader.action("files:read", {"id": small}) == SMALL
    assert len(blobs(target)) == 2

    # The admin file route: 401 without the key, 400 for a non-id, 404 once deleted.
    route = f"{target.url}/api/admin/export/file"
    admin = {"Authorization": f"Convex {target.admin_key}"}
    assert requests.get(f"{route}/{small}", timeout=30).status_code in (401, 403)
    assert requests.get(f"{route}/{small}", headers=admin, timeout=30).content == SMALL
    assert requests.get(f"{route}/nonsense", headers=admin, timeout=30).status_code == 400
    assert requests.get(f"{route}/{state(target)['notes'][0]['_id']}", headers=admin,
                        timeout=30).status_code == 400  # fmt: skip

    # --replace into the same backend: the same files stay, with their bytes.
    done = ok(target.cli("import", str(snap), "--replace"))
    assert "imported 2 files (replacing 2)" in done.stdout
    assert state(target) == state(source)
    assert reader.action("files:read", {"id": big}) == BIG


def test_a_file_that_does_not_match_its_line_is_refused(
    start_server: Callable[..., DevServer], app: Path, tmp_path: Path
) -> None:
    source, target = start_server(app), start_server(app)
    client = ConvexHttpClient(source.url)
    first = client.action("files:put", {"data": SMALL, "type": "text/plain"})
    second = client.action("files:put", {"data": SMALL * 2, "type": "text/plain"})
    client.mutation("files:note", {"file": first, "caption": "one"})
    snap = tmp_path / "snap.zip"
    ok(source.cli("export", "--path", str(snap), "--include-files"))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(snap) as z, zipfile.ZipFile(bad, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == f"_storage/{second}.txt":
                data = data.upper()  # same size: only the digest tells
            out.writestr(info, data)

    done = target.cli("import", str(bad))
    assert done.returncode == 1
    assert f"_storage/{second}.txt" in done.stderr and "do not match" in done.stderr
    assert state(target) == {"notes": [], "files": []}
    assert blobs(target) == []

    # A line whose size disagrees with the zip is refused by the CLI's own
    # check, before the upload.
    worse = tmp_path / "worse.zip"
    with zipfile.ZipFile(snap) as z, zipfile.ZipFile(worse, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "_storage/documents.jsonl":
                lines = [json.loads(x) for x in data.splitlines()]
                lines[0]["size"] += 1
                data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
            out.writestr(info, data)
    done = target.cli("import", str(worse))
    assert done.returncode == 1 and "says" in done.stderr
    assert state(target) == {"notes": [], "files": []}


def test_files_round_trip_on_the_aws_shell(
    dynamodb_local_endpoint: str, app: Path, tmp_path: Path
) -> None:
    """The same commands against the local AWS harness (the HTTP Lambda
    behind the API Gateway emulator, files in its S3): small files, under
    the Lambda's payload cap."""
    from tests.support.awslocal import start_aws_local

    started = []
    try:
        for name in ("source", "target"):
            started.append(
                start_aws_local(
                    app,
                    tmp_path / name,
                    table=f"fsnap{name}{uuid.uuid4().hex[:8]}",
                    dynamodb_endpoint=dynamodb_local_endpoint,
                )
            )
        source, target = started

        def cli(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
            return ok(
                subprocess.run(
                    [sys.executable, "-m", "runtime", *args, "--url", server.url,
                     "--data", str(server.data)],
                    capture_output=True, text=True, timeout=120, cwd=ROOT,
                )
            )  # fmt: skip

        client = ConvexHttpClient(source.url)
        data = os.urandom(300_000)
        first = client.action("files:put", {"data": data, "type": "image/png"})
        client.mutation("files:note", {"file": first, "caption": "on aws"})
        snap = tmp_path / "snap.zip"
        done = cli(source, "export", "--path", str(snap), "--include-files")
        assert "and 1 files" in done.stdout
        with zipfile.ZipFile(snap) as z:
            assert z.read(f"_storage/{first}.png") == data
        done = cli(target, "import", str(snap))
        assert "imported 1 files" in done.stdout
        assert ConvexHttpClient(target.url).query("files:state") == client.query("files:state")
        assert ConvexHttpClient(target.url).action("files:read", {"id": first}) == data
    finally:
        for server in started:
            server.stop()
