"""The blob port: what file storage needs from a byte store, whatever holds the bytes.

Blobs are streamed both ways (chunks in, a binary stream out) so a large file is never
held whole in memory. Keys are made by the platform (random, independent of content),
so a key is never a path a client chose; `check_key` refuses anything else.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

_KEY = re.compile(r"^[a-z0-9]{32}$")


class BadBlobKey(ValueError):
    """A key that the platform did not make (it could escape the store's root)."""


@dataclass(frozen=True)
class BlobInfo:
    """What a put learned while streaming: the size and base64 SHA-256 (as `_storage.sha256`)."""

    size: int
    sha256: str


def new_key() -> str:
    """A fresh random key: 32 lowercase hex-like characters, unrelated to the content."""
    return secrets.token_hex(16)


def is_key(text: str) -> bool:
    """Whether `text` has the shape of a key the platform made."""
    return bool(_KEY.match(text))


def check_key(key: str) -> str:
    """Return `key` if it has the platform's shape, else raise BadBlobKey (no traversal)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise BadBlobKey(f"bad blob key {key!r}: keys are 32 characters [a-z0-9] made by new_key()")
    return key


def b64_sha256(digest: bytes) -> str:
    """Convex's `_storage.sha256` form: the standard base64 of the raw digest."""
    return base64.b64encode(digest).decode("ascii")


class BlobStore(Protocol):
    """A store of immutable blobs by key."""

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> BlobInfo:
        """Store the chunks under key, streamed; nothing is visible under key unless it succeeds.

        `content_type` is kept where the bytes are served from the store itself
        (S3 behind CloudFront answers with it); a store that is only read through
        the backend may ignore it (the backend has it in `_storage`)."""
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO | None:
        """A stream of bytes [start, end) of the blob (end None: to its end), or None if missing."""
        ...

    def size(self, key: str) -> int | None:
        """The blob's size in bytes, or None if missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; removing a missing blob is no error."""
        ...

    def keys(self, written_before: float) -> Iterator[str]:
        """The keys of blobs last written before `written_before` (epoch
        seconds), in no particular order (the orphan sweep's input)."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
