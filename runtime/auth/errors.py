"""The two ways auth fails: a bad `auth.config.py`, or a refused token."""

from __future__ import annotations

from ..errors import PlatformError

__all__ = ["AuthConfigError", "Unauthenticated"]


class AuthConfigError(PlatformError):
    """`functions/auth.config.py` declares providers that cannot be used.

    Raised while the functions load, so a bad config is refused on reload
    and the previous one stays in force; the message names the entry, the
    field and what to write instead."""

    code = "AUTH_CONFIG_INVALID"


class Unauthenticated(PlatformError):
    """A token was refused; `.message` says why (expired, wrong audience,
    unknown issuer, bad signature, algorithm not allowed, ...).

    The code is Convex's: HTTP answers 401 `{"code": "Unauthenticated",
    "message": ...}`, the socket an `AuthError` with the message."""

    code = "Unauthenticated"
