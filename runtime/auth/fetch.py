"""The one network adapter of auth: GET a provider's discovery document or key set.

Called by the Authenticator before any function runs (on the server's own
thread, never inside user code, where the determinism guard refuses network
I/O). Tests and other shells may pass their own `fetch(url) -> bytes`.
"""

from __future__ import annotations

import functools
import urllib.error
import urllib.request
from http.client import HTTPMessage
from typing import IO

from ..limits import AUTH_FETCH_MAX_BYTES, AUTH_FETCH_TIMEOUT_SECONDS
from .errors import AuthConfigError
from .providers import check_url

__all__ = ["FetchError", "http_fetch"]


class FetchError(Exception):
    """A fetch failed; the message says how (status, timeout, refused, too large)."""


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the config itself could name (https, or http on loopback):
    an https key set must not be read from plain http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        try:
            check_url(newurl, f"{req.full_url} redirects to {newurl!r}: the target")
        except AuthConfigError as e:
            fp.close()
            raise FetchError(str(e)) from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """Built on the first fetch: building it loads the CA certificates
    (~20 ms), which a Lambda's cold start need not pay."""
    return urllib.request.build_opener(_HttpsRedirects)


def http_fetch(url: str) -> bytes:
    """The body of `url` (a 2xx answer), or FetchError."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "pyconvex-auth"}
    )
    try:
        with _opener().open(request, timeout=AUTH_FETCH_TIMEOUT_SECONDS) as response:
            body: bytes = response.read(AUTH_FETCH_MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        e.close()  # it holds the response's socket
        raise FetchError(f"{url} answered HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise FetchError(f"could not reach {url}: {e.reason}") from None
    except (TimeoutError, OSError) as e:
        raise FetchError(f"could not read {url}: {e}") from None
    if len(body) > AUTH_FETCH_MAX_BYTES:
        raise FetchError(f"{url} sent more than {AUTH_FETCH_MAX_BYTES} bytes")
    return body
