"""One backend per Lambda container, built on its first invocation.

The schema is served as the store has it (`push_schema=False`): pushing it
(building indexes) is the deploy's job, done once, not every cold start's.

The admin key is read here, once per container (settings.py: from Secrets
Manager). A function given none (the WebSocket and stream functions serve no
admin route, and their roles may not read the secret) has no admin access.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from runtime.backend import Backend
from runtime.functions import logs
from runtime.functions.executor import CallResult
from runtime.store.dynamodb import DynamoDBStore

from .settings import Settings

__all__ = ["lambda_backend", "reset"]

_lock = threading.Lock()
_backend: Backend | None = None
_settings: Settings | None = None


def lambda_backend(
    on_call: Callable[[CallResult], None] | None = None,
) -> tuple[Backend, Settings]:
    global _backend, _settings
    with _lock:
        if _backend is None or _settings is None:
            settings = Settings.from_env()
            logs.install()
            backend = Backend(
                DynamoDBStore(settings.table),
                settings.functions,
                admin_key=settings.admin_key,
                prod=settings.prod,
                on_call=on_call,
            )
            report = backend.reload(push_schema=False)
            if not report.ok:
                raise RuntimeError(f"the app's functions failed to load: {report.message}")
            _backend, _settings = backend, settings
        _backend.environment.refresh(_settings.env_max_age)
        return _backend, _settings


def reset() -> None:
    """Forget the container's backend (tests that change the settings)."""
    global _backend, _settings
    with _lock:
        if _backend is not None:
            _backend.close()
        _backend = _settings = None
