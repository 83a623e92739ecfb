"""Running an app's functions: the one entry point for every shell.

`Executor.call(path, args)` resolves a public function, checks its
arguments, runs it by kind and returns a `CallResult` (value or error, log
lines, timing, commit timestamp, read set). The dev server, the CLI and the
Lambda handlers all call it; actions reach it again through `run_nested`.

- A query runs read-only at one snapshot; a mutation is one serializable
  transaction, re-run on conflict (the database core's `Database`). Both run
  deterministically (`determinism.frozen`): the clock frozen at the start,
  randomness seeded once per call, the network, processes and file writes
  refused. `ctx.db` is a facade over the attempt's transaction (`db.py`).
  Only the final attempt's log lines reach the caller. The `returns`
  validator runs inside the transaction, so a mutation whose result it
  rejects commits nothing.
- An action runs with the real clock and network, as `async def` on its own
  event loop or as a plain `def`, and times out after ACTION_TIMEOUT_SECONDS.
- Errors the caller can fix before anything runs (unknown function, bad
  arguments) raise `RequestError`s; errors from a function that ran are
  results: a `ConvexError`'s data reaches the caller as `error_data`, any
  other exception as its message, or "Server Error" in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from runtime.database import Database
from runtime.database.readwrite import ReadSet, WriteSet
from runtime.database.transaction import Transaction
from runtime.errors import ConvexError, PlatformError, ValidationError
from runtime.limits import ACTION_TIMEOUT_SECONDS, ARGUMENTS_BYTES
from runtime.store.port import Key
from runtime.values import UNDEFINED, InvalidValueError, check_value, dumps

from . import dedupe, determinism, logs
from .context import ActionCtx, AsyncActionCtx, Auth, MutationCtx, QueryCtx
from .logs import LogLines, capture
from .registry import FunctionDefinition, FunctionRegistry, Kind, normalize_path

__all__ = [
    "ArgumentsInvalid",
    "CallResult",
    "Executor",
    "FunctionNotFound",
    "RequestError",
    "WrongFunctionKind",
    "action_timeout",
]


class RequestError(PlatformError):
    """A call refused before anything ran (the HTTP API answers 4xx)."""

    status = 400


class FunctionNotFound(RequestError):
    code = "FUNCTION_NOT_FOUND"
    status = 404


class WrongFunctionKind(RequestError):
    code = "WRONG_FUNCTION_KIND"


class ArgumentsInvalid(RequestError):
    code = "ARGUMENTS_INVALID"


class ReturnsInvalid(PlatformError):
    code = "RETURNS_INVALID"


class ActionTimeout(PlatformError):
    code = "ACTION_TIMEOUT"


@dataclass
class CallResult:
    path: str
    kind: str
    """query, mutation, action, or http (an HTTP action)."""
    value: Any = None
    error_message: str | None = None
    error_data: Any = UNDEFINED
    """The data of a ConvexError; UNDEFINED for any other error."""
    error: BaseException | None = None
    logged_message: str | None = None
    """The full error message for the server's log (error_message is what the
    caller sees: "Server Error" in production)."""
    traceback: str | None = None
    log_lines: list[str] = field(default_factory=list)
    duration: float = 0.0
    """Seconds, wall clock."""
    ts: int | None = None
    """Commit timestamp of a mutation that wrote."""
    reads: ReadSet | None = None
    """What a query read (for subscriptions)."""
    writes: WriteSet | None = None
    """What a mutation committed (for subscriptions)."""
    journal: list[str | None] | None = None
    """A query's paginate end cursors (kept by live queries)."""
    nested: bool = False
    replayed: bool = False
    """A re-sent mutation request: its recorded result, nothing ran."""

    @property
    def ok(self) -> bool:
        return self.error_message is None


class Executor:
    def __init__(
        self,
        database: Database,
        registry: FunctionRegistry,
        *,
        prod: bool = False,
        on_call: Callable[[CallResult], None] | None = None,
        action_timeout: float = ACTION_TIMEOUT_SECONDS,
    ) -> None:
        determinism.install()
        self.database = database
        self.registry = registry
        self.prod = prod
        self.on_call = on_call
        self.action_timeout = action_timeout

    # ---- resolving and checking --------------------------------------------

    def resolve(
        self, fn: str | FunctionDefinition, *, kind: Kind | None, public_only: bool
    ) -> tuple[str, FunctionDefinition]:
        registry = self.registry
        if isinstance(fn, FunctionDefinition):
            found = registry.path_of(fn)
            if found is None:
                raise FunctionNotFound(
                    "this function object is not exported by a module under functions/"
                )
            path, defn = found, fn
        else:
            if not isinstance(fn, str) or not fn:
                raise FunctionNotFound(f"a function path is a string like 'bank:open', not {fn!r}")
            path = normalize_path(fn)
            maybe = registry.get(path)
            if maybe is None or (public_only and maybe.internal):
                public = "public " if public_only else ""
                raise FunctionNotFound(f"Could not find {public}function '{path}'", path=path)
            defn = maybe
        if kind is not None and defn.kind != kind:
            raise WrongFunctionKind(
                f"'{path}' is a {defn.kind}, not a {kind}: call it with the "
                f"{defn.kind} endpoint or method",
                path=path,
            )
        return path, defn

    def check_args(self, path: str, defn: FunctionDefinition, args: Any) -> dict[str, Any]:
        if args is None:
            args = {}
        if type(args) is not dict:
            raise ArgumentsInvalid(
                f"arguments to '{path}' must be an object, got {type(args).__name__}", path=path
            )
        try:
            check_value(args, path="args")
            if defn.args is not None:
                defn.args.validate(args, "args")
        except (ValidationError, InvalidValueError) as e:
            raise ArgumentsInvalid(f"invalid arguments to '{path}': {e}", path=path) from None
        return cast(dict[str, Any], args)

    # ---- calls -------------------------------------------------------------

    def call(
        self,
        fn: str,
        args: Any,
        *,
        kind: Kind | None = None,
        public_only: bool = True,
        identity: dict[str, Any] | None = None,
        request_key: Key | None = None,
    ) -> CallResult:
        """Run a function for a client. Raises RequestError when the call is
        refused before running; otherwise the outcome is in the result.

        `request_key` (mutations): a platform record written in the
        mutation's own transaction; if it is already there, the mutation ran
        before and its recorded result is returned without running it again
        (`replayed`). The sync protocol keys it by (session, request id)."""
        path, defn = self.resolve(fn, kind=kind, public_only=public_only)
        checked = self.check_args(path, defn, args)
        return self._execute(path, defn, checked, identity, request_key=request_key)

    def run_nested(self, fn: Any, args: Any, kind: Kind, identity: dict[str, Any] | None) -> Any:
        """`ctx.run_query/run_mutation/run_action` from an action: internal
        functions allowed; errors raise (a ConvexError keeps its data)."""
        path, defn = self.resolve(fn, kind=kind, public_only=False)
        checked = self.check_args(path, defn, args)
        size = len(dumps(checked))
        if size > ARGUMENTS_BYTES:
            raise ArgumentsInvalid(
                f"arguments to '{path}' are {size} bytes; the limit is {ARGUMENTS_BYTES}",
                path=path,
            )
        started = time.perf_counter()
        result = CallResult(path, defn.kind, nested=True)
        try:
            invoked = self._invoke(defn, checked, identity)
            result.ts, result.reads, result.writes = invoked.ts, invoked.reads, invoked.writes
            result.value = invoked.value
            return invoked.value
        except BaseException as e:
            result.error, result.error_message = e, _message(e)
            result.logged_message = result.error_message
            raise
        finally:
            result.duration = time.perf_counter() - started
            if self.on_call is not None:
                self.on_call(result)

    def _execute(
        self,
        path: str,
        defn: FunctionDefinition,
        args: dict[str, Any],
        identity: dict[str, Any] | None,
        database: Database | None = None,
        *,
        request_key: Key | None = None,
        journal: list[str | None] | None = None,
    ) -> CallResult:
        result = CallResult(path, defn.kind)
        with self.observe(result):
            invoked = self._invoke(defn, args, identity, database, request_key, journal)
            result.ts, result.reads, result.writes = invoked.ts, invoked.reads, invoked.writes
            result.journal = invoked.journal
            value = invoked.value
            if isinstance(value, dedupe.Prior):  # a request recorded before
                result.replayed = True
                result.error_message = result.logged_message = value.refused
                value = value.value
            result.value = value
        return result

    @contextlib.contextmanager
    def observe(self, result: CallResult) -> Iterator[None]:
        """Run the body as `result`'s call: capture what it prints and logs,
        time it, turn an exception into the result's error, then report the
        result to `on_call`. (HTTP actions use it too.)"""
        lines = LogLines()
        started = time.perf_counter()
        with capture(lines):
            try:
                yield
            except Exception as e:
                self._fail(result, e)
        result.duration = time.perf_counter() - started
        result.log_lines = lines.finish()
        if self.on_call is not None:
            self.on_call(result)

    def _fail(self, result: CallResult, e: Exception) -> None:
        result.error = e
        if isinstance(e, ConvexError):
            try:
                check_value(e.data, path="ConvexError data")
            except InvalidValueError as bad:
                result.logged_message = (
                    f"ConvexError raised with data that is not a Convex value: {bad}"
                )
                result.error_message = "Server Error" if self.prod else result.logged_message
                return
            result.error_data = e.data
            result.error_message = result.logged_message = _message(e)
            return
        result.traceback = traceback.format_exc()
        result.logged_message = _message(e)
        result.error_message = "Server Error" if self.prod else result.logged_message

    def query_at(
        self,
        database: Database,
        path: str,
        args: Any,
        identity: dict[str, Any] | None,
        journal: list[str | None] | None = None,
    ) -> CallResult:
        """Run a public query against `database` (a snapshot view): the
        sync protocol's subscriptions. `journal`: the paginate end cursors of
        the subscription's previous run. Raises RequestError like `call`."""
        path, defn = self.resolve(path, kind="query", public_only=True)
        checked = self.check_args(path, defn, args)
        return self._execute(path, defn, checked, identity, database, journal=journal)

    def _invoke(
        self,
        defn: FunctionDefinition,
        args: dict[str, Any],
        identity: dict[str, Any] | None,
        database: Database | None = None,
        request_key: Key | None = None,
        journal: list[str | None] | None = None,
    ) -> _Invoked:
        """Run the function once for the caller (a query or mutation perhaps
        in several attempts: only the last attempt's log lines are kept)."""
        if defn.kind == "action":
            return _Invoked(self._action(defn, args, identity))
        auth = Auth(identity)
        started = time.time()
        seed = int.from_bytes(determinism.real_urandom(8), "little")
        last_lines: LogLines | None = None
        # A request's record answers only the same function and arguments.
        request_fp = b""
        if request_key is not None:
            request_fp = dedupe.fingerprint(self.registry.path_of(defn) or "", args)

        def body(tx: Transaction) -> Any:
            nonlocal last_lines
            with logs.attempt() as last_lines:
                if request_key is not None:
                    prior = dedupe.replay(tx, request_key, request_fp)
                    if prior is not None:
                        return prior
                ctx = QueryCtx(tx, auth) if defn.kind == "query" else MutationCtx(tx, auth)
                with determinism.frozen(started, seed, defn.kind):
                    value = defn.handler(ctx, args)
                value = _checked_return(defn, value)
                if request_key is not None:
                    dedupe.record(tx, request_key, request_fp, value)
                return value

        try:
            if defn.kind == "query":
                outcome = (database or self.database).query(body, journal=journal)
            else:
                outcome = self.database.mutation(body)
        finally:
            logs.keep(last_lines)
        return _Invoked(outcome.value, outcome.ts, outcome.reads, outcome.journal, outcome.writes)

    def _action(
        self, defn: FunctionDefinition, args: dict[str, Any], identity: dict[str, Any] | None
    ) -> Any:
        if defn.is_async:
            actx = AsyncActionCtx(self, identity)

            async def run() -> Any:
                return await asyncio.wait_for(defn.handler(actx, args), self.action_timeout)

            try:
                value = asyncio.run(run())
            except TimeoutError:
                raise action_timeout(self.action_timeout) from None
        else:
            value = _run_with_timeout(
                lambda: defn.handler(ActionCtx(self, identity), args), self.action_timeout
            )
        return _checked_return(defn, value)


@dataclass(frozen=True, slots=True)
class _Invoked:
    """What running a function produced, for `CallResult`."""

    value: Any
    ts: int | None = None
    """Commit timestamp of a mutation that wrote."""
    reads: ReadSet | None = None
    journal: list[str | None] | None = None
    writes: WriteSet | None = None


def _checked_return(defn: FunctionDefinition, value: Any) -> Any:
    try:
        check_value(value, path="returned value")
    except InvalidValueError as e:
        raise ReturnsInvalid(
            f"the function returned something that is not a Convex value: {e}"
        ) from None
    if defn.returns is not None:
        try:
            defn.returns.validate(value, "returns")
        except ValidationError as e:
            raise ReturnsInvalid(
                f"the return value does not match the function's returns validator: {e}"
            ) from None
    return value


def action_timeout(seconds: float) -> ActionTimeout:
    return ActionTimeout(
        f"the action did not finish within {seconds:g} s (actions time out after "
        f"{ACTION_TIMEOUT_SECONDS:g} s); split the work or schedule the rest",
        seconds=seconds,
    )


def _run_with_timeout(fn: Callable[[], Any], seconds: float) -> Any:
    """Run a plain-def action in a helper thread so a stuck one fails the call
    after `seconds` (the thread itself cannot be killed and is left behind)."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(fn)
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=target, name="action", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise action_timeout(seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _message(e: BaseException) -> str:
    if isinstance(e, PlatformError):
        return f"{e.code}: {e.message}"
    if isinstance(e, ConvexError):
        return f"Uncaught ConvexError: {_describe_data(e.data)}"
    return f"Uncaught {type(e).__name__}: {e}"


def _describe_data(data: Any) -> str:
    return data if isinstance(data, str) else repr(data)
