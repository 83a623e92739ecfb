"""AWS Signature Version 4 for one HTTP request: pure functions, no I/O.

The Lambdas' own AWS calls (DynamoDB's JSON API, the Management API's
posts) are signed here instead of by botocore, whose import and client
construction (service model, endpoint rules) are most of a cold start
(`signed_http.py` says why). The algorithm is AWS's published one; the
tests sign the same requests with botocore's `SigV4Auth` and compare.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

__all__ = ["Credentials", "canonical_query", "sign"]

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key={self.access_key!r})"


@lru_cache(maxsize=16)
def _signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    """The day's key for (region, service): four HMACs, cached (it changes daily)."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), day.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def canonical_query(params: dict[str, str]) -> str:
    """`params` as SigV4's canonical query string, which is also a valid one
    to send: names and values percent-encoded (all but A-Z a-z 0-9 - _ . ~),
    sorted, a name without a value written `name=`."""
    return "&".join(
        sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params.items())
    )


def sign(
    *,
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    amz_date: str,
    query: str = "",
    payload_hash: str | None = None,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date, X-Amz-Security-Token (with a session
    token) and Authorization, for the request as given: `path` as sent on
    the wire (already percent-encoded), `query` as `canonical_query` makes
    it, `amz_date` as YYYYMMDD'T'HHMMSS'Z' (UTC). Every header given is
    signed. S3 differs from the other services in two ways: its path is
    signed as sent, not encoded a second time, and the payload's hash
    (`payload_hash`, else computed from `body`) travels in
    X-Amz-Content-Sha256, added here."""
    s3 = service == "s3"
    digest = payload_hash if payload_hash is not None else hashlib.sha256(body).hexdigest()
    out = {**headers, "Host": host, "X-Amz-Date": amz_date}
    if s3:
        out["X-Amz-Content-Sha256"] = digest
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    canonical = sorted((k.lower(), " ".join(v.split())) for k, v in out.items())
    signed_headers = ";".join(k for k, _ in canonical)
    request = "\n".join(
        (
            method,
            (path or "/") if s3 else quote(path or "/", safe="/~"),
            query,
            "".join(f"{k}:{v}\n" for k, v in canonical),
            signed_headers,
            digest,
        )
    )
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = _signing_key(credentials.secret_key, day, region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out
