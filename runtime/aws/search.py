"""Search on the AWS shell: the OpenSearch engine the settings name, and the
stream's feeding of it.

DynamoDB commits no search entries (the store drops `SearchWrite` ops): the
stream function feeds OpenSearch from each batch's document writes, with the
commit timestamp as the entry's version (`change_entries`), so a re-delivered
or out-of-order record never replaces a newer entry. It applies a batch's
entries before it refreshes the live queries the batch touched, so a re-run
search finds the write that woke it.

Every Lambda gets the engine (`store.search`): queries anywhere may search,
and the core re-reads every candidate from the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from runtime.database.indexes import TableIndexes
from runtime.database.search import change_entries
from runtime.search.port import SearchEngine, SearchEntry
from runtime.store.port import Change

__all__ = ["engine_for", "search_entries", "search_prefix"]

_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")


def search_prefix(name: str) -> str:
    """The OpenSearch index prefix of a deployment named `name` (its stack, or
    its table when deployed without one): several deployments can share one
    domain, each under its own prefix. Lower-cased to OpenSearch's index-name
    rules; "pyconvex" when nothing usable is left."""
    prefix = _NOT_ALLOWED.sub("-", name.lower()).lstrip("_-")
    return prefix or "pyconvex"


def engine_for(endpoint: str | None, prefix: str, *, sigv4: bool = True) -> SearchEngine | None:
    """The OpenSearch engine at `endpoint` (None or empty: no search engine)."""
    if not endpoint:
        return None
    from runtime.search.opensearch import OpenSearchEngine

    return OpenSearchEngine(endpoint, prefix=search_prefix(prefix), sigv4=sigv4)


def search_entries(
    changes: Sequence[Change | None], indexes: Callable[[str], TableIndexes]
) -> list[tuple[int, list[SearchEntry]]]:
    """(position in `changes`, its entries) for each change that has entries;
    None (a record that is no document write) has none."""
    out: list[tuple[int, list[SearchEntry]]] = []
    for i, change in enumerate(changes):
        if change is None:
            continue
        entries = change_entries(change, indexes)
        if entries:
            out.append((i, entries))
    return out
