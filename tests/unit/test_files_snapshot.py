"""Snapshots with files (runtime/snapshot/files.py): export with and without
`--include-files`, Convex's zip layout, a round trip into a fresh backend,
and imports refused with nothing left behind (documents or blobs), on real
SQLite stores and real blob directories."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.files.local import LocalBlobStore
from runtime.files.storage import key_of
from runtime.snapshot import (
    ImportFailed,
    ImportMode,
    ImportReport,
    SnapshotError,
    check_files,
    check_import,
    export_database,
    import_with_files,
    parse_import,
    read_zip_files,
    table_pages,
)
from runtime.store.sqlite import SqliteStore

FUNCTIONS = """
from runtime import query, mutation, v

@mutation(args={"file": v.id("_storage"), "caption": v.string()})
def note(ctx, args):
    return ctx.db.insert("notes", args)

@query(args={})
def notes(ctx, args):
    return [
        {**n, "url": ctx.storage.get_url(n["file"])}
        for n in ctx.db.query("notes").collect()
    ]

@query(args={})
def files(ctx, args):
    return ctx.db.system.query("_storage").collect()
"""

URLS = {"CONVEX_CLOUD_URL": "http://127.0.0.1:1", "CONVEX_SITE_URL": "http://127.0.0.1:2"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300  # past one read chunk
TEXT = "héllo, files\n".encode()


@pytest.fixture
def make_backend(tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str) -> Backend:
        root = tmp_path / name
        fns = root / "functions"
        fns.mkdir(parents=True)
        (fns / "app.py").write_text(FUNCTIONS)
        b = Backend(
            SqliteStore(str(root / "db.sqlite3")),
            fns,
            admin_key=None,
            urls=URLS,
            blobs=LocalBlobStore(root / "blobs"),
        )
        assert b.reload().ok, b.load_error
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def call(backend: Backend, path: str, args: dict[str, Any] | None = None) -> Any:
    result = backend.executor.call(f"app:{path}", args or {})
    assert result.ok, result.error_text
    return result.value


def fill(backend: Backend) -> tuple[str, str]:
    assert backend.files is not None
    png = backend.files.store([PNG[:1000], PNG[1000:]], "image/png")
    text = backend.files.store([TEXT], "text/plain")
    call(backend, "note", {"file": png, "caption": "a picture"})
    call(backend, "note", {"file": text, "caption": "a text"})
    return png, text


def blobs_on_disk(backend: Backend) -> set[str]:
    root = backend.files.blobs._root  # type: ignore[union-attr]
    return {p.name for p in root.rglob("*") if p.is_file()}


def import_zip(backend: Backend, path: Path, mode: ImportMode = "create") -> ImportReport:
    """What the import route does with a whole snapshot zip."""
    assert backend.files is not None
    with path.open("rb") as upload:
        tables = parse_import(upload, "zip", None)
        found = read_zip_files(upload)
        assert found is not None
        check_import(backend.database, [*tables, found.table], mode)
        check_files(backend.database, found, mode)
        return import_with_files(backend.database, backend.files, upload, tables, found, mode, None)


def test_without_include_files_the_snapshot_has_no_storage(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend("source")
    fill(source)
    snap = tmp_path / "plain.zip"
    counts = export_database(source.database, snap)
    assert counts == {"notes": 2}  # `_storage` is not a table of the app
    with zipfile.ZipFile(snap) as z:
        assert not [n for n in z.namelist() if n.startswith("_storage")]
        tables = [
            json.loads(line)["name"] for line in z.read("_tables/documents.jsonl").splitlines()
        ]
    assert tables == ["notes"]
    with snap.open("rb") as f:
        assert read_zip_files(f) is None


def test_include_files_writes_convex_layout(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend("source")
    png, text = fill(source)
    snap = tmp_path / "files.zip"
    export_database(source.database, snap, files=source.files)
    with zipfile.ZipFile(snap) as z:
        names = set(z.namelist())
        assert {f"_storage/{png}.png", f"_storage/{text}.txt", "_storage/documents.jsonl"} <= names
        assert z.read(f"_storage/{png}.png") == PNG
        assert z.read(f"_storage/{text}.txt") == TEXT
        assert z.getinfo(f"_storage/{png}.png").compress_type == zipfile.ZIP_STORED
        lines = [json.loads(x) for x in z.read("_storage/documents.jsonl").splitlines()]
    stored = {d["_id"]: d for d in call(source, "files")}
    assert len(lines) == 2
    for line in lines:  # plain JSON numbers, as Convex writes them
        assert line == stored[line["_id"]]
        assert type(line["size"]) is int and type(line["_creationTime"]) is float
    assert lines[0]["sha256"] == base64.b64encode(hashlib.sha256(PNG).digest()).decode()


def test_round_trip_into_a_fresh_backend(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source, target = make_backend("source"), make_backend("target")
    png, text = fill(source)
    snap = tmp_path / "files.zip"
    export_database(source.database, snap, files=source.files)

    report = import_zip(target, snap)
    assert report.imported == {"notes": 2, "_storage": 2}
    assert call(target, "files") == call(source, "files")  # ids, creation times, metadata
    assert call(target, "notes") == call(source, "notes")  # the same URLs: the same keys
    assert target.files is not None
    assert target.files.read(png) == PNG and target.files.read(text) == TEXT
    assert blobs_on_disk(target) == {key_of(png), key_of(text)}
    # The files are files like any other: deleting one removes its blob.
    target.files.delete(text)
    assert blobs_on_disk(target) == {key_of(png)}


def test_a_sha_mismatch_is_refused_and_nothing_stays(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source, target = make_backend("source"), make_backend("target")
    _, text = fill(source)
    snap = tmp_path / "files.zip"
    export_database(source.database, snap, files=source.files)
    # Same size, other bytes: only the SHA-256 can tell (the text file is
    # written after the picture, so one blob was written when it fails).
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(snap) as z, zipfile.ZipFile(bad, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == f"_storage/{text}.txt":
                data = data.upper()
            out.writestr(info, data)
    with pytest.raises(SnapshotError) as refused:
        import_zip(target, bad)
    assert f"_storage/{text}.txt" in refused.value.message
    assert "do not match" in refused.value.message
    assert call(target, "files") == [] and call(target, "notes") == []
    assert blobs_on_disk(target) == set()


def test_a_failed_document_write_removes_the_blobs(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = make_backend("source"), make_backend("target")
    fill(source)
    snap = tmp_path / "files.zip"
    export_database(source.database, snap, files=source.files)
    import runtime.snapshot.files as files_module

    real = files_module.apply_import

    def failing(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **kwargs, fail_after=1)

    monkeypatch.setattr(files_module, "apply_import", failing)
    with pytest.raises(ImportFailed):
        import_zip(target, snap)
    assert call(target, "files") == [] and call(target, "notes") == []
    assert blobs_on_disk(target) == set()


def test_replace_keeps_same_files_and_removes_the_others(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    backend = make_backend("one")
    png, text = fill(backend)
    snap = tmp_path / "files.zip"
    export_database(backend.database, snap, files=backend.files)
    assert backend.files is not None
    later = backend.files.store([b"uploaded after the export"], None)

    with pytest.raises(SnapshotError, match="already has"):
        import_zip(backend, snap, "create")
    with pytest.raises(SnapshotError, match="already exists"):
        import_zip(backend, snap, "append")
    report = import_zip(backend, snap, "replace")
    assert report.deleted == {"notes": 2, "_storage": 3}
    assert {d["_id"] for d in call(backend, "files")} == {png, text}
    assert blobs_on_disk(backend) == {key_of(png), key_of(text)}
    assert backend.files.read(png) == PNG and backend.files.read(later) is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("drop_blob", "holds no bytes for file"),
        ("drop_line", "a file with no line"),
        ("wrong_size", "its line 1 says"),
        ("bad_sha", "sha256 must be"),
        ("table_id", "is not a storage id"),
    ],
)
def test_damaged_file_entries_are_refused_before_anything_is_written(
    make_backend: Callable[[str], Backend], tmp_path: Path, edit: str, message: str
) -> None:
    source = make_backend("source")
    png, _ = fill(source)
    note_id = call(source, "notes")[0]["_id"]
    snap = tmp_path / "files.zip"
    export_database(source.database, snap, files=source.files)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(snap) as z, zipfile.ZipFile(bad, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "_storage/documents.jsonl":
                lines = [json.loads(x) for x in data.splitlines()]
                first = lines[0]
                if edit == "drop_line":
                    lines = lines[1:]
                elif edit == "wrong_size":
                    first["size"] += 1
                elif edit == "bad_sha":
                    first["sha256"] = "not base64!"
                elif edit == "table_id":
                    first["_id"] = note_id
                data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
            if edit == "drop_blob" and info.filename == f"_storage/{png}.png":
                continue
            out.writestr(info, data)
    with bad.open("rb") as f, pytest.raises(SnapshotError, match=message):
        read_zip_files(f)


def test_export_pages_see_storage_only_as_files(
    make_backend: Callable[[str], Backend],
) -> None:
    backend = make_backend("one")
    fill(backend)
    # `_storage` is read as the platform's table, never as the app's.
    assert len([d for p in table_pages(backend.database, "_storage", system=True) for d in p]) == 2
