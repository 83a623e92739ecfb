"""The store-backed sync of one invocation, over the container's backend:
what the WebSocket and stream Lambdas work with."""

from __future__ import annotations

from runtime.sync.stored import StoredSync

from .backend import lambda_backend
from .connections import ManagementApiPoster
from .observe import log_call

__all__ = ["sync_for"]


def sync_for(endpoint: str | None, holder: str) -> StoredSync:
    """The store-backed sync, posting to PYCONVEX_WS_ENDPOINT or else
    `endpoint`; `holder` names its leases (the invocation's request id)."""
    backend, settings = lambda_backend(on_call=log_call)
    endpoint = settings.ws_endpoint or endpoint
    if not endpoint:
        raise RuntimeError(
            "PYCONVEX_WS_ENDPOINT is not set: name the WebSocket API's Management API "
            "endpoint (https://<api id>.execute-api.<region>.amazonaws.com/<stage>)"
        )
    return StoredSync(
        backend.database,
        backend.executor,
        backend.store,
        ManagementApiPoster(endpoint),
        holder=holder,
        verify=backend.verify_token,
    )
