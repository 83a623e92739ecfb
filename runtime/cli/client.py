"""The CLI's connection to a running backend: JSON over HTTP with the admin key.

The key is a password for every admin route, so it only travels where it
was meant to go: plain http is refused unless the backend is on this machine
(a loopback address or `localhost`: use https elsewhere), and redirects are
not followed (urllib would re-send the header to wherever a redirect points,
another host or plain http); a redirect is reported with its target instead.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from runtime.backend import AdminKeyError, check_admin_key, read_admin_key

from .env_file import read_env_file

__all__ = ["BackendClient", "CliError"]

DEFAULT_URL = "http://127.0.0.1:3210"


class CliError(Exception):
    """A failure to report in one line and exit 1."""


def is_loopback_url(url: str) -> bool:
    """Whether `url`'s host is this machine: `localhost` or a loopback address."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower().removesuffix(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> NoReturn:
        fp.close()
        raise CliError(
            f"{req.get_method()} {req.full_url} answered HTTP {code}, a redirect to {newurl}. "
            "The CLI does not follow redirects (the admin key would go along): if that is "
            "the backend, pass its address with --url"
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


class BackendClient:
    def __init__(self, url: str, admin_key: str | None) -> None:
        self.url = url.rstrip("/")
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise CliError(f"the backend URL must start with https:// or http://, not {url!r}")
        if admin_key is not None:
            try:
                check_admin_key(admin_key, "the admin key")
            except AdminKeyError as e:
                raise CliError(e.message) from None
            if scheme == "http" and not is_loopback_url(self.url):
                raise CliError(
                    f"refusing to send the admin key over plain http to {self.url}: anyone on "
                    "the way could read it. Use https:// (plain http is for a backend on this "
                    "machine: localhost or 127.0.0.1)"
                )
        self.admin_key = admin_key
        self.acting_as: dict[str, Any] | None = None
        """An identity the admin calls as (`run --identity`): sent as Convex's
        `Authorization: Convex <admin key>:<base64 JSON identity>`."""

    @classmethod
    def from_options(cls, url: str | None, admin_key: str | None, data: Path) -> BackendClient:
        """The URL: --url, $PYCONVEX_URL, .env.local's PYCONVEX_URL (written
        by `dev`), else 127.0.0.1:3210. The key: --admin-key,
        $PYCONVEX_ADMIN_KEY, the file .env.local names (when the URL is the
        one it names too), else <--data>/admin_key."""
        local = read_env_file()
        url = url or os.environ.get("PYCONVEX_URL") or local.get("PYCONVEX_URL") or DEFAULT_URL
        key_file = local.get("PYCONVEX_ADMIN_KEY_FILE")
        if key_file and url.rstrip("/") != local.get("PYCONVEX_URL", "").rstrip("/"):
            key_file = None  # that key belongs to another backend
        try:
            key = (
                admin_key
                or os.environ.get("PYCONVEX_ADMIN_KEY")
                or (read_admin_key(Path(key_file).parent) if key_file else None)
                or read_admin_key(data)
            )
        except AdminKeyError as e:
            raise CliError(e.message) from None
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
            auth = f"Convex {self.admin_key}"
            if self.acting_as is not None:
                identity = json.dumps(self.acting_as, separators=(",", ":")).encode()
                auth += ":" + base64.b64encode(identity).decode("ascii")
            headers = {**headers, "Authorization": auth}
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            answer = _OPENER.open(req, timeout=timeout)
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

    def download(self, path: str, *, timeout: float = 3600.0) -> tuple[int, IO[bytes]]:
        """GET `path`: (status, the answer to read as it arrives; close it)."""
        status, answer = self._open("GET", path, None, {}, timeout)
        return status, answer

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
