"""Query journals, signed by the server.

A live query's journal (its paginate end cursors) goes to the client with
each result; a reconnecting client sends it back with the query so its
pages keep their boundaries. Queries equal in function, arguments and
journal share one run, so a journal the client made up would buy it a run
of its own per write: 20 subscriptions differing only by a made-up journal
would cost 20 runs. So journals are the server's: each is signed (HMAC over
the function path, the arguments and the cursors) with a key the backend
keeps in its store, and one that fails verification (forged, altered, for
another query, or signed under another backend's key) is treated as no
journal: the query runs from its first page, as a new subscription would,
and shares the run of every other subscription without one. (Not a
FatalError: a client holding a journal of a backend whose data was reset
is not misbehaving, and the protocol gives journals no error of their own.)

The key: 32 random bytes in a platform record (`s:platform/journal-key`),
created once by whichever process needs it first (a conditional put), read
once per process and store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import weakref
from typing import Any

from runtime.store.port import Key, Store
from runtime.store.secrets import platform_secret
from runtime.values import dumps

__all__ = ["Journals", "journals_for"]

KEY: Key = ("s:platform", b"journal-key")

Cursors = list[str | None]


class Journals:
    """Signs and verifies journals with one backend's key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, path: str, args: Any, cursors: Cursors | None) -> str | None:
        """The journal text for a query's end cursors (None: no cursors)."""
        if not cursors:
            return None
        return json.dumps(
            {"endCursors": cursors, "mac": self._mac(path, args, cursors)},
            separators=(",", ":"),
        )

    def verify(self, path: str, args: Any, text: str | None) -> Cursors | None:
        """The cursors of a journal this backend signed for this query; None
        for no journal and for any journal that fails verification."""
        if not text:
            return None
        try:
            data = json.loads(text)
            cursors, mac = data["endCursors"], data["mac"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(cursors, list) or not cursors or not isinstance(mac, str):
            return None
        if not all(c is None or isinstance(c, str) for c in cursors):
            return None
        try:
            expected = self._mac(path, args, cursors)
        except (ValueError, UnicodeError):
            return None
        return cursors if hmac.compare_digest(mac, expected) else None

    def _mac(self, path: str, args: Any, cursors: Cursors) -> str:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (path.encode(), dumps(args), json.dumps(cursors).encode()):
            mac.update(len(part).to_bytes(8, "big") + part)
        return mac.hexdigest()[:32]


_cache: weakref.WeakKeyDictionary[Store, Journals] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def journals_for(store: Store) -> Journals:
    """The journal signer of the backend on `store` (its key read or
    created once per process)."""
    with _lock:
        found = _cache.get(store)
        if found is None:
            found = _cache[store] = Journals(_load_key(store))
        return found


def _load_key(store: Store) -> bytes:
    return platform_secret(store, KEY)
