"""From a committed write in the change feed to what it can touch: the
document id and its old and new keys in every index of its table (search
indexes included, as their watch keys)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.database import layout
from runtime.database.indexes import TableIndexes
from runtime.database.readwrite import WriteSet
from runtime.store.port import Change

from .read_index import IndexId

__all__ = ["document_change", "written_documents"]


def document_change(
    change: Change, indexes: Callable[[str], TableIndexes]
) -> tuple[str, list[tuple[IndexId, bytes]]] | None:
    """(document id, [((table, index), sort key), ...]) for a document write;
    None for anything else in the feed."""
    doc_id = layout.id_from_doc_key(change.key)
    if doc_id is None:
        return None
    keys: list[tuple[IndexId, bytes]] = []
    for raw in (change.old_value, change.new_value):
        if raw is None:
            continue
        stored = layout.decode_document(raw)
        keys += _keys(indexes(stored.table), stored.doc)
    return doc_id, keys


def _keys(tix: TableIndexes, doc: dict[str, Any]) -> list[tuple[IndexId, bytes]]:
    """The document's key in every index of its table, and the keys its search
    indexes' watches file under (`runtime.database.search`)."""
    keys = [((tix.table, spec.name), spec.key(doc)[1]) for spec in tix.specs]
    for search in tix.search_specs:
        keys += [((tix.table, name), key) for name, key in search.watch_keys(doc)]
    return keys


def written_documents(
    writes: WriteSet, indexes: Callable[[str], TableIndexes]
) -> list[tuple[str, list[tuple[IndexId, bytes]]]]:
    """`document_change` for each document a mutation committed, from its
    write set (the shell that ran it need not wait for the change feed)."""
    out: list[tuple[str, list[tuple[IndexId, bytes]]]] = []
    for doc_id, write in writes.writes.items():
        keys: list[tuple[IndexId, bytes]] = []
        for doc in (write.old, write.new):
            if doc is not None:
                keys += _keys(indexes(write.table), doc)
        out.append((doc_id, keys))
    return out
