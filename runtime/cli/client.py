"""The CLI's connection to a running backend: JSON over HTTP with the admin key."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from runtime.backend import read_admin_key

__all__ = ["BackendClient", "CliError"]

DEFAULT_URL = "http://127.0.0.1:3210"


class CliError(Exception):
    """A failure to report in one line and exit 1."""


class BackendClient:
    def __init__(self, url: str, admin_key: str | None) -> None:
        self.url = url.rstrip("/")
        self.admin_key = admin_key

    @classmethod
    def from_options(cls, url: str | None, admin_key: str | None, data: Path) -> BackendClient:
        url = url or os.environ.get("PYCONVEX_URL") or DEFAULT_URL
        key = admin_key or os.environ.get("PYCONVEX_ADMIN_KEY") or read_admin_key(data)
        return cls(url, key)

    def _open(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, Any]:
        """(status, a readable answer); an HTTP error status is an answer too."""
        if self.admin_key:
            headers = {**headers, "Authorization": f"Convex {self.admin_key}"}
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            answer = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            return e.code, e
        except urllib.error.URLError as e:
            raise CliError(
                f"cannot reach the backend at {self.url} ({e.reason}); start it with "
                "`make dev` (or pass --url)"
            ) from None
        return answer.status, answer

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        timeout: float = 600.0,
    ) -> tuple[int, bytes]:
        status, answer = self._open(method, path, body, {"Content-Type": content_type}, timeout)
        with answer:
            return status, answer.read()

    def stream(
        self,
        method: str,
        path: str,
        body: Iterable[bytes],
        *,
        content_type: str,
        length: int,
        timeout: float = 3600.0,
    ) -> tuple[int, Iterator[bytes]]:
        """Send `body` chunk by chunk; the answer's lines as they arrive."""
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        status, answer = self._open(method, path, body, headers, timeout)

        def lines() -> Iterator[bytes]:
            with answer:
                while line := answer.readline():
                    yield line

        return status, lines()

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body)
        try:
            answer = json.loads(data) if data else None
        except json.JSONDecodeError:
            raise CliError(f"{method} {path}: HTTP {status}: {data[:200]!r}") from None
        if status >= 400:
            if isinstance(answer, dict) and "message" in answer:
                raise CliError(f"{answer.get('code', status)}: {answer['message']}")
            raise CliError(f"{method} {path}: HTTP {status}")
        return answer
