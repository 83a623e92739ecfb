"""`export` / `import` through the CLI and dev servers, on an app with bytes
and int64 fields in two tables. (The bank app: test_export_import.py.)"""

from __future__ import annotations

import secrets
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from convex import ConvexInt64
from convex.http_client import ConvexHttpClient

from tests.support.devserver import ROOT, DevServer, free_port

SCHEMA = """
from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "files": define_table({"name": v.string(), "data": v.bytes(), "size": v.int64()})
        .index("by_name", ["name"]),
        "tags": define_table({"label": v.string()}),
    }
)
"""

FILES = """
from runtime import mutation, query, v


@mutation(args={"name": v.string(), "data": v.bytes(), "size": v.int64()})
def add(ctx, args):
    return ctx.db.insert("files", args)


@mutation(args={"label": v.string()})
def tag(ctx, args):
    return ctx.db.insert("tags", args)


@query(args={})
def everything(ctx, args):
    return {"files": ctx.db.query("files").collect(), "tags": ctx.db.query("tags").collect()}
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "schema.py").write_text(SCHEMA)
    (folder / "files.py").write_text(FILES)
    return folder


def everything(server: DevServer) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = ConvexHttpClient(server.url).query("files:everything")
    return result


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def test_round_trip_into_a_fresh_backend_then_modes(
    start_server: Callable[..., DevServer], app: Path, tmp_path: Path
) -> None:
    source, target = start_server(app), start_server(app)
    client = ConvexHttpClient(source.url)
    for i in range(25):
        client.mutation(
            "files:add",
            {"name": f"f{i}", "data": bytes([i, 0, 255]), "size": ConvexInt64(2**40 + i)},
        )
    for label in ("red", "blue"):
        client.mutation("files:tag", {"label": label})
    snap = tmp_path / "snap.zip"
    done = ok(source.cli("export", "--path", str(snap)))
    assert "exported 27 documents from 2 tables" in done.stdout

    # A zip without --table imports every table; ids, creation times, types kept.
    done = ok(target.cli("import", str(snap)))
    assert "imported 25 documents into files" in done.stdout
    assert "imported 2 documents into tags" in done.stdout
    moved = everything(target)
    assert moved == everything(source)
    assert moved["files"][3]["data"] == bytes([3, 0, 255])
    assert moved["files"][3]["size"] == ConvexInt64(2**40 + 3)
    again = tmp_path / "again.zip"
    ok(target.cli("export", "--path", str(again)))
    with zipfile.ZipFile(snap) as a, zipfile.ZipFile(again) as b:
        for table in ("files", "tags"):
            assert a.read(f"{table}/documents.jsonl") == b.read(f"{table}/documents.jsonl")

    # --table picks one folder of the zip; --append refuses ids already there.
    clash = target.cli("import", str(snap), "--table", "tags", "--append")
    assert clash.returncode == 1 and "already exists" in clash.stderr
    assert everything(target) == moved
    # --replace replaces that table only.
    ConvexHttpClient(target.url).mutation("files:tag", {"label": "green"})
    done = ok(target.cli("import", str(snap), "--table", "tags", "--replace"))
    assert "imported 2 documents into tags (replacing 3)" in done.stdout
    assert "files" not in done.stdout
    assert everything(target) == moved


def test_jsonl_modes_and_failures(
    start_server: Callable[..., DevServer], app: Path, tmp_path: Path
) -> None:
    server = start_server(app)
    ConvexHttpClient(server.url).mutation("files:tag", {"label": "existing"})
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(f'{{"label": "new{i}"}}\n' for i in range(30)))

    refused = server.cli("import", str(jsonl), "--table", "tags")
    assert refused.returncode == 1 and "already has 1 documents" in refused.stderr
    done = ok(server.cli("import", str(jsonl), "--table", "tags", "--append"))
    assert "imported 30 documents into tags" in done.stdout
    assert len(everything(server)["tags"]) == 31
    done = ok(server.cli("import", str(jsonl), "--table", "tags", "--replace"))
    assert "(replacing 31)" in done.stdout
    labels = sorted(t["label"] for t in everything(server)["tags"])
    assert labels == sorted(f"new{i}" for i in range(30))

    # Schema violation (checked by the server): named by line, nothing written.
    lines = [f'{{"name": "n{i}", "data": {{"$bytes": ""}}, "size": {{"$integer": "AQAAAAAAAAA="}}}}' for i in range(20)]  # fmt: skip
    lines[11] = '{"name": "n11", "data": "not bytes", "size": {"$integer": "AQAAAAAAAAA="}}'
    files = tmp_path / "files.jsonl"
    files.write_text("\n".join(lines) + "\n")
    bad = server.cli("import", str(files), "--table", "files")
    assert bad.returncode == 1 and "line 12: does not match the schema" in bad.stderr
    # An _id of another table (checked by the CLI before the upload).
    tag_line = everything(server)["tags"][0]
    lines[11] = f'{{"_id": "{tag_line["_id"]}", "_creationTime": 1.0, "name": "x"}}'
    files.write_text("\n".join(lines) + "\n")
    bad = server.cli("import", str(files), "--table", "files")
    assert bad.returncode == 1 and 'line 12: _id' in bad.stderr and 'not an id of table "files"' in bad.stderr  # fmt: skip
    assert everything(server)["files"] == []


KEY = secrets.token_hex(32)


def test_the_file_is_checked_before_the_backend_is_contacted(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runtime", *args, "--url", nobody, "--admin-key", KEY],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text('{"label": "a"}\n{"label": "b"}\n{"label": \n{"label": "d"}\n')
    bad = cli("import", str(jsonl), "--table", "tags")
    assert bad.returncode == 1 and "tags.jsonl line 3: not a JSON document" in bad.stderr
    jsonl.write_text('{"label": "a"}\n')
    good = cli("import", str(jsonl), "--table", "tags")
    assert good.returncode == 1 and "cannot reach the backend" in good.stderr
