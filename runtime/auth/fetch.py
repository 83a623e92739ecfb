"""The one network adapter of auth: GET a provider's discovery document or key set.

Called by the Authenticator before any function runs (on the server's own
thread, never inside user code, where the determinism guard refuses network
I/O). Tests and other shells may pass their own `fetch(url) -> bytes`.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from ..limits import AUTH_FETCH_MAX_BYTES, AUTH_FETCH_TIMEOUT_SECONDS

__all__ = ["FetchError", "http_fetch"]


class FetchError(Exception):
    """A fetch failed; the message says how (status, timeout, refused, too large)."""


def http_fetch(url: str) -> bytes:
    """The body of `url` (a 2xx answer), or FetchError."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "pyconvex-auth"}
    )
    try:
        with urllib.request.urlopen(request, timeout=AUTH_FETCH_TIMEOUT_SECONDS) as response:
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
