"""The search port: what the database core asks of a search engine.

An engine holds, per search index (`index_key`, "<table>/<index>"), the
words of each document's search field and its filter values, and proposes
candidates for a search. It is never the truth: the core re-reads every
candidate from the document store and re-checks it (a candidate deleted or
changed since it was indexed is dropped or re-scored), and merges the
transaction's own writes, scored with `score` and the engine's `stats`.

Two adapters:
- embedded (`runtime/store/sqlite_search.py`): SQLite FTS5 in the store's own
  file, written by the store in the same transaction as the documents
  (`runtime.store.port.SearchWrite` ops): `transactional` is True;
- OpenSearch (`runtime/search/opensearch.py`): fed from the change stream
  with the commit timestamp as an external version, so a repeated or
  out-of-order delivery never overwrites a newer entry: `transactional` is
  False, and `apply` is how entries get there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from runtime.values.model import Value

from .bm25 import CorpusStats
from .text import SearchTerms

__all__ = ["Candidate", "SearchEngine", "SearchEntry", "SearchUnavailable"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A document an engine proposes: its id, relevance (higher first) and
    creation time (newer first among equal scores)."""

    doc_id: str
    score: float
    creation_time: float


@dataclass(frozen=True, slots=True)
class SearchEntry:
    """What one search index holds for one document.

    `text` None removes the document (deleted, or its search field is not a
    string). `filters`: the index's filter fields' values in its order
    (`UNDEFINED` for a missing field). `version`: orders entries of one
    document (the commit timestamp in ns; a build from stored documents uses
    1, below any commit): an engine keeps the entry with the highest version
    it has seen, so late or repeated deliveries are harmless."""

    index_key: str
    doc_id: str
    text: str | None
    filters: tuple[Value, ...]
    creation_time: float
    version: int


class SearchUnavailable(Exception):
    """The engine could not answer (unreachable, refused): the search fails
    with this message rather than returning partial results."""


@runtime_checkable
class SearchEngine(Protocol):
    transactional: bool
    """True: the store applies entries in its commits (`SearchWrite` ops); the
    core never calls `apply` for committed writes. False: entries arrive by
    `apply` from the change stream (and from index builds)."""

    def create_index(self, index_key: str) -> None:
        """Create an empty index (idempotent)."""
        ...

    def drop_index(self, index_key: str) -> None:
        """Drop an index and its entries (idempotent)."""
        ...

    def apply(self, entries: Sequence[SearchEntry]) -> None:
        """Index (or remove) documents, each only if its version is newer
        than the one the engine holds for that document and index."""
        ...

    def candidates(
        self, index_key: str, terms: SearchTerms, filters: Mapping[int, Value], limit: int
    ) -> list[Candidate]:
        """At most `limit` documents matching any term (whole words, the last
        term also as a prefix) and every filter (filter position -> value), best
        first, then newest first."""
        ...

    def stats(self, index_key: str, terms: SearchTerms) -> CorpusStats:
        """The index's corpus statistics for scoring `terms` with `score`."""
        ...

    def score(self, frequencies: Mapping[str, int], length: int, stats: CorpusStats) -> float:
        """The engine's own relevance formula for a document of `length` words
        with these term frequencies (`bm25.term_frequencies`), so a
        mutation's unindexed writes rank as the engine would rank them."""
        ...
