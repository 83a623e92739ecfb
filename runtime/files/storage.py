"""File storage: blobs in a `BlobStore`, their metadata in the `_storage` table.

A file is a blob under a random key and a `_storage` document whose id is
made from the same 16 random bytes (`storage_id_of` / `key_of`), so either
names the other without a lookup. The document (`sha256`, `size`,
`contentType`) is written in a transaction like any other, so it is
transactional and reactive; the blob is written before it and removed after
it, which gives the rules the platform keeps:

- a file exists once its document commits; a blob whose document never
  committed (a failed or refused upload) is removed at once;
- a blob is never removed while a committed document points to it: a
  delete removes the document in the caller's transaction and the blob
  only after that commits (`remove_blobs`). A crash between the two leaves
  an orphan blob, never a document without its bytes.

Uploads come through upload URLs (`generate_upload_url`): a token the
platform signs (`tokens.py`) and records as used in the upload's own
transaction, so a URL stores at most one file, and never after its hour.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from runtime.errors import InvalidIdError, PlatformError
from runtime.limits import (
    FILE_BYTES,
    FILE_ORPHAN_SECONDS,
    FILE_SWEEP_PAGE,
    UPLOAD_MARKER_SWEEP,
    UPLOAD_URL_SECONDS,
)
from runtime.store.port import Delete, Key, StoreError, TransactionConflict
from runtime.store.secrets import platform_secret
from runtime.values import is_id_for, make_id, parse_id

from .port import BlobStore, check_key
from .tokens import UploadRefused, UploadTicket, UploadTokens

if TYPE_CHECKING:
    from runtime.database import Database
    from runtime.database.transaction import Transaction

__all__ = [
    "STORAGE_TABLE",
    "ChecksumMismatch",
    "FileMeta",
    "FileStorage",
    "FileTooLarge",
    "StorageIdError",
    "file_metadata",
    "key_of",
    "storage_id_of",
]

STORAGE_TABLE = "_storage"
UPLOAD_PATH = "/api/storage/upload"
"""Where upload URLs point (the HTTP API serves it on both shells)."""
FILES_PATH = "/api/storage/"
"""Where `get_url` points, under the deployment's URL: `<FILES_PATH><key>`."""
_KEY_SECRET: Key = ("s:platform", b"upload-key")
_MARKER_SHARDS = 8


class FileTooLarge(PlatformError):
    code = "FILE_TOO_LARGE"
    status = 413


class ChecksumMismatch(PlatformError):
    """The bytes stored do not have the SHA-256 the client said they have."""

    code = "CHECKSUM_MISMATCH"
    status = 400


class StorageIdError(InvalidIdError):
    """Not an id of `_storage` (a storage id)."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    """A committed file: what serving it needs."""

    storage_id: str
    key: str
    size: int
    sha256: str
    content_type: str | None


def storage_id_of(key: str) -> str:
    """The `_storage` id of the blob under `key`."""
    return make_id(STORAGE_TABLE, bytes.fromhex(check_key(key)))


def key_of(storage_id: object, op: str = "storage") -> str:
    """The blob key of a storage id; StorageIdError for anything else."""
    parsed = parse_id(storage_id)
    if parsed is None or not is_id_for(STORAGE_TABLE, storage_id):
        what = "an id of another table" if parsed is not None else repr(storage_id)
        raise StorageIdError(
            f"ctx.storage.{op}: {what} is not a storage id (storage ids are the ids of "
            f'"_storage" documents, as ctx.storage.store and upload URLs return them)'
        )
    return parsed[0].hex()


def _meta(doc: Mapping[str, Any]) -> FileMeta:
    storage_id = str(doc["_id"])
    return FileMeta(
        storage_id,
        key_of(storage_id),
        int(doc["size"]),
        str(doc["sha256"]),
        doc.get("contentType") if isinstance(doc.get("contentType"), str) else None,
    )


def file_metadata(found: FileMeta) -> dict[str, Any]:
    """What Convex's `storage.getMetadata` returns: storageId, sha256, size, contentType."""
    return {
        "storageId": found.storage_id,
        "sha256": found.sha256,
        "size": found.size,
        "contentType": found.content_type,
    }


def capped(chunks: Iterable[bytes], limit: int, limit_name: str) -> Iterator[bytes]:
    """The chunks, raising FileTooLarge (naming the limit) once they pass `limit` bytes."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise FileTooLarge(
                f"the file is larger than {limit:,} bytes, the most this deployment stores "
                f"in one file ({limit_name})",
                limit=limit_name,
            )
        yield chunk


class FileStorage:
    """The files of one backend. `urls()`: the deployment's URLs as functions
    see them (`CONVEX_CLOUD_URL`); `files_url`: where blobs are read from
    when not from the deployment itself (the AWS harness reads S3 directly);
    `on_commit`: told after the platform commits a file of its own (an
    upload), so live queries see it without waiting for a poll."""

    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        *,
        urls: Callable[[], Mapping[str, str]],
        files_url: str | None = None,
        max_bytes: int = FILE_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.blobs = blobs
        self._urls = urls
        self._files_url = files_url
        self.max_bytes = max_bytes
        self._clock = clock
        self._tokens: UploadTokens | None = None
        self.on_commit: Callable[[], None] | None = None

    # ---- URLs --------------------------------------------------------------

    def _base(self) -> str:
        url = self._urls().get("CONVEX_CLOUD_URL")
        if not url:
            raise PlatformError(
                "file URLs need the deployment's URL (CONVEX_CLOUD_URL), which is not "
                "recorded: deploy with `python -m runtime deploy --stack <name>`"
            )
        return url.rstrip("/")

    def _signer(self) -> UploadTokens:
        if self._tokens is None:
            self._tokens = UploadTokens(platform_secret(self.database.store, _KEY_SECRET))
        return self._tokens

    def upload_url(self, nonce: bytes | None = None) -> str:
        """A fresh upload URL: single use, valid for UPLOAD_URL_SECONDS."""
        nonce = secrets.token_bytes(16) if nonce is None else nonce
        expires = int(self._clock()) + UPLOAD_URL_SECONDS
        return f"{self._base()}{UPLOAD_PATH}?token={self._signer().issue(nonce, expires)}"

    def file_url(self, key: str) -> str:
        if self._files_url is not None:
            return self._files_url.rstrip("/") + "/" + key
        return f"{self._base()}{FILES_PATH}{key}"

    # ---- in a caller's transaction ----------------------------------------

    def url_in(self, tx: Transaction, storage_id: object) -> str | None:
        """`get_url`: the file's URL, None when there is no such file. Reads
        its document, so a query that asked is re-run when it is deleted."""
        key = key_of(storage_id, "get_url")
        return None if tx.get(str(storage_id)) is None else self.file_url(key)

    def metadata_in(self, tx: Transaction, storage_id: object) -> dict[str, Any] | None:
        """`get_metadata`: Convex's FileMetadata of the file, None when there is none."""
        key_of(storage_id, "get_metadata")
        doc = tx.get(str(storage_id))
        return None if doc is None else file_metadata(_meta(doc))

    def delete_in(self, tx: Transaction, storage_id: object) -> str:
        """Delete the file's document in `tx`; returns the blob key, to pass
        to `remove_blobs` once `tx` has committed."""
        key = key_of(storage_id, "delete")
        if tx.get(str(storage_id)) is None:
            raise StorageIdError(
                f"ctx.storage.delete: there is no file {storage_id} (deleted already?)"
            )
        tx.system_delete(str(storage_id))
        return key

    # ---- platform transactions ---------------------------------------------

    def check_upload(self, token: object) -> UploadTicket:
        """Verify an upload URL's token before reading the body."""
        ticket = self._signer().check(token, self._clock())
        item = self.database.store.get([_marker(ticket)])[0]
        if item is not None:
            raise _reused()
        return ticket

    def accept_upload(
        self,
        ticket: UploadTicket,
        chunks: Iterable[bytes],
        content_type: str | None,
        *,
        max_bytes: int | None = None,
        limit_name: str = "FILE_BYTES",
        sha256: str | None = None,
    ) -> str:
        """Store an upload's bytes and commit its document with the ticket's
        single-use marker; returns the storage id. Nothing stays stored if
        the body fails, is too large, does not have the `sha256` the client
        sent (its `Digest` header), or the URL was used meanwhile."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        marker = _marker(ticket)

        def use_ticket(tx: Transaction) -> None:
            if tx.system_get(marker) is not None:
                raise _reused()
            tx.system_put(marker, b"")

        chunks = capped(chunks, limit, limit_name)
        storage_id = self._store(chunks, content_type, use_ticket, sha256)
        self._sweep(marker[0])
        return storage_id

    def store(
        self,
        chunks: Iterable[bytes],
        content_type: str | None = None,
        *,
        sha256: str | None = None,
    ) -> str:
        """`ctx.storage.store`: store bytes as a new file; its storage id.
        `sha256` (base64 of the digest): refused, storing nothing, if the
        bytes do not have it (Convex's `store(blob, {sha256})`)."""
        chunks = capped(chunks, self.max_bytes, "FILE_BYTES")
        return self._store(chunks, content_type, None, sha256)

    def _store(
        self,
        chunks: Iterable[bytes],
        content_type: str | None,
        also: Callable[[Transaction], None] | None,
        sha256: str | None = None,
    ) -> str:
        if content_type is not None and not isinstance(content_type, str):
            raise PlatformError(
                f"a file's content type is a string, got {type(content_type).__name__}"
            )
        key = secrets.token_hex(16)
        info = self.blobs.put(key, chunks, content_type or None)
        if sha256 is not None and not hmac.compare_digest(sha256, info.sha256):
            self.blobs.delete(key)
            raise ChecksumMismatch(
                f"the file's SHA-256 is {info.sha256}, not the {sha256} sent with it "
                "(the base64 of the digest); nothing was stored"
            )
        # A float64, as Convex's `_storage` schema has it (JS reads a number).
        fields: dict[str, Any] = {"sha256": info.sha256, "size": float(info.size)}
        if content_type:
            fields["contentType"] = content_type

        def commit(tx: Transaction) -> str:
            if also is not None:
                also(tx)
            return tx.system_insert(STORAGE_TABLE, fields, bytes.fromhex(key))

        try:
            storage_id = self.database.mutation(commit).value
        except BaseException:
            self.blobs.delete(key)
            raise
        if self.on_commit is not None:
            self.on_commit()
        return storage_id

    def meta(self, storage_id_or_key: str) -> FileMeta | None:
        """The committed file under a storage id or blob key, or None."""
        if parse_id(storage_id_or_key) is not None:
            storage_id = storage_id_or_key
            key_of(storage_id, "get")
        else:
            storage_id = storage_id_of(storage_id_or_key)
        doc = self.database.query(lambda tx: tx.get(storage_id)).value
        return None if doc is None else _meta(doc)

    def read(self, storage_id: object) -> bytes | None:
        """`ctx.storage.get` in an action: the file's bytes, None if there is none."""
        key_of(storage_id, "get")
        found = self.meta(str(storage_id))
        if found is None:
            return None
        stream = self.blobs.open(found.key)
        if stream is None:
            return None
        with stream:
            return stream.read()

    def open(self, found: FileMeta, start: int = 0, end: int | None = None) -> BinaryIO | None:
        return self.blobs.open(found.key, start, end)

    def delete(self, storage_id: object) -> None:
        """`ctx.storage.delete` outside a mutation: its own transaction, then the blob."""
        key = self.database.mutation(lambda tx: self.delete_in(tx, storage_id)).value
        self.remove_blobs([key])
        if self.on_commit is not None:
            self.on_commit()

    def remove_blobs(self, keys: Iterable[str]) -> None:
        """Remove blobs whose documents a committed transaction deleted."""
        for key in keys:
            self.blobs.delete(key)

    def sweep_orphans(self, min_age: float = FILE_ORPHAN_SECONDS) -> int:
        """Remove blobs older than `min_age` seconds that no committed
        `_storage` document points to (left by a crash or a timeout between
        a blob's write and its document's commit); how many were removed.
        A blob's document commits moments after its last byte is written,
        so a blob that old without one never gets one. Checked in pages of
        ids, each page one consistent read."""
        removed = 0
        page: list[str] = []

        def flush() -> int:
            ids = [storage_id_of(k) for k in page]
            docs = self.database.query(lambda tx: [tx.get(i) for i in ids]).value
            gone = [k for k, doc in zip(page, docs, strict=True) if doc is None]
            self.remove_blobs(gone)
            page.clear()
            return len(gone)

        for key in self.blobs.keys(self._clock() - min_age):
            page.append(key)
            if len(page) >= FILE_SWEEP_PAGE:
                removed += flush()
        if page:
            removed += flush()
        return removed

    def _sweep(self, partition: str) -> None:
        """Drop up to UPLOAD_MARKER_SWEEP markers of expired tickets from one shard
        (an expired URL is refused before its marker is looked at)."""
        cutoff = int(self._clock()) - 60
        store = self.database.store
        try:
            old = store.scan(partition, b"", cutoff.to_bytes(8, "big"), limit=UPLOAD_MARKER_SWEEP)
            if old:
                store.transact([Delete(it.key, expect=it.version) for it in old])
        except (TransactionConflict, StoreError):
            pass  # another upload swept them; the next sweep retries


def _marker(ticket: UploadTicket) -> Key:
    """The record that says a ticket was used: sharded by nonce, sorted by expiry."""
    shard = ticket.nonce[0] % _MARKER_SHARDS
    return (f"s:upload-used:{shard}", ticket.expires.to_bytes(8, "big") + ticket.nonce)


def _reused() -> UploadRefused:
    return UploadRefused(
        409,
        "UPLOAD_URL_USED",
        "this upload URL was used already (each stores one file); generate a new one "
        "with ctx.storage.generate_upload_url()",
    )
