"""One app's backend: the store, the database, the app's functions, its
environment variables and admin key, wired together.

The dev server builds one over SQLite under `--data`; the AWS shell builds
one over DynamoDB. An admin key is checked by `check_admin_key` wherever one
is accepted (here, the dev server's key file, the CLI); `admin_key=None`
means no admin access at all (a deploy, a Lambda without the key). `urls`:
the deployment's own URLs (`{"CONVEX_CLOUD_URL": ..., "CONVEX_SITE_URL":
...}`, what functions see in `os.environ`) when the shell knows them; else
they are read from the store, where a deploy recorded them
(`Environment.record_system`). `snapshots`: see the attribute. `blobs`: where
files' bytes live (`runtime/files`); `files_url`: where their URLs point when
not at the deployment itself (the AWS harness reads S3 directly).

`reload()` re-imports `functions/` and pushes its schema: if anything fails
(an import error, a schema the stored documents violate), the functions and
schema in force stay as they were and the error is kept in `load_error` for
the log and for callers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runtime.auth import Authenticator, Unauthenticated
from runtime.database import Database
from runtime.database.history import SnapshotSource
from runtime.errors import PlatformError
from runtime.files.port import BlobStore
from runtime.files.storage import FileStorage
from runtime.functions import FunctionRegistry, load_functions
from runtime.functions.call_history import CallHistory
from runtime.functions.environment import Environment
from runtime.functions.executor import CallResult, Executor
from runtime.functions.platform_store import PlatformStore
from runtime.limits import ADMIN_KEY_MIN_CHARS
from runtime.scheduler.crons import CronSource
from runtime.scheduler.runner import JobRunner
from runtime.scheduler.timer import JobSource, Timer, TimerSource
from runtime.store.port import Store

__all__ = ["AdminKeyError", "Backend", "ReloadReport", "check_admin_key", "read_admin_key"]

log = logging.getLogger("runtime.auth")

ADMIN_KEY_FILE = "admin_key"
_KEY_CHARS = re.compile(r"[\x21-\x7e]*\Z")
_MIN_DISTINCT = 10
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"


class AdminKeyError(PlatformError):
    """An admin key too weak to guard the admin routes: refused at start."""

    code = "ADMIN_KEY_INVALID"


def check_admin_key(key: str, source: str = "the admin key") -> str:
    """`key` if it can guard the admin routes, else AdminKeyError naming
    `source` (where the key came from). A key is at least
    ADMIN_KEY_MIN_CHARS printable ASCII characters without spaces (it travels
    in an HTTP header and is compared byte for byte), not a few characters
    repeated; 32 random bytes in hex or base64url pass."""
    problem = None
    if not isinstance(key, str) or not key:
        problem = "is empty"
    elif not _KEY_CHARS.match(key):
        problem = "holds spaces, control or non-ASCII characters"
    elif len(key) < ADMIN_KEY_MIN_CHARS:
        problem = f"is {len(key)} characters; it needs at least {ADMIN_KEY_MIN_CHARS}"
    elif len(set(key)) < _MIN_DISTINCT:
        problem = f"uses only {len(set(key))} distinct characters: it is not random"
    if problem is not None:
        raise AdminKeyError(
            f"{source} {problem} (ADMIN_KEY_MIN_CHARS). Use 32 random bytes, e.g. the "
            f"output of {MAKE_A_KEY}"
        )
    return key


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
        admin_key: str | None,
        prod: bool = False,
        on_call: Callable[[CallResult], None] | None = None,
        on_progress: Callable[[str, str, int], None] | None = None,
        snapshots: SnapshotSource | None = None,
        urls: Mapping[str, str] | None = None,
        blobs: BlobStore | None = None,
        files_url: str | None = None,
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        """Fixed read views of the store (SQLite), which queries at a past
        timestamp need; None where the store has none (DynamoDB)."""
        self.functions_dir = functions_dir
        self.admin_key = None if admin_key is None else check_admin_key(admin_key)
        self._admin_header = None if admin_key is None else ("Convex " + admin_key).encode("ascii")
        self.prod = prod
        self.database = Database(PlatformStore(store))
        self.environment = Environment(store, system=urls)
        self.environment.apply()
        self.history = CallHistory()
        """The last calls, for `/api/admin/logs` (the CLI's `logs`, the dashboard)."""
        self._listeners: list[Callable[[CallResult], None]] = [self.history]
        if on_call is not None:
            self._listeners.append(on_call)
        self._reload_listeners: list[Callable[[], None]] = []
        self.executor = Executor(
            self.database, FunctionRegistry({}), prod=prod, on_call=self._dispatch
        )
        self.files: FileStorage | None = None
        """`ctx.storage` and the upload and file routes; None without a blob store."""
        if blobs is not None:
            self.files = FileStorage(
                self.database, blobs, urls=lambda: self.environment.system, files_url=files_url
            )
            self.executor.files = self.files
        self.load_error: str | None = None
        self.authenticator = Authenticator([])
        """Verifies user tokens against the loaded `auth.config.py`; replaced
        only when a reload changes the providers, so the key cache survives."""
        self._on_progress = on_progress
        self._reload_lock = threading.Lock()
        self.timer: Timer | None = None
        """The embedded timer (`start_timer`: the dev server); None on AWS,
        where SQS and EventBridge Scheduler drive the same runners."""

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
            if registry.providers != self.registry.providers:
                self.authenticator = Authenticator(registry.providers)
            self.executor.registry = registry
            self.load_error = None
        for listener in self._reload_listeners:
            listener()
        return ReloadReport(True, len(registry.functions), "")

    def verify_token(self, token: str) -> dict[str, Any]:
        """The identity a user token proves, or Unauthenticated saying why.
        Blocks (it may fetch a provider's keys): async callers run it in a
        thread. A token when no provider is configured is refused too, so a
        client never believes it is signed in when it is not."""
        authenticator = self.authenticator
        try:
            if not authenticator.configured:
                raise Unauthenticated(
                    "No auth provider is configured: add one to functions/auth.config.py, "
                    "or call without a token"
                )
            return authenticator.verify(token)
        except Unauthenticated as e:
            log.warning("refused a user token: %s", e.message)
            raise

    def acting_as(self, authorization: str | None) -> dict[str, Any] | None:
        """The identity of `Authorization: Convex <admin key>:<base64 JSON
        identity>` (what Convex's `setAdminAuth(key, actingAsIdentity)` sends:
        an admin calling as a user, the CLI's `run --identity`), or None when
        the header is not that with this backend's admin key."""
        if self._admin_header is None or not authorization or ":" not in authorization:
            return None
        key, _, encoded = authorization.rpartition(":")
        if not self.is_admin(key):
            return None
        try:
            identity = json.loads(base64.b64decode(encoded, validate=True))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(identity, dict) or not isinstance(identity.get("subject"), str):
            return None
        if not isinstance(identity.get("issuer"), str):
            return None
        identity.setdefault("tokenIdentifier", f"{identity['issuer']}|{identity['subject']}")
        return identity

    def is_admin(self, authorization: str | None) -> bool:
        """`Authorization: Convex <admin key>` (what `set_admin_auth` sends),
        compared byte for byte: nothing trimmed. ASGI servers decode header
        bytes as latin-1, so any header (non-ASCII too) compares without error."""
        if self._admin_header is None or not authorization:
            return False
        try:
            given = authorization.encode("latin-1")
        except UnicodeEncodeError:  # not from a header: no key matches it
            return False
        return hmac.compare_digest(given, self._admin_header)

    def timer_sources(self) -> list[TimerSource]:
        """What the embedded timer drives: the job queue and the crons (the
        crons follow reloads). A new kind of timed work adds its source here."""
        crons = CronSource(self.executor)
        self.add_reload_listener(crons.reload)
        return [JobSource(JobRunner(self.executor)), crons]

    def start_timer(self) -> Timer:
        """Start the embedded timer (the dev server, the only worker of its
        data): actions a dead process left in progress fail at once, overdue
        jobs run, old jobs are trimmed, and every commit that schedules wakes it."""
        sources = self.timer_sources()
        timer = Timer(sources)
        for source in sources:
            if isinstance(source, JobSource):
                source.wake = timer.notify
                source.start()
        self.executor.on_scheduled = timer.notify
        self.add_reload_listener(timer.notify)
        timer.start()
        self.timer = timer
        return timer

    def stop_timer(self, timeout: float | None = None) -> None:
        """Stop the timer; runs in flight are not waited for past `timeout`."""
        if self.timer is not None:
            self.executor.on_scheduled = None
            self.timer.stop(timeout)
            self.timer = None

    def close(self) -> None:
        self.stop_timer(0)
        self.environment.withdraw()
        if self.files is not None:
            self.files.blobs.close()
        self.store.close()


def read_admin_key(data_dir: Path, *, create: bool = False) -> str | None:
    """The dev backend's admin key, kept in `<data>/admin_key` (mode 0600;
    `create`: made, with the folder (0700), if missing). A key there that
    `check_admin_key` refuses raises AdminKeyError saying how to fix it."""
    path = data_dir / ADMIN_KEY_FILE
    if path.exists():
        raw = path.read_bytes()
        text = raw.removesuffix(b"\n").removesuffix(b"\r")  # the line end editors add
        fix = f"Delete {path} (the dev server then makes a new key) or write a new one there."
        try:
            key = text.decode("ascii")
        except UnicodeDecodeError:
            raise AdminKeyError(f"{path} holds non-ASCII bytes, not an admin key. {fix}") from None
        try:
            return check_admin_key(key, f"the admin key in {path}")
        except AdminKeyError as e:
            raise AdminKeyError(f"{e.message} {fix}") from None
    if not create:
        return None
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
