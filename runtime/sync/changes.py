"""From a committed write in the change feed to what it can touch: the
document id and its old and new keys in every index of its table."""

from __future__ import annotations

from collections.abc import Callable

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
        for spec in indexes(stored.table).specs:
            keys.append(((stored.table, spec.name), spec.key(stored.doc)[1]))
    return doc_id, keys


def written_documents(
    writes: WriteSet, indexes: Callable[[str], TableIndexes]
) -> list[tuple[str, list[tuple[IndexId, bytes]]]]:
    """`document_change` for each document a mutation committed, from its
    write set (the shell that ran it need not wait for the change feed)."""
    out: list[tuple[str, list[tuple[IndexId, bytes]]]] = []
    for doc_id, write in writes.writes.items():
        keys: list[tuple[IndexId, bytes]] = []
        for doc in (write.old, write.new):
            if doc is None:
                continue
            for spec in indexes(write.table).specs:
                keys.append(((write.table, spec.name), spec.key(doc)[1]))
        out.append((doc_id, keys))
    return out
