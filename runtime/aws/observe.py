"""Logs and metrics of the Lambda handlers (Powertools): one Logger and one
Metrics per container, shared by the handlers (the local harness runs all
three in one process). The service name comes from POWERTOOLS_SERVICE_NAME,
set per function by the template."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from runtime.functions.executor import CallResult

from . import snapstart  # noqa: F401  (SnapStart restore hook, registered on import)

__all__ = ["count", "log_call", "logger", "metrics"]

logger = Logger(service="pyconvex")
metrics = Metrics(namespace="pyconvex")


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def log_call(result: CallResult) -> None:
    """Executor listener: one log line and three metrics per function call."""
    fields = {"function": result.path, "kind": result.kind, "ms": round(result.duration * 1000, 3)}
    if result.ok:
        logger.info("call", extra=fields)
    else:
        # The request id the caller read in `[Request ID: ...] Server Error`.
        error = {"error": result.logged_message, "request_id": result.request_id}
        logger.warning("call failed", extra={**fields, **error})
    count(f"{result.kind}_calls")
    if not result.ok:
        count(f"{result.kind}_errors")
    metrics.add_metric(name="call_ms", unit=MetricUnit.Milliseconds, value=result.duration * 1000)
