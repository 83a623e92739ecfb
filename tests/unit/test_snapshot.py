"""Snapshots end to end on SQLite in memory: `export_database` -> zip ->
checks -> `apply_import`, the checks that need no database (`check_file`,
as the CLI runs them), and the undo of a `replace` whose originals spill to
a temporary file. (Line parsing and the modes: test_snapshot_import.py.)"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database, Transaction
from runtime.schema import define_schema, define_table
from runtime.snapshot import (
    ImportFailed,
    SnapshotError,
    SnapshotWriter,
    apply_import,
    check_file,
    check_import,
    export_database,
    parse_import,
    parse_jsonl,
    read_zip_tables,
    table_pages,
)
from runtime.snapshot.format import document_line
from runtime.store.sqlite import SqliteStore
from runtime.values import encode_json, v

SCHEMA = define_schema(
    {
        "files": define_table(
            {"name": v.string(), "data": v.bytes(), "size": v.int64(), "score": v.float64()}
        ).index("by_name", ["name"]),
        "tags": define_table({"label": v.string()}),
    },
    strict_table_name_types=False,  # `loose` is a table without a schema
)


def fresh() -> Database:
    return Database(SqliteStore(":memory:"), SCHEMA)


def everything(db: Database, table: str) -> list[dict[str, Any]]:
    return [d for page in table_pages(db, table) for d in page]


def fill(db: Database, table: str, docs: list[dict[str, Any]]) -> None:
    for start in range(0, len(docs), 20):

        def insert(tx: Transaction, chunk: list[dict[str, Any]] = docs[start : start + 20]) -> None:
            for d in chunk:
                tx.insert(table, d)

        db.mutation(insert)


def file_doc(i: int) -> dict[str, Any]:
    return {"name": f"f{i}-é", "data": bytes([i % 256, 0, 255]), "size": 2**40 + i, "score": i / 3}


@pytest.fixture
def source() -> Database:
    db = fresh()
    fill(db, "files", [file_doc(i) for i in range(30)])
    fill(db, "tags", [{"label": "red"}, {"label": "blue"}])
    fill(db, "loose", [{"anything": [1.5, None, {"deep": b"x"}]}])
    return db


def test_export_then_import_keeps_ids_creation_times_and_types(
    source: Database, tmp_path: Path
) -> None:
    snap = tmp_path / "snap.zip"
    seen: list[tuple[str, int]] = []
    counts = export_database(source, snap, lambda t, n: seen.append((t, n)), page_size=7)
    assert counts == {"files": 30, "loose": 1, "tags": 2}
    assert ("files", 30) in seen and not (tmp_path / "snap.zip.partial").exists()
    with zipfile.ZipFile(snap) as z:
        names = set(z.namelist())
        meta = [json.loads(line) for line in z.read("_tables/documents.jsonl").splitlines()]
    assert {"files/documents.jsonl", "tags/documents.jsonl", "README.md"} <= names
    assert sorted(m["name"] for m in meta) == ["files", "loose", "tags"]

    assert check_file(snap, "zip", None) == counts
    target = fresh()
    tables = read_zip_tables(snap.read_bytes())
    check_import(target, tables, "create")
    report = apply_import(target, tables, "create")
    assert report.imported == counts and report.deleted == {}
    for table in counts:
        assert everything(target, table) == everything(source, table)
    doc = everything(target, "files")[4]
    assert type(doc["size"]) is int and doc["size"] == 2**40 + 4
    assert doc["data"] == bytes([4, 0, 255]) and type(doc["score"]) is float
    # Exported again, the zip holds the same lines, byte for byte.
    again = tmp_path / "again.zip"
    export_database(target, again)
    with zipfile.ZipFile(snap) as a, zipfile.ZipFile(again) as b:
        for table in counts:
            assert a.read(f"{table}/documents.jsonl") == b.read(f"{table}/documents.jsonl")


def test_the_writer_writes_wire_encoded_pages_as_dumps_does(
    source: Database, tmp_path: Path
) -> None:
    docs = everything(source, "files")
    with SnapshotWriter(tmp_path / "a.zip") as w:
        w.add_table("files", [[encode_json(d) for d in docs[:10]], [encode_json(d) for d in docs[10:]]], encoded=True)  # fmt: skip
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert z.read("files/documents.jsonl") == b"".join(document_line(d) for d in docs)
    # A failed export leaves neither the zip nor the partial file.
    with pytest.raises(RuntimeError), SnapshotWriter(tmp_path / "b.zip") as w:
        w.add_table("files", [docs])
        raise RuntimeError("interrupted")
    assert list(tmp_path.glob("b.zip*")) == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        # Rules that insert would apply: caught while parsing, with the line.
        ({"label": "x", "_secret": 1}, 'line 3: document._secret: top-level field names starting with "_"'),
        ({"label": "x" * (1 << 20)}, "line 3: the document takes 1,048,"),
        ({"label": "x", "list": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}, "line 3: .*nested deeper"),
    ],
)  # fmt: skip
def test_document_rules_are_checked_before_writing(line: dict[str, Any], problem: str) -> None:
    lines = [document_line({"label": "a"}), document_line({"label": "b"}), document_line(line)]
    with pytest.raises(SnapshotError, match=problem):
        parse_jsonl(lines, "loose", "f.jsonl")


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"name": "n", "data": b"", "size": 1, "score": math.nan}, None),  # NaN, not indexed: fine
        ({"name": "x" * 1200, "data": b"", "size": 1, "score": 0.0}, "index files.by_name"),
    ],
)
def test_index_keys_are_checked_before_writing(doc: dict[str, Any], problem: str | None) -> None:
    db = fresh()
    tables = parse_import(document_line(file_doc(1)) + document_line(doc), "jsonl", "files")
    if problem is None:
        check_import(db, tables, "create")
        return
    with pytest.raises(SnapshotError, match=f"the file line 2: {problem}"):
        check_import(db, tables, "create")
    assert everything(db, "files") == []


def test_check_file_streams_and_names_the_line(tmp_path: Path) -> None:
    good = b"".join(document_line({"label": f"t{i}"}) for i in range(40))
    path = tmp_path / "tags.jsonl"
    path.write_bytes(good + b'{"label": "broken"\n' + good)
    progress: list[tuple[int, int]] = []
    with pytest.raises(SnapshotError, match=r"tags\.jsonl line 41: not a JSON document"):
        check_file(path, "jsonl", "tags", lambda done, total: progress.append((done, total)))
    path.write_bytes(good)
    assert check_file(path, "jsonl", "tags", lambda d, t: progress.append((d, t))) == {"tags": 40}
    assert progress[-1] == (len(good), len(good))
    with pytest.raises(SnapshotError, match="not a zip"):
        check_file(path, "zip", None)


def test_default_mode_refuses_a_big_table_without_reading_it_all() -> None:
    db = fresh()
    fill(db, "tags", [{"label": str(i)} for i in range(520)])
    incoming = parse_jsonl([document_line({"label": "new"})], "tags", "f")
    with pytest.raises(SnapshotError, match=r'"tags" already has 500\+ documents'):
        check_import(db, [incoming], "create")


def test_replace_failing_midway_restores_spilled_originals() -> None:
    db = fresh()
    fill(db, "tags", [{"label": f"old{i}"} for i in range(620)])  # more than one page
    before = everything(db, "tags")
    incoming = [parse_jsonl([document_line({"label": f"new{i}"}) for i in range(80)], "tags", "f")]
    check_import(db, incoming, "replace")
    phases: list[str] = []
    with pytest.raises(ImportFailed, match="injected failure after"):
        apply_import(
            db, incoming, "replace", lambda p, d, t: phases.append(p), fail_after=40, spill_bytes=0
        )
    assert {"deleting", "writing", "undoing"} <= set(phases)
    assert everything(db, "tags") == before  # ids and creation times back as they were
    report = apply_import(db, incoming, "replace", spill_bytes=0)
    assert report.deleted == {"tags": 620}
    assert sorted(d["label"] for d in everything(db, "tags")) == sorted(
        f"new{i}" for i in range(80)
    )


def test_a_write_that_fails_after_the_checks_is_undone(source: Database) -> None:
    """An id that the checks found absent is taken by another writer before
    the import reaches it: restore refuses it, and what was written goes."""
    target = fresh()
    fill(target, "tags", [{"label": "mine"}])
    before = everything(target, "tags")
    docs = everything(source, "tags") + [{"label": f"n{i}"} for i in range(40)]
    docs = docs[2:] + docs[:2]  # the kept ids come last
    tables = [parse_jsonl([document_line(d) for d in docs], "tags", "f")]
    check_import(target, tables, "append")
    taken = docs[-1]
    target.mutation(lambda tx: tx.restore("tags", taken))
    with pytest.raises(ImportFailed, match=r"was undone .*already exists"):
        apply_import(target, tables, "append")
    assert everything(target, "tags") == sorted([*before, taken], key=lambda d: d["_creationTime"])
