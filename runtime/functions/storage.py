"""`ctx.storage`, by kind (API.md, Files):

| kind              | generate_upload_url | get_url, get_metadata | delete | store, get |
|-------------------|---------------------|-----------------------|--------|------------|
| query             |                     | yes                   |        |            |
| mutation          | yes                 | yes                   | yes    |            |
| action, HTTP      | yes                 | yes                   | yes    | yes        |

`get_metadata` is Convex's older way to read what `ctx.db.system.get` reads
(`{"storageId", "sha256", "size", "contentType"}`), kept because the seed
documents it.

In queries and mutations the calls work in the function's transaction:
`get_url` reads the file's `_storage` document (so a live query re-runs when
it goes), and a mutation's `delete` removes the document in its own commit
and the blob only after it (`after_commit`). In actions each call is its
own transaction. `async def` actions get awaitable versions.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, NoReturn

from runtime.errors import PlatformError
from runtime.files.storage import file_metadata, key_of

from .determinism import real_urandom

if TYPE_CHECKING:
    from runtime.database.transaction import Transaction
    from runtime.files.storage import FileStorage

__all__ = [
    "ActionStorage",
    "AsyncActionStorage",
    "MutationStorage",
    "QueryStorage",
    "StorageNotAvailable",
]


class StorageNotAvailable(PlatformError):
    code = "NOT_AVAILABLE"


def _files(files: FileStorage | None) -> FileStorage:
    if files is None:
        raise StorageNotAvailable(
            "file storage is not configured for this deployment (the dev server keeps files "
            "under its data dir; on AWS the stack's bucket is named by PYCONVEX_FILES_BUCKET)",
            feature="storage",
        )
    return files


def _not_here(op: str, kind: str, where: str) -> NoReturn:
    raise PlatformError(f"ctx.storage.{op} is not available in a {kind}: {where}")


def _bytes_of(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise PlatformError(
        f"ctx.storage.store takes bytes (a blob's contents), got {type(data).__name__}"
    )


class QueryStorage:
    """`ctx.storage` in a query: `get_url`."""

    __slots__ = ("__files", "__tx")

    def __init__(self, files: FileStorage | None, tx: Transaction) -> None:
        self.__files = files
        self.__tx = tx

    def get_url(self, storage_id: str) -> str | None:
        """A URL serving the file's bytes, or None if there is no such file."""
        return _files(self.__files).url_in(self.__tx, storage_id)

    def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        """The file's storageId, sha256, size and contentType, or None."""
        return _files(self.__files).metadata_in(self.__tx, storage_id)

    def generate_upload_url(self) -> NoReturn:
        _not_here("generate_upload_url", "query", "generate it in a mutation or an action")

    def delete(self, storage_id: str) -> NoReturn:
        _not_here("delete", "query", "queries are read-only; delete in a mutation or an action")

    def store(self, data: bytes, content_type: str | None = None) -> NoReturn:
        _not_here("store", "query", "store files from an action")

    def get(self, storage_id: str) -> NoReturn:
        _not_here("get", "query", "read a file's bytes in an action, or serve get_url's URL")

    def __repr__(self) -> str:
        return "<ctx.storage (query)>"


class MutationStorage(QueryStorage):
    """`ctx.storage` in a mutation: also `generate_upload_url` and `delete`.
    `after_commit`: the blob keys to remove once the transaction commits."""

    __slots__ = ("__files", "__tx", "after_commit")

    def __init__(self, files: FileStorage | None, tx: Transaction) -> None:
        super().__init__(files, tx)
        self.__files = files
        self.__tx = tx
        self.after_commit: list[str] = []

    def generate_upload_url(self) -> str:  # type: ignore[override]
        """A URL to POST one file to (single use, valid for an hour)."""
        return _files(self.__files).upload_url(real_urandom(16))

    def delete(self, storage_id: str) -> None:  # type: ignore[override]
        """Delete the file when (and only if) this mutation commits."""
        self.after_commit.append(_files(self.__files).delete_in(self.__tx, storage_id))

    def store(self, data: bytes, content_type: str | None = None) -> NoReturn:
        _not_here("store", "mutation", "store files from an action (a mutation is a transaction)")

    def get(self, storage_id: str) -> NoReturn:
        _not_here("get", "mutation", "read a file's bytes in an action")

    def __repr__(self) -> str:
        return "<ctx.storage (mutation)>"


class ActionStorage:
    """`ctx.storage` in an action or HTTP action: every call its own transaction."""

    __slots__ = ("__files",)

    def __init__(self, files: FileStorage | None) -> None:
        self.__files = files

    def generate_upload_url(self) -> str:
        return _files(self.__files).upload_url()

    def get_url(self, storage_id: str) -> str | None:
        files = _files(self.__files)
        key = key_of(storage_id, "get_url")
        return None if files.meta(storage_id) is None else files.file_url(key)

    def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        key_of(storage_id, "get_metadata")
        found = _files(self.__files).meta(storage_id)
        return None if found is None else file_metadata(found)

    def delete(self, storage_id: str) -> None:
        _files(self.__files).delete(storage_id)

    def store(
        self, data: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> str:
        """Store `data` as a new file; returns its storage id. `sha256` (the
        base64 of the digest): refused, storing nothing, unless it matches."""
        return _files(self.__files).store([_bytes_of(data)], content_type, sha256=sha256)

    def get(self, storage_id: str) -> bytes | None:
        """The file's bytes, or None if there is no such file."""
        return _files(self.__files).read(storage_id)

    def __repr__(self) -> str:
        return "<ctx.storage (action)>"


class AsyncActionStorage:
    """`ctx.storage` in an `async def` action: the same calls, awaitable (each
    runs in a worker thread, so the action's event loop keeps going)."""

    __slots__ = ("__sync",)

    def __init__(self, files: FileStorage | None) -> None:
        self.__sync = ActionStorage(files)

    async def generate_upload_url(self) -> str:
        return await asyncio.to_thread(self.__sync.generate_upload_url)

    async def get_url(self, storage_id: str) -> str | None:
        return await asyncio.to_thread(self.__sync.get_url, storage_id)

    async def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.__sync.get_metadata, storage_id)

    async def delete(self, storage_id: str) -> None:
        await asyncio.to_thread(self.__sync.delete, storage_id)

    async def store(
        self, data: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> str:
        return await asyncio.to_thread(self.__sync.store, data, content_type, sha256=sha256)

    async def get(self, storage_id: str) -> bytes | None:
        return await asyncio.to_thread(self.__sync.get, storage_id)

    def __repr__(self) -> str:
        return "<ctx.storage (async action)>"
