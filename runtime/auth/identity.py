"""A verified token's claims as Convex's `UserIdentity` (what `get_user_identity()` returns).

`tokenIdentifier` is `"<iss>|<sub>"`; the OpenID standard claims get
Convex's camelCase names; any other claim passes through under its own name.
The registered claims that only served verification (`aud`, `exp`, `iat`,
`nbf`, `jti`, and `iss`/`sub`, already present as `issuer`/`subject`) are
left out, as Convex leaves them out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STANDARD_CLAIMS", "identity_from_claims"]

STANDARD_CLAIMS: dict[str, str] = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "nickname": "nickname",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "email": "email",
    "email_verified": "emailVerified",
    "gender": "gender",
    "birthdate": "birthday",
    "zoneinfo": "timezone",
    "locale": "language",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
    "address": "address",
    "updated_at": "updatedAt",
}
"""OpenID Connect standard claim -> Convex's UserIdentity field."""

_DROPPED = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti"})


def identity_from_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The identity for verified `claims` (which carry string `iss` and `sub`)."""
    issuer = claims["iss"]
    subject = claims["sub"]
    identity: dict[str, Any] = {
        "tokenIdentifier": f"{issuer}|{subject}",
        "subject": subject,
        "issuer": issuer,
    }
    for claim, value in claims.items():
        if claim in _DROPPED:
            continue
        field = STANDARD_CLAIMS.get(claim, claim)
        if field in ("tokenIdentifier", "subject", "issuer"):
            continue  # a custom claim may not pose as the verified ones
        identity[field] = value
    return identity
