"""Validating `providers` from `functions/auth.config.py` (Convex's auth.config.ts shapes).

Two shapes, as in Convex:
- OIDC `{"domain": ..., "applicationID": ...}`: the issuer is the domain, the
  audience the applicationID, the keys found by OIDC discovery;
- `{"type": "customJwt", "issuer", "jwks", "algorithm": "RS256" | "ES256",
  "applicationID"?}`: keys at the given URL, one algorithm.

URLs must be https, except on a loopback host (local providers and tests).
Every refusal names the entry and the field, so the user can fix the file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .errors import AuthConfigError

__all__ = ["OIDC_ALGORITHMS", "Provider", "normalize_issuer", "parse_providers"]

OIDC_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""Asymmetric algorithms accepted from an OIDC provider (what its JWKS says a
key is for decides among them). Never `none`, never HS*: a symmetric
algorithm would let anyone holding the public key sign tokens."""

CUSTOM_JWT_ALGORITHMS = ("RS256", "ES256")
"""Convex's customJwt accepts exactly these."""

_LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class Provider:
    """One validated provider.

    `issuer` is the `iss` a token must carry (compared without a trailing
    slash); `audience` the `aud` it must contain (None: customJwt without
    applicationID, no audience check); keys come from `jwks_url`, or for OIDC
    from the `jwks_uri` of the discovery document at `discovery_url`."""

    kind: Literal["oidc", "customJwt"]
    issuer: str
    audience: str | None
    algorithms: tuple[str, ...]
    discovery_url: str | None = None
    jwks_url: str | None = None


def normalize_issuer(issuer: str) -> str:
    """Issuers compare without trailing slashes (Auth0 writes `https://x/`, configs often `https://x`)."""
    return issuer.rstrip("/")


def check_url(url: str, what: str) -> str:
    """`url` if it is https, or http on a loopback host; else AuthConfigError naming `what`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuthConfigError(f"{what} must be an https:// URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise AuthConfigError(
            f"{what} must use https:// ({url!r}); http:// is accepted only for a loopback "
            "host (127.0.0.1, localhost, [::1]) for local providers and tests"
        )
    return url


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_providers(value: object, source: str) -> list[Provider]:
    """The providers `value` (the `providers` of `source`) declares; AuthConfigError if any is unusable."""
    if not isinstance(value, list | tuple):
        raise AuthConfigError(
            f"{source}: `providers` must be a list of provider dicts, got {type(value).__name__}"
        )
    return [_parse_entry(entry, f"{source}: providers[{i}]") for i, entry in enumerate(value)]


def _parse_entry(entry: object, where: str) -> Provider:
    if not isinstance(entry, dict):
        raise AuthConfigError(
            f"{where} must be a dict like {{'domain': 'https://issuer.example', "
            f"'applicationID': 'my-app'}}, got {type(entry).__name__}"
        )
    kind = entry.get("type")
    if kind is None:
        return _parse_oidc(entry, where)
    if kind == "customJwt":
        return _parse_custom(entry, where)
    raise AuthConfigError(
        f"{where}.type: unknown provider type {kind!r}; use 'customJwt', or leave `type` out "
        "for an OIDC provider ({'domain': ..., 'applicationID': ...})"
    )


def _parse_oidc(entry: dict[object, object], where: str) -> Provider:
    _no_extra(entry, {"domain", "applicationID"}, where)
    domain = _string(
        entry, "domain", where, "the OIDC provider's URL, e.g. 'https://issuer.example'"
    )
    audience = _string(entry, "applicationID", where, "the audience its tokens are issued for")
    check_url(domain, f"{where}.domain")
    return Provider(
        kind="oidc",
        issuer=normalize_issuer(domain),
        audience=audience,
        algorithms=OIDC_ALGORITHMS,
        discovery_url=normalize_issuer(domain) + "/.well-known/openid-configuration",
    )


def _parse_custom(entry: dict[object, object], where: str) -> Provider:
    _no_extra(entry, {"type", "issuer", "jwks", "algorithm", "applicationID"}, where)
    issuer = _string(entry, "issuer", where, "the `iss` its tokens carry")
    jwks = _string(entry, "jwks", where, "the URL of its JSON Web Key Set")
    algorithm = entry.get("algorithm")
    if algorithm not in CUSTOM_JWT_ALGORITHMS:
        raise AuthConfigError(
            f"{where}.algorithm must be 'RS256' or 'ES256' (what a customJwt provider may "
            f"sign with), got {algorithm!r}"
        )
    audience: str | None = None
    if "applicationID" in entry:
        audience = _string(entry, "applicationID", where, "the audience its tokens are issued for")
    check_url(jwks, f"{where}.jwks")
    return Provider(
        kind="customJwt",
        issuer=normalize_issuer(issuer),
        audience=audience,
        algorithms=(str(algorithm),),
        jwks_url=jwks,
    )


def _string(entry: dict[object, object], field: str, where: str, meaning: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if field not in entry else f"got {value!r}"
        raise AuthConfigError(f"{where}.{field} must be a non-empty string ({meaning}); {got}")
    return value.strip()


def _no_extra(entry: dict[object, object], allowed: set[str], where: str) -> None:
    extra = sorted(str(k) for k in entry if k not in allowed)
    if extra:
        raise AuthConfigError(
            f"{where}: unknown field(s) {', '.join(map(repr, extra))}; "
            f"a provider of this kind takes {', '.join(sorted(allowed))}"
        )
