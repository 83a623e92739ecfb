"""Who calls: the `Authorization` header of an HTTP API call or HTTP action.

- none: anonymous;
- `Convex <admin key>`: the admin (internal functions, admin routes);
- `Convex <admin key>:<base64 JSON identity>`: the admin acting as that user
  (Convex's `setAdminAuth(key, actingAsIdentity)`, the CLI's `run --identity`);
- `Bearer <jwt>`: a user, verified against `functions/auth.config.py`.

A refused token answers 401 `{"code": "Unauthenticated", "message": why}`
before anything runs, and the server log says why.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from runtime.auth import Unauthenticated
from runtime.backend import Backend

from .wire import BadRequest

__all__ = ["caller_of"]


async def caller_of(
    backend: Backend, header: str | None, *, site: bool = False
) -> tuple[bool, dict[str, Any] | None]:
    """(is the admin, the identity) for an `Authorization` header value.
    `site`: an HTTP action's request, where only `Bearer` means a user and any
    other scheme (a webhook's `Basic ...`) is the handler's own business."""
    if not header:
        return False, None
    if site and header.partition(" ")[0].lower() != "bearer":
        return False, None
    if backend.is_admin(header):
        return True, None
    if header.startswith("Convex "):
        acting = backend.acting_as(header)
        if acting is not None:
            return True, acting
        raise BadRequest(401, "BAD_ADMIN_KEY", "the admin key is not this backend's")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BadRequest(
            401,
            "Unauthenticated",
            "Authorization must be `Bearer <token>` (a user) or `Convex <admin key>`",
        )
    try:
        identity = await anyio.to_thread.run_sync(backend.verify_token, token.strip())
    except Unauthenticated as e:
        raise BadRequest(401, "Unauthenticated", e.message) from None
    return False, identity
