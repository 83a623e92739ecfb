"""The per-function read limits, at their real numbers (SQLite only: it takes
16k documents to reach them, which moto would take minutes to hold)."""

from __future__ import annotations

import pytest

from runtime.database import Database, Transaction
from runtime.limits import DOCUMENTS_SCANNED_PER_FUNCTION, LimitExceeded
from runtime.store.sqlite import SqliteStore


def test_documents_scanned_limit_names_itself_and_says_what_to_do() -> None:
    db = Database(SqliteStore(":memory:"))
    per = 40
    for start in range(0, DOCUMENTS_SCANNED_PER_FUNCTION + 1, per):
        db.mutation(lambda tx, s=start: [tx.insert("notes", {"i": i}) for i in range(s, s + per)])

    # A filter that matches nothing still scans every document.
    def scan_all(tx: Transaction) -> object:
        return tx.query("notes").filter(lambda q: q.eq(q.field("i"), -1)).first()

    with pytest.raises(LimitExceeded) as err:
        db.query(scan_all)
    assert err.value.details["limit"] == "DOCUMENTS_SCANNED"
    assert "with_index" in str(err.value)
    # Within the limit, the same table is fine.
    assert len(db.query(lambda tx: tx.query("notes").take(1000)).value) == 1000
    page = db.query(
        lambda tx: tx.query("notes").paginate({"num_items": 5000, "cursor": None})
    ).value
    assert len(page["page"]) == 5000 and not page["isDone"]
