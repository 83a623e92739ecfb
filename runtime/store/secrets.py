"""Secrets a backend keeps in its own store: 32 random bytes per name,
created once by whichever process needs one first (a conditional put) and
read by every other. They sign what the backend hands out and must verify
later (query journals, upload URLs); every process serving one app shares
them through the store, and another app's store holds other ones."""

from __future__ import annotations

import secrets

from .port import Key, Put, Store, TransactionConflict

__all__ = ["platform_secret"]


def platform_secret(store: Store, key: Key) -> bytes:
    """The secret under `key`, created if the store has none yet."""
    for _ in range(3):
        item = store.get([key])[0]
        if item is not None:
            return bytes(item.value)
        try:
            store.transact([Put(key, secrets.token_bytes(32), expect=0)])
        except TransactionConflict:
            continue  # another process created it first: read theirs
    raise RuntimeError(f"could not read or create the platform secret {key!r}")
