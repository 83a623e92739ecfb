"""Authentication: verifying the bearer tokens of `functions/auth.config.py`'s providers.

Pure logic plus one HTTP-fetching adapter (`fetch.py`). The shells call
`Authenticator.verify(token)` before a function runs and hand the identity
it returns to the call; the functions never see a token.
"""

from __future__ import annotations

from .errors import AuthConfigError, Unauthenticated
from .identity import identity_from_claims
from .providers import Provider, parse_providers
from .verify import Authenticator

__all__ = [
    "AuthConfigError",
    "Authenticator",
    "Provider",
    "Unauthenticated",
    "identity_from_claims",
    "parse_providers",
]
