"""Live queries for every connection: the sync hub.

The hub owns the connections' sessions (`session.py`), the queries they
subscribe to, and the index of those queries' read sets (`read_index.py`).
Queries with the same function, arguments and identity share one run and
one result across connections.

One loop thread does the reactive work, a step at a time:
1. open a store snapshot (one consistent view, with the feed position and
   commit timestamp it reflects);
2. read the change feed up to that position and look up the queries each
   committed write touches;
3. run those queries, and the newly subscribed ones, against the snapshot;
4. send each affected connection, first the mutation responses whose commit
   the snapshot includes, then one Transition carrying the results that
   changed (all from that one snapshot; its endVersion.ts is the
   snapshot's).
A step runs when something happened (a commit, a subscription, a reload) or
every `poll` seconds (writes from elsewhere, such as another process).

Mutations sent over the socket run on the hub's worker pool, one at a
time per connection in the order sent (as Convex runs them), actions on
the backend's action pool (`calls.py`), so slow actions never delay
mutations. A client's message that breaks anything ends only its own
connection, with a FatalError.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.database import Database
from runtime.functions import dedupe
from runtime.functions.executor import CallResult, Executor
from runtime.functions.platform_store import PlatformStore
from runtime.functions.registry import normalize_path
from runtime.limits import SYNC_CONNECTIONS, SYNC_QUERIES_PER_CONNECTION, SYNC_UNSENT_BYTES
from runtime.store.port import ChangeBatch, FeedTrimmed, Store
from runtime.values import dumps

from .calls import action_pool
from .changes import document_change
from .journal import journals_for
from .messages import ProtocolError, encode_ts, parse_client_message
from .read_index import ReadIndex
from .results import respond, run_subscription, verified_token
from .session import (
    Fatal,
    QueryResult,
    QuerySetChanged,
    Reply,
    RunAction,
    RunMutation,
    SyncSession,
)

__all__ = ["SyncHub", "TooManyConnections"]

QueryKey = tuple[str, bytes, str, str]
"""(function path, encoded args, identity, the verified journal's cursors
as JSON, "" for none): queries equal on these share a run. A journal the
server did not sign counts as none (`journal.py`), so made-up journals
cannot multiply runs."""


class TooManyConnections(ProtocolError):
    code = "TOO_MANY_CONNECTIONS"


class Snapshot(Store, Protocol):
    """A fixed read view of the store (see `SqliteStore.snapshot`)."""

    position: str
    ts: int


SnapshotSource = Callable[[], AbstractContextManager[Snapshot]]


@dataclass
class _Shared:
    path: str
    args: Any
    identity: dict[str, Any] | None
    journal: list[str | None] | None = None
    """End cursors of the last run's paginate calls: the next run keeps
    those page boundaries."""
    subscribers: set[tuple[int, int]] = field(default_factory=set)
    result: QueryResult | None = None


@dataclass
class _Connection:
    id: int
    session: SyncSession
    send: Callable[[dict[str, Any]], None]
    close: Callable[[str], None]
    keys: dict[int, QueryKey] = field(default_factory=dict)
    pending: list[tuple[int, dict[str, Any], bool]] = field(default_factory=list)
    """Mutation responses waiting for a snapshot at their commit ts: (ts,
    message, whether it carries that ts). A failure's response waits behind
    the successes before it, so responses go out in request order."""
    running: bool = False
    """True while one of this connection's mutations runs: its Transitions wait
    for its response, so a response always comes before the Transition that
    shows its effects (the order the clients expect)."""
    queued: deque[tuple[str | None, RunMutation]] = field(default_factory=deque)
    """Mutations received while one runs, with the session id each arrived
    under. A connection's mutations run one at a time, in the order sent, as
    Convex runs them: a client never sees two of its writes land out of order."""
    closed: bool = False


class SyncHub:
    def __init__(
        self,
        database: Database,
        executor: Executor,
        snapshot: SnapshotSource,
        *,
        poll: float = 0.05,
        workers: int = 16,
        max_connections: int = SYNC_CONNECTIONS,
        max_queries: int = SYNC_QUERIES_PER_CONNECTION,
        max_unsent_bytes: int = SYNC_UNSENT_BYTES,
        verify: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self._verify = verify
        """A user token -> its identity, or Unauthenticated (Backend.verify_token)."""
        self._db = database
        self._executor = executor
        self._snapshot = snapshot
        self._poll = poll
        self._lock = threading.RLock()
        self._step_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connections: dict[int, _Connection] = {}
        self._shared: dict[QueryKey, _Shared] = {}
        self._index = ReadIndex()
        self._dirty: set[int] = set()
        self._stale: set[QueryKey] = set()
        """Queries to (re-)run in the next step: new, touched, or reloaded."""
        self._waiting: set[int] = set()
        """Connections with mutation responses held for a later snapshot."""
        self._ids = itertools.count(1)
        self._position: str | None = None
        self._skipped = False
        """Steps were skipped while nobody watched (`_step`)."""
        self._ts = 0
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sync-call")
        """Mutations over the socket (actions run on the action pool)."""
        self._actions = action_pool(executor)
        self._journals = journals_for(database.store)
        self.max_connections = max_connections
        self.max_queries = max_queries
        self.max_unsent_bytes = max_unsent_bytes
        """Read by the socket loop (`runtime/http/sync_ws.py`): past it, a
        connection is closed as a slow consumer."""
        self.resyncs = 0
        """Steps that found the change feed trimmed past their position and
        re-ran every live query (tests read it)."""
        self._thread = threading.Thread(target=self._run, name="sync-hub", daemon=True)
        self.runs = 0
        """Query runs made by the hub (tests and benchmarks read it)."""
        self.hold_sends: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
        """Wraps a step's pushes: the socket layer may hold their sends and
        hand them over together when the step is done
        (`runtime/http/sync_ws.py: held_posts`)."""

    # ---- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        with self._snapshot() as snap:
            self._position, self._ts = snap.position, snap.ts
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def nudge(self) -> None:
        """Something may have changed: run a step soon."""
        self._wake.set()

    def notice(self, call: CallResult) -> None:
        """Executor listener: a commit anywhere means a step is due."""
        if call.ts is not None:
            self._wake.set()

    def wake(self) -> None:
        """Something committed outside a function call (a file upload): a step is due."""
        self._wake.set()

    def invalidate_all(self) -> None:
        """Functions were reloaded: every live query runs again."""
        with self._lock:
            self._stale |= set(self._shared)
        self._wake.set()

    # ---- connections -------------------------------------------------------------

    def connect(self, send: Callable[[dict[str, Any]], None], close: Callable[[str], None]) -> int:
        """A new connection's id; raises TooManyConnections past
        `max_connections` (SYNC_CONNECTIONS)."""
        conn_id = next(self._ids)
        with self._lock:
            if len(self._connections) >= self.max_connections:
                raise TooManyConnections(
                    f"this server holds its limit of {self.max_connections} sync connections "
                    "(SYNC_CONNECTIONS); try again later"
                )
            session = SyncSession(max_queries=self.max_queries)
            self._connections[conn_id] = _Connection(conn_id, session, send, close)
        return conn_id

    @property
    def connections(self) -> int:
        """Connections open now."""
        with self._lock:
            return len(self._connections)

    def disconnect(self, conn_id: int) -> None:
        with self._lock:
            conn = self._connections.pop(conn_id, None)
            if conn is None:
                return
            conn.closed = True
            for query_id, key in conn.keys.items():
                self._unsubscribe(conn_id, query_id, key)
            self._dirty.discard(conn_id)
            self._waiting.discard(conn_id)

    def receive(self, conn_id: int, text: str | bytes) -> None:
        """One message from a client (called from the connection's reader;
        one carrying a user token in a worker thread, since verifying it may
        fetch the provider's keys)."""
        verify = self._verified(text)
        with self._lock:
            conn = self._connections.get(conn_id)
            if conn is None:
                return
            try:
                self._receive(conn_id, conn, text, verify)
            except Exception as e:  # a bug must not outlive one connection
                traceback.print_exc()
                reason = f"the server failed to handle a message ({type(e).__name__})"
                self._fatal(conn_id, conn, reason)

    def _verified(self, text: str | bytes) -> Callable[[str], dict[str, Any]] | None:
        try:
            message = parse_client_message(text)
        except ProtocolError:
            return None
        return verified_token(self._verify, message)

    def _receive(
        self,
        conn_id: int,
        conn: _Connection,
        text: str | bytes,
        verify: Callable[[str], dict[str, Any]] | None,
    ) -> None:
        try:
            commands = conn.session.receive(parse_client_message(text), verify)
        except ProtocolError as e:
            commands = [Fatal(e.message)]
        for command in commands:
            if isinstance(command, Fatal):
                self._fatal(conn_id, conn, command.reason)
                return
            if isinstance(command, Reply):
                conn.send(command.message)
            elif isinstance(command, QuerySetChanged):
                self._sync_subscriptions(conn_id, conn)
                self._dirty.add(conn_id)
                self._wake.set()
            elif isinstance(command, RunMutation):
                # The session id is read now: the socket may be gone by
                # the time the mutation runs, and its record must still
                # be keyed by it.
                session_id = conn.session.session_id
                if conn.running:
                    conn.queued.append((session_id, command))
                else:
                    conn.running = True
                    self._pool.submit(self._mutation, conn_id, session_id, command)
            elif isinstance(command, RunAction):
                self._actions.submit(functools.partial(self._action, conn_id, command))

    def _fatal(self, conn_id: int, conn: _Connection, reason: str) -> None:
        if conn.closed:
            return
        try:
            conn.send({"type": "FatalError", "error": reason})
            conn.close(reason)
        finally:
            self.disconnect(conn_id)

    def _sync_subscriptions(self, conn_id: int, conn: _Connection) -> None:
        queries = conn.session.queries
        user = conn.session.user
        who = json.dumps(user, sort_keys=True) if user is not None else ""
        # A query leaves its shared run when removed or when the identity
        # changed (Authenticate): two users never share a result.
        for query_id in [q for q, k in conn.keys.items() if q not in queries or k[2] != who]:
            self._unsubscribe(conn_id, query_id, conn.keys.pop(query_id))
        for query_id, sub in queries.items():
            if query_id in conn.keys:
                continue
            path = normalize_path(sub.udf_path)
            journal = self._journals.verify(path, sub.args, sub.journal)
            key: QueryKey = (path, dumps(sub.args), who, json.dumps(journal) if journal else "")
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = _Shared(path, sub.args, user, journal)
                self._stale.add(key)
            shared.subscribers.add((conn_id, query_id))
            conn.keys[query_id] = key

    def _unsubscribe(self, conn_id: int, query_id: int, key: QueryKey) -> None:
        shared = self._shared.get(key)
        if shared is None:
            return
        shared.subscribers.discard((conn_id, query_id))
        if not shared.subscribers:
            del self._shared[key]
            self._stale.discard(key)
            self._index.remove(key)

    # ---- mutations and actions -------------------------------------------------------

    def _mutation(self, conn_id: int, session_id: str | None, command: RunMutation) -> None:
        key = dedupe.request_key(session_id, command.request_id) if session_id else None
        message: dict[str, Any] = {}
        call = None
        try:
            message, call = respond(
                "MutationResponse",
                command.request_id,
                lambda: self._executor.call(
                    command.udf_path,
                    command.args,
                    kind="mutation",
                    request_key=key,
                    identity=command.identity,
                ),
                prod=self._executor.prod,
            )
        finally:
            with self._lock:
                conn = self._connections.get(conn_id)
                if conn is not None:
                    conn.running = False
                    if call is not None and call.ok:
                        # sent once a snapshot includes the commit
                        conn.pending.append((call.ts or 0, message, True))
                    elif message and conn.pending:
                        conn.pending.append((conn.pending[-1][0], message, False))
                    elif message:
                        conn.send(message)
                    self._waiting.add(conn_id)  # held Transitions go out now
                    if conn.queued:
                        conn.running = True
                        try:
                            self._pool.submit(self._mutation, conn_id, *conn.queued.popleft())
                        except RuntimeError:  # the hub is stopping: the client re-sends
                            conn.running = False
                            conn.queued.clear()
            self._wake.set()
        if call is None or not call.ok:
            return
        if session_id is not None and not call.replayed:
            dedupe.sweep(self._db.store, session_id)  # trims expired records (after answering)

    def _action(self, conn_id: int, command: RunAction) -> None:
        message, _ = respond(
            "ActionResponse",
            command.request_id,
            lambda: self._executor.call(
                command.udf_path, command.args, kind="action", identity=command.identity
            ),
            prod=self._executor.prod,
        )
        self._send(conn_id, message)

    def _send(self, conn_id: int, message: dict[str, Any]) -> None:
        with self._lock:
            conn = self._connections.get(conn_id)
            if conn is not None:
                conn.send(message)

    # ---- the reactive loop ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.step()
            except Exception as e:  # keep serving; the next step retries
                traceback.print_exc()
                print(f"sync hub step failed: {type(e).__name__}: {e}")
                time.sleep(self._poll)

    def _changes(self, snap: Snapshot) -> Iterator[ChangeBatch]:
        position = self._position
        while True:
            batch = snap.read_changes(position, 1000)
            yield batch
            if len(batch.changes) < 1000:
                return
            position = batch.position

    def step(self) -> None:
        """One round: read new commits, re-run what they touched and what was
        newly subscribed, push what changed. Steps never overlap."""
        with self._step_lock:
            self._step()

    def _step(self) -> None:
        with self._lock:
            if not self._connections and not self._shared:
                # Nobody watches: the commits so far touch nothing live. Skip
                # the snapshot (a read transaction per commit otherwise: the
                # HTTP API's writes would pay for a feed nobody reads); the
                # next step with a watcher starts from its own snapshot.
                self._skipped = True
                return
        with self._snapshot() as snap:
            touched: set[Hashable] = set()
            position = self._position
            with self._lock:
                if self._skipped:
                    # Every query live now was subscribed after the skip and
                    # runs at this snapshot: the changes before it touch none.
                    self._skipped = False
                    self._position = position = snap.position
                try:
                    for batch in self._changes(snap):
                        for change in batch.changes:
                            found = document_change(change, self._db.table_indexes)
                            if found is not None:
                                touched |= self._index.touched(*found)
                        position = batch.position
                except FeedTrimmed:
                    # Fell behind the change log's window: which queries the
                    # missed writes touched is unknown, so all run again.
                    self.resyncs += 1
                    touched = set(self._shared)
                    position = snap.position
                self._stale |= {k for k in touched if k in self._shared}
                runs = [
                    (k, s.path, s.args, s.identity, s.journal)
                    for k in self._stale
                    if (s := self._shared.get(k)) is not None
                ]
                self._stale.clear()
                idle = not runs and not self._dirty and not self._waiting
            if idle and position == self._position:
                return
            results: dict[QueryKey, tuple[QueryResult, Any, Any]] = {}
            try:
                view = self._db.view(PlatformStore(snap))
                for key, path, args, identity, journal in runs:
                    results[key] = self._run_query(view, path, args, identity, journal)
            except BaseException:
                with self._lock:  # nothing is lost: the next step runs them
                    self._stale |= {run[0] for run in runs}
                raise
            ts = max(self._ts, snap.ts)
        with self.hold_sends(), self._lock:  # the loops are woken after the lock is let go
            affected = set(self._dirty)
            self._dirty.clear()
            for key, (result, reads, journal) in results.items():
                shared = self._shared.get(key)
                if shared is None:
                    continue  # unsubscribed meanwhile
                shared.journal = journal
                changed = shared.result is None or shared.result.digest != result.digest
                shared.result = result
                if reads is not None:
                    self._index.put(key, reads)
                else:
                    self._index.remove(key)
                if changed:
                    affected |= {conn_id for conn_id, _ in shared.subscribers}
            self._position, self._ts = position, ts
            affected |= self._waiting
            self._waiting = set()
            for conn_id in affected:
                target = self._connections.get(conn_id)
                if target is None:
                    continue
                if target.running:
                    self._dirty.add(conn_id)  # after its mutation's response
                    continue
                self._push(target, ts)

    def _run_query(
        self,
        view: Database,
        path: str,
        args: Any,
        identity: dict[str, Any] | None,
        journal: list[str | None] | None,
    ) -> tuple[QueryResult, Any, list[str | None] | None]:
        self.runs += 1
        return run_subscription(self._executor, view, path, args, identity, journal, self._journals)

    def _push(self, conn: _Connection, ts: int) -> None:
        ready = []
        if conn.pending:  # (most pushes hold no mutation response)
            ready = [p for p in conn.pending if p[0] <= ts]
            conn.pending = [p for p in conn.pending if p[0] > ts]
            if conn.pending:
                self._waiting.add(conn.id)
        for commit_ts, message, stamped in ready:
            conn.send({**message, "ts": encode_ts(commit_ts or ts)} if stamped else message)
        results = {}
        for query_id, key in conn.keys.items():
            shared = self._shared.get(key)
            if shared is not None and shared.result is not None and key not in self._stale:
                results[query_id] = shared.result
        for message in conn.session.messages(results, ts, force=bool(ready)):
            conn.send(message)
