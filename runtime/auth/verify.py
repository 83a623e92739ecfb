"""Verifying a bearer token against the configured providers.

The token's unverified `iss` only chooses the provider; then PyJWT checks
the signature with that provider's key (bound to the key's one algorithm,
from an allow-list of asymmetric ones), the issuer and the audience. The
times (`exp`, `nbf`, `iat`) are compared here against the injected clock
with AUTH_CLOCK_LEEWAY_SECONDS, so tests can freeze time; PyJWT's own time
checks read the wall clock and are turned off. Every refusal is an
Unauthenticated whose message says why.

Runs in the shell, before a function starts: nothing here runs inside user
code (queries and mutations refuse network I/O, and a key fetch is one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..limits import AUTH_CLOCK_LEEWAY_SECONDS
from .errors import Unauthenticated
from .fetch import http_fetch
from .identity import identity_from_claims
from .keys import KeySet
from .providers import Provider, normalize_issuer

__all__ = ["Authenticator"]

_REQUIRED = ("iss", "sub", "exp")


class Authenticator:
    """Turns a token into an identity (Convex's field names) or refuses it with the reason."""

    def __init__(
        self,
        providers: list[Provider],
        *,
        fetch: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._by_issuer: dict[str, list[KeySet]] = {}
        for provider in providers:
            keys = KeySet(provider, fetch or http_fetch, clock)
            self._by_issuer.setdefault(provider.issuer, []).append(keys)

    @property
    def configured(self) -> bool:
        """Whether any provider is configured (without one, every token is refused)."""
        return bool(self._by_issuer)

    def verify(self, token: str) -> dict[str, Any]:
        """The identity `token` proves, or Unauthenticated(why)."""
        header, claims = _unverified(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS"):
            raise Unauthenticated(
                f"Token algorithm {alg!r} is not allowed: tokens must be signed with an "
                "asymmetric algorithm (RS256, ES256, ...), never `none` or HS*"
            )
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Unauthenticated("Token has no issuer (`iss` claim)")
        candidates = self._by_issuer.get(normalize_issuer(issuer))
        if not candidates:
            known = (
                ", ".join(sorted(self._by_issuer))
                or "none: functions/auth.config.py declares no provider"
            )
            raise Unauthenticated(f"Unknown issuer {issuer!r}: configured issuers are {known}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("Malformed token: the `kid` header is not a string")
        failures: list[Unauthenticated] = []
        for keys in candidates:  # several providers may share an issuer (one per audience)
            try:
                return self._verify_with(keys, token, alg, kid, issuer)
            except Unauthenticated as e:
                failures.append(e)
        # "wrong audience" from one provider only means the token is for another:
        # a reason from the provider it is for says more.
        raise next((e for e in failures if not _is_audience(e)), failures[0])

    def _verify_with(
        self, keys: KeySet, token: str, alg: str, kid: str | None, issuer: str
    ) -> dict[str, Any]:
        import jwt  # loaded on the first token (cold starts skip it)

        provider = keys.provider
        if alg not in provider.algorithms:
            raise Unauthenticated(
                f"Token algorithm {alg!r} is not allowed for the provider {provider.issuer} "
                f"(allowed: {', '.join(provider.algorithms)})"
            )
        key = keys.key(kid)
        if key.algorithm_name != alg:
            raise Unauthenticated(
                f"Token algorithm {alg!r} does not match its key {kid!r}, which is for "
                f"{key.algorithm_name}"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=provider.audience,
                issuer=issuer,  # the provider matched it up to a trailing slash
                options={
                    "require": list(_REQUIRED),
                    "verify_aud": provider.audience is not None,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                f"Bad signature: the token was not signed by the key {key.key_id!r} of "
                f"{provider.issuer}"
            ) from None
        except jwt.InvalidAudienceError:
            raise _audience_error(provider.audience) from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthenticated(f"Token has no `{e.claim}` claim") from None
        except jwt.InvalidAlgorithmError as e:
            raise Unauthenticated(f"Token algorithm {alg!r} is not allowed: {e}") from None
        except jwt.PyJWTError as e:
            raise Unauthenticated(f"Malformed token: {e}") from None
        self._check_times(claims)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated("Token's subject (`sub` claim) is not a non-empty string")
        return identity_from_claims(claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise Unauthenticated(f"Malformed token: the `{name}` claim is not a number")
        if claims["exp"] + AUTH_CLOCK_LEEWAY_SECONDS <= now:
            raise Unauthenticated(
                f"Token expired {_ago(now - claims['exp'])} ago (`exp` claim): fetch a fresh token"
            )
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and value - AUTH_CLOCK_LEEWAY_SECONDS > now:
                raise Unauthenticated(
                    f"Token is not yet valid: its `{name}` claim is {_ago(value - now)} in the "
                    "future (check the issuer's clock)"
                )


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of `token`, unverified: only to choose the provider."""
    import jwt  # loaded on the first token (cold starts skip it)

    if not isinstance(token, str) or token.count(".") != 2:
        raise Unauthenticated("Malformed token: a JWT has three dot-separated parts")
    try:
        # One parse for both (PyJWT's segment decoding is most of a verify's cost).
        parts = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise Unauthenticated(f"Malformed token: {e}") from None
    header, claims = parts["header"], parts["payload"]
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthenticated("Malformed token: its header or payload is not a JSON object")
    return header, claims


def _audience_error(audience: str | None) -> Unauthenticated:
    error = Unauthenticated(
        f"Wrong audience: the token is not for this application (`aud` must contain {audience!r})"
    )
    error.details["audience"] = True
    return error


def _is_audience(error: Unauthenticated) -> bool:
    return bool(error.details.get("audience"))


def _ago(seconds: float) -> str:
    return f"{seconds:.0f}s"
