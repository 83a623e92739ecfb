"""The store as user functions reach it: every call runs inside
`platform_io()`, so the network guard of deterministic functions does not
block the platform's own store traffic (DynamoDB over HTTPS)."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.store.port import ChangeBatch, CommitResult, Item, Key, Op, Store

from .determinism import platform_io

__all__ = ["PlatformStore"]


class PlatformStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.max_transaction_items = inner.max_transaction_items

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
