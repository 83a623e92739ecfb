"""The local-directory blob adapter (dev server): one file per blob under a root dir.

Writes go to a temp file in the blob's own directory, are fsynced, then renamed into
place (and the directory fsynced, so the rename is durable before the blob's
`_storage` document commits), so a crash or a failed stream never leaves a half
blob under a real key.
Files are 0600 and directories 0700: blobs are the app's private data.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from runtime.files.port import BlobInfo, b64_sha256, check_key, is_key


class _Window(io.RawIOBase):
    """A read-only view of bytes [start, end) of an open file, for range reads."""

    def __init__(self, f: BinaryIO, remaining: int) -> None:
        self._f = f
        self._remaining = remaining

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._remaining <= 0:
            return 0
        n = self._f.readinto(memoryview(b)[: min(len(b), self._remaining)])  # type: ignore[attr-defined]
        self._remaining -= n
        return int(n)

    def close(self) -> None:
        self._f.close()
        super().close()


class LocalBlobStore:
    """Blobs as files under `root`, sharded by the key's first two characters."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self._root / key[:2] / key

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None) -> BlobInfo:
        """The content type is ignored: the dev server serves it from `_storage`."""
        path = self._path(key)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp makes it 0600
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)  # the rename itself survives a crash
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return BlobInfo(size=size, sha256=b64_sha256(digest.digest()))

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO | None:
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            return None
        total = os.fstat(f.fileno()).st_size
        stop = total if end is None else min(end, total)
        f.seek(min(start, total))
        return io.BufferedReader(_Window(f, max(0, stop - start)))

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def keys(self, written_before: float) -> Iterator[str]:
        for shard in sorted(self._root.iterdir()):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for path in shard.iterdir():
                if not is_key(path.name):
                    continue  # a temp file of a put in progress
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < written_before:
                        yield path.name

    def close(self) -> None:
        """Nothing held open between calls."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
