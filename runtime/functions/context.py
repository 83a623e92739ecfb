"""The `ctx` a function receives, by kind (the seed's contexts, snake_case).

| kind     | db         | auth | storage | scheduler | run_query / run_mutation / run_action |
|----------|------------|------|---------|-----------|---------------------------------------|
| query    | read-only  | yes  | read    |           |                                       |
| mutation | read/write | yes  | yes     | yes       |                                       |
| action   |            | yes  | yes     | yes       | yes                                   |

`db` is a facade over the call's transaction (`db.py`), never the
transaction itself; so are `storage` (`storage.py`) and a mutation's
`scheduler` (`scheduler.py`: its jobs commit with the mutation). An
action's scheduler commits each job at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from runtime.errors import PlatformError

from .db import DatabaseReader, DatabaseWriter
from .scheduler import ActionScheduler, AsyncActionScheduler, MutationScheduler
from .storage import ActionStorage, AsyncActionStorage, MutationStorage, QueryStorage

if TYPE_CHECKING:
    from runtime.database.transaction import Transaction
    from runtime.files.storage import FileStorage

    from .action_calls import ActionCall
    from .executor import Executor

__all__ = ["ActionCtx", "AsyncActionCtx", "Auth", "MutationCtx", "NotAvailableError", "QueryCtx"]


class NotAvailableError(PlatformError):
    code = "NOT_AVAILABLE"


class Auth:
    """`ctx.auth`: the caller's identity (None when the call carries no token)."""

    def __init__(self, identity: dict[str, Any] | None) -> None:
        self._identity = identity

    def get_user_identity(self) -> dict[str, Any] | None:
        return None if self._identity is None else dict(self._identity)


class QueryCtx:
    def __init__(self, tx: Transaction, auth: Auth, files: FileStorage | None = None) -> None:
        self.db: DatabaseReader = DatabaseReader(tx)
        self.auth = auth
        self.storage: QueryStorage = QueryStorage(files, tx)


class MutationCtx(QueryCtx):
    def __init__(
        self,
        tx: Transaction,
        auth: Auth,
        files: FileStorage | None = None,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(tx, auth, files)
        self.db: DatabaseWriter = DatabaseWriter(tx)
        self.storage: MutationStorage = MutationStorage(files, tx)
        if executor is not None:
            self.scheduler = MutationScheduler(tx, executor)


class ActionCtx:
    """Actions have no `db`: they read and write through queries and mutations,
    each its own transaction. `fn` is a path ("bank:total") or the function
    object itself. `call`: this action's place in its chain of nested
    actions (None in an HTTP action): `run_action` passes it on, so the
    chain's depth and deadline hold whatever thread the code calls from."""

    def __init__(
        self, executor: Executor, identity: dict[str, Any] | None, call: ActionCall | None = None
    ) -> None:
        self._executor = executor
        self._identity = identity
        self._call = call
        self.auth = Auth(identity)
        self.storage = ActionStorage(executor.files)
        self.scheduler = ActionScheduler(executor)

    def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return self._executor.run_nested(fn, args, "query", self._identity)

    def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return self._executor.run_nested(fn, args, "mutation", self._identity)

    def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return self._executor.run_nested(fn, args, "action", self._identity, self._call)


class AsyncActionCtx:
    """The context of an `async def` action: the run_* calls are awaitable and
    run in a worker thread, so the action's event loop keeps going."""

    def __init__(
        self, executor: Executor, identity: dict[str, Any] | None, call: ActionCall | None = None
    ) -> None:
        self._sync = ActionCtx(executor, identity, call)
        self.auth = self._sync.auth
        self.storage = AsyncActionStorage(executor.files)
        self.scheduler = AsyncActionScheduler(self._sync.scheduler)

    async def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self._sync.run_query, fn, args)

    async def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self._sync.run_mutation, fn, args)

    async def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self._sync.run_action, fn, args)
