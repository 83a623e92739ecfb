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
  A nested action (`run_nested`) runs on its caller's thread, at most
  ACTION_CALL_DEPTH deep, within its chain's time (`action_calls.py`).
- Errors the caller can fix before anything runs (unknown function, bad
  arguments) raise `RequestError`s, worded as Convex words them (`Could not
  find public function for ...`, `ArgumentValidationError: ...`); errors
  from a function that ran are results, worded as Convex's
  (`failure.py`): `[Request ID: <id>] Server Error`, then in dev
  `Uncaught <Name>: <message>` and the user's frames. A `ConvexError`'s
  data reaches the caller as `error_data`, in production too.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from runtime.database import Database
from runtime.database.readwrite import ReadSet, WriteSet
from runtime.database.transaction import Transaction
from runtime.errors import ConvexError, FunctionCallError, PlatformError, ValidationError
from runtime.files.storage import FileStorage
from runtime.limits import ACTION_CANCEL_SECONDS, ACTION_TIMEOUT_SECONDS, ARGUMENTS_BYTES
from runtime.store.port import Key
from runtime.values import UNDEFINED, InvalidValueError, check_value, dumps
from runtime.values.coercion import coerce_numbers

from . import dedupe, determinism, failure, logs
from .action_calls import ActionCall, RunningActions
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
    """A call refused before anything ran (the HTTP API answers 4xx; the
    sync socket answers a failed result under `request_id`)."""

    status = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message, **details)
        self.request_id = failure.new_request_id()


class FunctionNotFound(RequestError):
    code = "FUNCTION_NOT_FOUND"
    status = 404


class WrongFunctionKind(RequestError):
    code = "WRONG_FUNCTION_KIND"


class ArgumentsInvalid(RequestError):
    code = "ARGUMENTS_INVALID"


class ReturnsInvalid(PlatformError):
    code = "RETURNS_INVALID"
    thrown = False
    """Worded as Convex's check (`ReturnsValidationError: ...`), not `Uncaught`."""


class ActionTimeout(PlatformError):
    code = "ACTION_TIMEOUT"


@dataclass
class CallResult:
    path: str
    kind: str
    """query, mutation, action, or http (an HTTP action)."""
    value: Any = None
    error_message: str | None = None
    """What the caller reads: `[Request ID: <id>] Server Error`, then (not in
    production) `error_text`."""
    error_data: Any = UNDEFINED
    """The data of a ConvexError; UNDEFINED for any other error."""
    error: BaseException | None = None
    logged_message: str | None = None
    """The error's header for the server's log (`Uncaught <Name>: ...`),
    never redacted."""
    error_text: str | None = None
    """The header and the user's frames (Convex's error text), never
    redacted: the dev message, the server's log, a nested call's error."""
    rendered: failure.Rendered | None = None
    traceback: str | None = None
    request_id: str = field(default_factory=failure.new_request_id)
    log_lines: list[str] = field(default_factory=list)
    duration: float = 0.0
    """Seconds, wall clock."""
    ts: int | None = None
    """Commit timestamp of a mutation that wrote."""
    cost: int | None = None
    """DynamoDB items of a mutation's commit (`CommitPlan.items`): the call
    log flags one past TRANSACTION_ITEMS, a costly commit on AWS."""
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
        self.actions = RunningActions()
        """The actions running now, at every depth (`action_calls.py`)."""
        self.files: FileStorage | None = None
        """The backend's file storage (`ctx.storage`); None where it has none."""
        self.on_scheduled: Callable[[float], None] | None = None
        """Called with the earliest due time (ms) after a commit that scheduled
        functions (the embedded timer wakes for it); None: nobody listens
        (AWS: the stream dispatches queue records)."""

    def scheduled(self, due_ms: float) -> None:
        """A commit scheduled a function due at `due_ms`: tell the timer."""
        if self.on_scheduled is not None:
            self.on_scheduled(due_ms)

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
                raise FunctionNotFound(
                    f"Could not find {public}function for '{path}'. Did you forget to run "
                    "`python -m runtime dev` or `python -m runtime deploy`?",
                    path=path,
                )
            defn = maybe
        if kind is not None and defn.kind != kind:
            raise WrongFunctionKind(
                f"Trying to execute {path} as {kind.capitalize()}, but it is defined as "
                f"{defn.kind.capitalize()}.",
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
                args = coerce_numbers(defn.args, args)  # an int under v.number(): its float64
                defn.args.validate(args, "args")
        except ValidationError as e:
            raise ArgumentsInvalid(
                f"ArgumentValidationError: {e.convex_message()}", path=path
            ) from None
        except InvalidValueError as e:
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
        try:
            path, defn = self.resolve(fn, kind=kind, public_only=public_only)
            checked = self.check_args(path, defn, args)
        except RequestError as e:
            self._refused(fn, kind, e)
            raise
        return self._execute(path, defn, checked, identity, request_key=request_key)

    def run_job(
        self,
        fn: str | FunctionDefinition,
        args: Any,
        before: Callable[[Transaction], bool],
        after: Callable[[Transaction, Any], None],
    ) -> CallResult:
        """Run a mutation for the platform (a scheduled job, a cron tick):
        `before(tx)`, the handler and `after(tx, value)` in ONE transaction,
        so the platform's bookkeeping commits with the handler's writes or
        not at all. `before` returning False skips the handler (the result's
        value is None, nothing but what `before` wrote commits). Internal
        functions allowed, no identity; reported to `on_call` like a call.
        Raises RequestError when the function is missing or not a mutation
        or its arguments are invalid."""
        path, defn = self.resolve(fn, kind="mutation", public_only=False)
        checked = self.check_args(path, defn, args)
        return self._execute(path, defn, checked, None, hooks=(before, after))

    def _refused(self, fn: Any, kind: Kind | None, e: RequestError) -> None:
        """Report a call refused before it ran to `on_call` (the call log), under
        the request id its caller reads, so a user's report finds it."""
        if self.on_call is None:
            return
        path = fn if isinstance(fn, str) else (self.registry.path_of(fn) or repr(fn))
        result = CallResult(path, kind or "function", request_id=e.request_id)
        result.error = e
        result.error_message = result.logged_message = f"{e.code}: {e.message}"
        self.on_call(result)

    def run_nested(
        self,
        fn: Any,
        args: Any,
        kind: Kind,
        identity: dict[str, Any] | None,
        caller: ActionCall | None = None,
    ) -> Any:
        """`ctx.run_query/run_mutation/run_action` from an action: internal
        functions allowed; errors raise (a ConvexError keeps its data).
        `caller`: the calling action's place in its chain (a nested action
        runs on the caller's thread, within the chain's depth and deadline:
        `action_calls.py`)."""
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
            invoked = self._invoke(defn, checked, identity, caller=caller)
            result.ts, result.reads, result.writes = invoked.ts, invoked.reads, invoked.writes
            result.cost = invoked.cost
            result.value = invoked.value
            return invoked.value
        except Exception as e:
            self._fail(result, e)
            raise self._forward(result) from None
        except BaseException as e:
            result.error, result.error_message = e, _message(e)
            result.logged_message = result.error_message
            raise
        finally:
            result.duration = time.perf_counter() - started
            if self.on_call is not None:
                self.on_call(result)

    def _forward(self, result: CallResult) -> Exception:
        """The error the calling action receives for a nested call that
        failed: what Convex hands it (see `failure.py`)."""
        text = "Server Error" if self.prod else (result.error_text or "Server Error")
        if result.error_data is not UNDEFINED:
            return ConvexError.forwarded(result.error_data, text)
        return FunctionCallError(text)

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
        hooks: _Hooks | None = None,
        validate: bool = True,
    ) -> CallResult:
        result = CallResult(path, defn.kind)
        with self.observe(result):
            invoked = self._invoke(
                defn,
                args,
                identity,
                database,
                request_key,
                journal,
                hooks=hooks,
                validate=validate,
            )
            result.ts, result.reads, result.writes = invoked.ts, invoked.reads, invoked.writes
            result.cost = invoked.cost
            result.journal = invoked.journal
            value = invoked.value
            if isinstance(value, dedupe.Prior):  # a request recorded before
                result.replayed = True
                if value.refused is not None:
                    self._failed(result, failure.Rendered(value.refused, f"{value.refused}\n"))
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
        rendered = failure.render(e, self.registry.root)
        if isinstance(e, ConvexError):
            try:
                check_value(e.data, path="ConvexError data")
            except InvalidValueError as bad:
                first = f"ConvexError with invalid data: {bad}"
                rendered = failure.Rendered(first, f"{first}\n")
            else:
                result.error_data = e.data
        else:
            result.traceback = traceback.format_exc()
        self._failed(result, rendered)

    def _failed(self, result: CallResult, rendered: failure.Rendered) -> None:
        result.rendered = rendered
        result.logged_message = rendered.header
        result.error_text = rendered.text
        result.error_message = failure.client_message(
            result.request_id, rendered.text, prod=self.prod
        )

    def query_at(
        self,
        database: Database,
        path: str,
        args: Any,
        identity: dict[str, Any] | None,
        journal: list[str | None] | None = None,
        *,
        validate: bool = True,
    ) -> CallResult:
        """Run a public query against `database` (a snapshot view): the
        sync protocol's subscriptions. `journal`: the paginate end cursors of
        the subscription's previous run; `validate`: as `Database.query`'s.
        Raises RequestError like `call` (reported to `on_call` first, so the
        call log shows the refusal)."""
        try:
            path, defn = self.resolve(path, kind="query", public_only=True)
            checked = self.check_args(path, defn, args)
        except RequestError as e:
            self._refused(path, "query", e)
            raise
        return self._execute(
            path, defn, checked, identity, database, journal=journal, validate=validate
        )

    def _invoke(
        self,
        defn: FunctionDefinition,
        args: dict[str, Any],
        identity: dict[str, Any] | None,
        database: Database | None = None,
        request_key: Key | None = None,
        journal: list[str | None] | None = None,
        *,
        caller: ActionCall | None = None,
        hooks: _Hooks | None = None,
        validate: bool = True,
    ) -> _Invoked:
        """Run the function once for the caller (a query or mutation perhaps
        in several attempts: only the last attempt's log lines are kept)."""
        if defn.kind == "action":
            return _Invoked(self._action(defn, args, identity, caller))
        auth = Auth(identity)
        started = time.time()
        seed = int.from_bytes(determinism.real_urandom(8), "little")
        last_lines: LogLines | None = None
        removed: list[str] = []
        """Blobs of files the last attempt deleted: removed once it commits."""
        scheduled: list[float] = []
        """Due times of the functions the last attempt scheduled."""
        # A request's record answers only the same function and arguments.
        request_fp = b""
        if request_key is not None:
            request_fp = dedupe.fingerprint(self.registry.path_of(defn) or "", args)

        def body(tx: Transaction) -> Any:
            nonlocal last_lines
            removed.clear()
            scheduled.clear()
            with logs.attempt() as last_lines:
                if request_key is not None:
                    prior = dedupe.replay(tx, request_key, request_fp)
                    if prior is not None:
                        return prior
                if hooks is not None and not hooks[0](tx):
                    return None
                ctx: QueryCtx
                if defn.kind == "query":
                    ctx = QueryCtx(tx, auth, self.files)
                else:
                    ctx = mctx = MutationCtx(tx, auth, self.files, self)
                    removed_now = mctx.storage.after_commit
                    scheduled_now = mctx.scheduler.scheduled
                with determinism.frozen(started, seed, defn.kind):
                    value = defn.handler(ctx, args)
                if defn.kind == "mutation":
                    removed.extend(removed_now)
                    scheduled.extend(scheduled_now)
                value = _checked_return(defn, value)
                if hooks is not None:
                    hooks[1](tx, value)
                if request_key is not None:
                    dedupe.record(tx, request_key, request_fp, value)
                return value

        try:
            if defn.kind == "query":
                view = database or self.database
                outcome = view.query(body, journal=journal, validate=validate)
            else:
                outcome = self.database.mutation(body)
                if removed and self.files is not None:
                    self.files.remove_blobs(removed)
                if scheduled:
                    self.scheduled(min(scheduled))
        finally:
            logs.keep(last_lines)
        cost = outcome.plan.items if outcome.plan is not None else None
        return _Invoked(
            outcome.value, outcome.ts, outcome.reads, outcome.journal, outcome.writes, cost
        )

    def _action(
        self,
        defn: FunctionDefinition,
        args: dict[str, Any],
        identity: dict[str, Any] | None,
        caller: ActionCall | None,
    ) -> Any:
        path = self.registry.path_of(defn) or "action"
        with self.actions.run(path, self.action_timeout, caller) as call:
            try:
                if call.remaining() <= 0:
                    raise _TimedOut
                if defn.is_async:
                    actx = AsyncActionCtx(self, identity, call)
                    value = _run_async(lambda: defn.handler(actx, args), call.remaining())
                else:
                    ctx = ActionCtx(self, identity, call)
                    value = _run_with_timeout(lambda: defn.handler(ctx, args), call.remaining())
            except _TimedOut:
                raise action_timeout(call.limit, path, nested=call.parent is not None) from None
        return _checked_return(defn, value)


_Hooks = tuple[Callable[[Transaction], bool], Callable[[Transaction, Any], None]]
"""`run_job`'s before/after, run inside the mutation's transaction."""


@dataclass(frozen=True, slots=True)
class _Invoked:
    """What running a function produced, for `CallResult`."""

    value: Any
    ts: int | None = None
    """Commit timestamp of a mutation that wrote."""
    reads: ReadSet | None = None
    journal: list[str | None] | None = None
    writes: WriteSet | None = None
    cost: int | None = None
    """DynamoDB items of the commit, if one was made."""


def _checked_return(defn: FunctionDefinition, value: Any) -> Any:
    try:
        check_value(value, path="returned value")
    except InvalidValueError as e:
        raise ReturnsInvalid(
            f"the function returned something that is not a Convex value: {e}"
        ) from None
    if defn.returns is not None:
        value = coerce_numbers(defn.returns, value)  # `returns=v.number()` with `len(...)`
        try:
            defn.returns.validate(value, "returns")
        except ValidationError as e:
            raise ReturnsInvalid(f"ReturnsValidationError: {e.convex_message()}") from None
    return value


def action_timeout(
    seconds: float, path: str | None = None, *, nested: bool = False
) -> ActionTimeout:
    """Convex's words (`Action `name` execution timed out (maximum duration
    600s)`), then what to do. A nested action shares its chain's time."""
    name = f" `{path.rsplit(':', 1)[-1]}`" if path else ""
    shared = ", shared with the actions that called it" if nested else ""
    return ActionTimeout(
        f"Action{name} execution timed out (maximum duration {seconds:g}s{shared}); "
        "split the work or schedule the rest",
        seconds=seconds,
    )


class _TimedOut(Exception):
    """An action ran past its deadline (not a TimeoutError: the action's
    own code may raise one of those, a socket's for instance)."""


def _run_async(start: Callable[[], Coroutine[Any, Any, Any]], seconds: float) -> Any:
    """Run an `async def` action on an event loop of its own; past `seconds`
    raise _TimedOut. Unlike `asyncio.run`, the loop's worker threads
    (`asyncio.to_thread`, nested calls) are not waited for: a stuck one is
    left behind, as a stuck plain-def action's thread is, and the call
    still ends at its deadline."""
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(start())
        loop.run_until_complete(asyncio.wait([task], timeout=max(seconds, 0)))
        if not task.done():
            raise _TimedOut
        return task.result()
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for left in pending:
                left.cancel()
            if pending:  # bounded: a task may ignore its cancellation
                loop.run_until_complete(asyncio.wait(pending, timeout=ACTION_CANCEL_SECONDS))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()  # its default executor shut down without waiting


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
    thread.join(max(seconds, 0))
    if thread.is_alive():
        raise _TimedOut
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _message(e: BaseException) -> str:
    return failure.header(e)
