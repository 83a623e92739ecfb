"""The API Gateway and Lambda limits the local harness enforces, each with its
number and the reason, so code that works on `aws-local` works on AWS.

They are AWS's quotas, not the platform's own (those are in
`runtime/limits.py`); a `GatewayLimits` holds them so a test can shrink one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "HTTP_INTEGRATION_SECONDS",
    "HTTP_PAYLOAD_BYTES",
    "LAMBDA_PAYLOAD_BYTES",
    "WS_INTEGRATION_SECONDS",
    "WS_MESSAGE_BYTES",
    "GatewayLimits",
]

HTTP_PAYLOAD_BYTES = 10 * 1024 * 1024
"""10 MB per HTTP API request body: API Gateway answers 413 past it (the
Lambda's own 6 MB event limit, below, usually bites first)."""

LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
"""6 MB per synchronous invocation, event and response each (Lambda's
quota): a bigger request fails with 413, a bigger response with 500 (the
harness logs which limit it was)."""

HTTP_INTEGRATION_SECONDS = 30.0
"""An HTTP API waits 30 s for its Lambda, then answers 503; the Lambda runs on
(here: its thread does, its answer is dropped)."""

WS_INTEGRATION_SECONDS = 29.0
"""A WebSocket API waits 29 s for a route's integration."""

WS_MESSAGE_BYTES = 128 * 1024
"""128 KiB per WebSocket message, either way: a bigger incoming message
closes the connection with 1009, a bigger post answers 413
(PayloadTooLargeException). The 32 KiB frame limit is not emulated."""


@dataclass(frozen=True)
class GatewayLimits:
    http_payload_bytes: int = HTTP_PAYLOAD_BYTES
    lambda_payload_bytes: int = LAMBDA_PAYLOAD_BYTES
    http_timeout: float = HTTP_INTEGRATION_SECONDS
    ws_timeout: float = WS_INTEGRATION_SECONDS
    ws_message_bytes: int = WS_MESSAGE_BYTES
