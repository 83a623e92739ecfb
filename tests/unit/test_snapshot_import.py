"""Snapshot parsing and the all-or-nothing importer, on SQLite in memory."""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import Any

import pytest

from runtime.database import Database
from runtime.schema import define_schema, define_table
from runtime.snapshot import (
    ImportFailed,
    SnapshotError,
    apply_import,
    check_import,
    parse_jsonl,
    read_zip_tables,
)
from runtime.snapshot.format import document_line, write_snapshot_meta
from runtime.snapshot.importer import table_pages
from runtime.store.sqlite import SqliteStore
from runtime.values import dumps, make_id, v

SCHEMA = define_schema(
    {
        "people": define_table(
            {"name": v.string(), "age": v.optional(v.int64()), "pic": v.optional(v.bytes())}
        ).index("by_name", ["name"]),
        "pets": define_table({"owner": v.id("people")}),
    }
)


@pytest.fixture
def db() -> Database:
    return Database(SqliteStore(":memory:"), SCHEMA)


def everything(db: Database, table: str) -> list[dict[str, Any]]:
    return [d for page in table_pages(db, table) for d in page]


def seed(db: Database, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 10):
        ids += db.mutation(
            lambda tx, s=start: [
                tx.insert("people", {"name": f"p{i}", "age": i, "pic": bytes([i])})
                for i in range(s, min(n, s + 10))
            ]
        ).value
    return ids


def lines_of(docs: list[dict[str, Any]]) -> list[bytes]:
    return [document_line(d) for d in docs]


def test_round_trip_keeps_ids_creation_times_and_types(db: Database) -> None:
    seed(db, 5)
    exported = everything(db, "people")
    fresh = Database(SqliteStore(":memory:"), SCHEMA)
    tables = [parse_jsonl(lines_of(exported), "people", "people.jsonl")]
    check_import(fresh, tables, "create")
    report = apply_import(fresh, tables, "create")
    assert report.imported == {"people": 5}
    assert everything(fresh, "people") == exported
    # Index entries were written too: the restored documents are found by index.
    found = fresh.query(
        lambda tx: tx.query("people").with_index("by_name", lambda q: q.eq("name", "p3")).unique()
    )
    assert (
        found.value == exported[3]
        and type(found.value["age"]) is int
        and found.value["pic"] == b"\x03"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"name": "a"}\n{"name": "b"\n', "line 2: not a JSON document"),
        (b'{"name": "a"}\n\n[1, 2]\n', "line 3: a line must be one JSON object"),
        (b'{"name": "a", "$bad": 1}\n', "line 1: not a JSON document"),
        (
            b'{"_id": "nope", "_creationTime": 1.0, "name": "a"}\n',
            "line 1: _id 'nope' is not an id",
        ),
    ],
)
def test_malformed_lines_name_their_line(text: bytes, problem: str) -> None:
    with pytest.raises(SnapshotError, match=problem):
        parse_jsonl(text.splitlines(), "people", "f.jsonl")


def test_ids_of_another_table_and_repeated_ids_are_refused(db: Database) -> None:
    pet = make_id("pets", bytes(16))
    with pytest.raises(SnapshotError, match='not an id of table "people"'):
        parse_jsonl([dumps({"_id": pet, "_creationTime": 1.0, "name": "x"})], "people", "f")
    person = make_id("people", bytes(16))
    line = dumps({"_id": person, "_creationTime": 1.0, "name": "x"})
    with pytest.raises(SnapshotError, match=r"line 2: _id .* repeats line 1"):
        parse_jsonl([line, line], "people", "f")


def test_a_document_violating_the_schema_fails_before_anything_is_written(db: Database) -> None:
    good = [{"name": f"ok{i}"} for i in range(30)]
    tables = [parse_jsonl([*lines_of(good), dumps({"name": 7})], "people", "f.jsonl")]
    with pytest.raises(SnapshotError, match=r"f\.jsonl line 31: does not match the schema"):
        check_import(db, tables, "create")
    assert everything(db, "people") == []


def test_modes(db: Database) -> None:
    ids = seed(db, 3)
    new = [parse_jsonl(lines_of([{"name": "new1"}, {"name": "new2"}]), "people", "f")]
    with pytest.raises(SnapshotError, match="already has 3 documents"):
        check_import(db, new, "create")
    check_import(db, new, "append")
    apply_import(db, new, "append")
    assert len(everything(db, "people")) == 5
    kept = [parse_jsonl(lines_of(everything(db, "people")[:1]), "people", "f")]
    with pytest.raises(SnapshotError, match=f"_id {ids[0]} already exists"):
        check_import(db, kept, "append")
    report = apply_import(db, new, "replace")
    assert report.deleted == {"people": 5}
    assert sorted(d["name"] for d in everything(db, "people")) == ["new1", "new2"]


def test_a_failure_midway_undoes_everything(db: Database) -> None:
    seed(db, 40)
    before = everything(db, "people")
    incoming = [{"name": f"n{i}"} for i in range(100)]
    tables = [parse_jsonl(lines_of(incoming), "people", "f")]
    phases: list[str] = []
    for mode in ("append", "replace"):
        check_import(db, tables, mode)  # type: ignore[arg-type]
        with pytest.raises(ImportFailed, match="injected failure"):
            apply_import(db, tables, mode, lambda p, d, t: phases.append(p), fail_after=50)  # type: ignore[arg-type]
        assert everything(db, "people") == before
    assert "undoing" in phases and "deleting" in phases


def test_batches_shrink_to_fit_the_transaction_cap() -> None:
    wide = define_schema(
        {"wide": define_table({f"f{i}": v.string() for i in range(12)}).index("a", ["f0"]).index("b", ["f1"])
         .index("c", ["f2"]).index("d", ["f3"]).index("e", ["f4"]).index("f", ["f5"])}
    )  # fmt: skip
    db = Database(SqliteStore(":memory:"), wide)
    docs = [{f"f{i}": f"{n}-{i}" for i in range(12)} for n in range(40)]
    tables = [parse_jsonl(lines_of(docs), "wide", "f")]
    apply_import(db, tables, "create")
    assert len(everything(db, "wide")) == 40


def test_zip_tables() -> None:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("people/documents.jsonl", document_line({"name": "a"}))
        z.writestr("pets/documents.jsonl", b"")
        write_snapshot_meta(z, ["people", "pets"])
    assert [t.table for t in read_zip_tables(buf.getvalue())] == ["people", "pets"]
    assert [t.table for t in read_zip_tables(buf.getvalue(), "pets")] == ["pets"]
    with pytest.raises(SnapshotError, match='no table "cats"'):
        read_zip_tables(buf.getvalue(), "cats")
    with pytest.raises(SnapshotError, match="not a zip"):
        read_zip_tables(b"plain text")
