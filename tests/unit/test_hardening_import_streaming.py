"""Import streams its documents (issue 11): a small zip of many small lines
is checked and written without holding its documents in memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

from runtime.database import Database
from runtime.snapshot import apply_import, check_import, parse_import
from runtime.store.sqlite import SqliteStore


def _zip_of_small_lines(lines: int) -> io.BytesIO:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z,
        z.open("t/documents.jsonl", "w") as f,
    ):
        for _ in range(lines // 1000):
            f.write(b'{"a":1}\n' * 1000)
    buf.seek(0)
    return buf


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        value = fn()
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_checking_a_zip_of_many_small_documents_keeps_none_of_them() -> None:
    upload = _zip_of_small_lines(60_000)
    assert len(upload.getvalue()) < 64 << 10  # a few KB of zip
    db = Database(SqliteStore(":memory:"))

    def check() -> Any:
        tables = parse_import(upload, "zip", None)
        check_import(db, tables, "create")
        return tables

    tables, peak = _peak(check)
    # 60,000 parsed documents would take tens of MB; the passes hold one line at a time
    assert peak < 4 << 20, f"{peak:,} bytes"
    assert [(t.table, t.count) for t in tables] == [("t", 60_000)]


def test_the_writes_read_the_documents_again_from_the_upload() -> None:
    upload = _zip_of_small_lines(3_000)
    db = Database(SqliteStore(":memory:"))
    tables = parse_import(upload, "zip", None)
    check_import(db, tables, "create")
    report, peak = _peak(lambda: apply_import(db, tables, "create"))
    assert report.imported == {"t": 3_000}
    assert db.query(lambda tx: len(tx.query("t").collect())).value == 3_000
    assert peak < 4 << 20, f"{peak:,} bytes"
