"""The store as user functions reach it: every call runs inside
`platform_io()`, so the network guard of deterministic functions does not
block the platform's own store traffic (DynamoDB over HTTPS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runtime.search.bm25 import CorpusStats
from runtime.search.port import Candidate, SearchEngine, SearchEntry
from runtime.search.text import SearchTerms
from runtime.store.port import ChangeBatch, CommitResult, Item, Key, Op, Store
from runtime.values.model import Value

from .determinism import platform_io

__all__ = ["PlatformSearch", "PlatformStore"]


class PlatformSearch:
    """The store's search engine, called inside `platform_io()` (OpenSearch is
    reached over HTTPS from inside queries)."""

    def __init__(self, inner: SearchEngine) -> None:
        self.inner = inner
        self.transactional = inner.transactional

    def create_index(self, index_key: str) -> None:
        with platform_io():
            self.inner.create_index(index_key)

    def drop_index(self, index_key: str) -> None:
        with platform_io():
            self.inner.drop_index(index_key)

    def apply(self, entries: Sequence[SearchEntry]) -> None:
        with platform_io():
            self.inner.apply(entries)

    def candidates(
        self, index_key: str, terms: SearchTerms, filters: Mapping[int, Value], limit: int
    ) -> list[Candidate]:
        with platform_io():
            return self.inner.candidates(index_key, terms, filters, limit)

    def stats(self, index_key: str, terms: SearchTerms) -> CorpusStats:
        with platform_io():
            return self.inner.stats(index_key, terms)

    def score(self, frequencies: Mapping[str, int], length: int, stats: CorpusStats) -> float:
        return self.inner.score(frequencies, length, stats)


class PlatformStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.max_transaction_items = inner.max_transaction_items

    @property
    def search(self) -> PlatformSearch | None:
        """The inner store's search engine, if it has one (looked up on each use:
        a shell may attach one after this wrapper is made)."""
        engine: SearchEngine | None = getattr(self.inner, "search", None)
        return PlatformSearch(engine) if engine is not None else None

    def get(self, keys: Sequence[Key]) -> list[Item | None]:
        with platform_io():
            return self.inner.get(keys)

    def versions(self, keys: Sequence[Key]) -> list[int]:
        with platform_io():
            return self.inner.versions(keys)

    def scan(
        self,
        partition: str,
        lo: bytes = b"",
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int = 100,
    ) -> list[Item]:
        with platform_io():
            return self.inner.scan(partition, lo, hi, reverse=reverse, limit=limit)

    def transact(self, ops: Sequence[Op]) -> CommitResult:
        with platform_io():
            return self.inner.transact(ops)

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch:
        with platform_io():
            return self.inner.read_changes(after, limit)

    def close(self) -> None:
        self.inner.close()
