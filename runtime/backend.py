"""One app's backend: the store, the database, the app's functions, its
environment variables and admin key, wired together.

The dev server builds one over SQLite under `--data`; the AWS shell builds
one over DynamoDB. `reload()` re-imports `functions/` and pushes its schema:
if anything fails (an import error, a schema the stored documents violate),
the functions and schema in force stay as they were and the error is kept
in `load_error` for the log and for callers.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from runtime.database import Database
from runtime.errors import PlatformError
from runtime.functions import FunctionRegistry, load_functions
from runtime.functions.environment import Environment
from runtime.functions.executor import CallResult, Executor
from runtime.functions.platform_store import PlatformStore
from runtime.store.port import Store

__all__ = ["Backend", "ReloadReport", "read_admin_key"]

ADMIN_KEY_FILE = "admin_key"


class ReloadReport:
    def __init__(self, ok: bool, functions: int, message: str) -> None:
        self.ok = ok
        self.functions = functions
        self.message = message


class Backend:
    def __init__(
        self,
        store: Store,
        functions_dir: Path,
        *,
        admin_key: str,
        prod: bool = False,
        on_call: Callable[[CallResult], None] | None = None,
        on_progress: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.store = store
        self.functions_dir = functions_dir
        self.admin_key = admin_key
        self.prod = prod
        self.database = Database(PlatformStore(store))
        self.environment = Environment(store)
        self.environment.apply()
        self._listeners: list[Callable[[CallResult], None]] = [on_call] if on_call else []
        self._reload_listeners: list[Callable[[], None]] = []
        self.executor = Executor(
            self.database, FunctionRegistry({}), prod=prod, on_call=self._dispatch
        )
        self.load_error: str | None = None
        self._on_progress = on_progress
        self._reload_lock = threading.Lock()

    def add_listener(self, listener: Callable[[CallResult], None]) -> None:
        """Called after every function call (the call log, the sync hub)."""
        self._listeners.append(listener)

    def add_reload_listener(self, listener: Callable[[], None]) -> None:
        """Called after functions were reloaded successfully."""
        self._reload_listeners.append(listener)

    def _dispatch(self, result: CallResult) -> None:
        for listener in self._listeners:
            listener(result)

    @property
    def registry(self) -> FunctionRegistry:
        return self.executor.registry

    def reload(self, *, push_schema: bool = True) -> ReloadReport:
        """Import the functions and push the schema; all or nothing.
        `push_schema=False` serves the schema as the store already has it
        (Lambdas: the deploy pushes it once)."""
        with self._reload_lock:
            try:
                registry = load_functions(self.functions_dir)
                if push_schema:
                    self.database.set_schema(registry.schema, self._on_progress)
                else:
                    self.database.adopt_schema(registry.schema)
            except PlatformError as e:
                self.load_error = e.message
                kept = len(self.registry.functions)
                return ReloadReport(False, kept, e.message)
            self.executor.registry = registry
            self.load_error = None
        for listener in self._reload_listeners:
            listener()
        return ReloadReport(True, len(registry.functions), "")

    def is_admin(self, authorization: str | None) -> bool:
        """`Authorization: Convex <admin key>` (what `set_admin_auth` sends)."""
        if not authorization or not authorization.startswith("Convex "):
            return False
        return hmac.compare_digest(authorization[len("Convex ") :].strip(), self.admin_key)

    def close(self) -> None:
        self.environment.withdraw()
        self.store.close()


def read_admin_key(data_dir: Path, *, create: bool = False) -> str | None:
    """The dev backend's admin key, kept in `<data>/admin_key` (mode 0600)."""
    path = data_dir / ADMIN_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
