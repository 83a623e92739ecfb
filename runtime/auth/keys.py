"""A provider's signing keys, cached per process, re-fetched at a bounded rate.

The key set (and, for OIDC, the discovery document naming it) is fetched on
first use and kept for AUTH_JWKS_MAX_AGE_SECONDS. A token whose `kid` is not
in the set re-fetches it (the provider rotated its keys), but at most once
per AUTH_JWKS_REFETCH_SECONDS, so a flood of made-up kids does not hammer
the provider. A failed fetch is remembered (not as keys) for
AUTH_FETCH_RETRY_SECONDS and its reason given to the tokens it refuses.

Only asymmetric keys are kept: a symmetric (`oct`) key in a key set is
dropped, so no token can be verified against a shared secret.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..limits import (
    AUTH_FETCH_RETRY_SECONDS,
    AUTH_JWKS_MAX_AGE_SECONDS,
    AUTH_JWKS_REFETCH_SECONDS,
)
from .errors import Unauthenticated
from .fetch import FetchError
from .providers import Provider, check_url

if TYPE_CHECKING:  # PyJWT (and cryptography) load on the first token: cold starts skip them
    import jwt

__all__ = ["KeySet"]

_DEFAULT_ALG = {
    "RSA": "RS256",
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
    "OKP": "EdDSA",
}


class KeySet:
    """The keys of one provider, by kid; thread-safe (one fetch at a time)."""

    def __init__(
        self, provider: Provider, fetch: Callable[[str], bytes], clock: Callable[[], float]
    ) -> None:
        self.provider = provider
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._jwks_url = provider.jwks_url
        self._failure: tuple[float, str] | None = None
        self._refetched_at: float | None = None

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key for `kid` (None: the token names none, so the set's only key), or Unauthenticated."""
        with self._lock:
            now = self._clock()
            fresh = self._keys is None or now - self._fetched_at >= AUTH_JWKS_MAX_AGE_SECONDS
            if fresh:
                self._load(now)
            found = self._find(kid)
            # Keys just read are as fresh as a re-fetch would make them.
            if found is None and kid is not None and not fresh and self._may_refetch(now):
                self._refetched_at = now
                self._load(now, rediscover=False)
                found = self._find(kid)
            if found is not None:
                return found
            if kid is None:
                raise Unauthenticated(
                    "Token has no key id (kid) and the provider "
                    f"{self.provider.issuer} has {len(self._keys or {})} keys: "
                    "sign tokens with a `kid` header naming one of its keys"
                )
            raise Unauthenticated(
                f"Unknown key id (kid) {kid!r}: no key of the provider {self.provider.issuer} "
                "has it (a rotated or forged key)"
            )

    def _may_refetch(self, now: float) -> bool:
        last = self._refetched_at
        return last is None or now - last >= AUTH_JWKS_REFETCH_SECONDS

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys or {}
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    def _load(self, now: float, *, rediscover: bool = True) -> None:
        if self._failure is not None and now - self._failure[0] < AUTH_FETCH_RETRY_SECONDS:
            raise Unauthenticated(self._failure[1])
        try:
            if self._jwks_url is None or (rediscover and self.provider.discovery_url):
                self._jwks_url = self._discover()
            keys = self._parse_jwks(self._get_json(self._jwks_url, "key set"))
        except Unauthenticated as e:
            self._failure = (now, e.message)
            raise
        self._keys, self._fetched_at, self._failure = keys, now, None

    def _discover(self) -> str:
        url = self.provider.discovery_url
        assert url is not None  # customJwt providers carry jwks_url
        document = self._get_json(url, "OIDC discovery document")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise Unauthenticated(
                f"The OIDC discovery document {url} has no `jwks_uri`: is "
                f"{self.provider.issuer} an OpenID Connect provider?"
            )
        try:
            return check_url(jwks_uri, f"The `jwks_uri` of {url}")
        except Exception as e:
            raise Unauthenticated(str(e)) from None

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            body = self._fetch(url)
        except FetchError as e:
            raise Unauthenticated(
                f"Could not fetch the {what} of {self.provider.issuer}: {e}"
            ) from None
        except Exception as e:  # a fetch passed in by the shell may raise anything
            raise Unauthenticated(
                f"Could not fetch the {what} of {self.provider.issuer} from {url}: {e}"
            ) from None
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise Unauthenticated(f"The {what} at {url} is not a JSON object")
        return document

    def _parse_jwks(self, document: dict[str, Any]) -> dict[str | None, jwt.PyJWK]:
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise Unauthenticated(f"The key set of {self.provider.issuer} has no `keys` list")
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in entries:
            key = _usable_key(entry, self.provider.algorithms)
            if key is not None:
                keys.setdefault(key.key_id, key)
        if not keys:
            raise Unauthenticated(
                f"The key set of {self.provider.issuer} has no usable signing key "
                f"(accepted algorithms: {', '.join(self.provider.algorithms)})"
            )
        return keys


def _usable_key(entry: object, algorithms: tuple[str, ...]) -> jwt.PyJWK | None:
    """`entry` as a PyJWK bound to its one algorithm, or None if it is not an asymmetric signing key we accept."""
    import jwt

    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    kty = entry.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        return None  # "oct" and unknown kinds: never verify with a shared secret
    alg = entry.get("alg") or _DEFAULT_ALG.get(str(entry.get("crv")) if kty == "EC" else str(kty))
    if alg not in algorithms:
        return None
    try:
        return jwt.PyJWK(entry, algorithm=alg)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
