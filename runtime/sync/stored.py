"""The sync protocol with every connection's state in the store: the AWS
shell's counterpart of the in-process hub (`hub.py`).

No process outlives a request: a WebSocket message, a stream batch, each is
one Lambda invocation that loads what it needs, acts, and saves. What lives
in the store (system partitions, through the storage port):

    s:conn / <connection id>       the session (`SyncSession.to_json`) and its
                                   query ids -> shared query owners; leased
    s:query / <owner>              a shared query: function, args, journal,
                                   its latest result, the filings and the
                                   versions of its read set, when it was
                                   validated; leased
    s:qsub:<owner> / <conn>\\0<qid> its subscribers
    s:rd:..., s:ri:...             the read-set filings (`stored_index.py`)

Queries equal in (function, args, identity, client journal) share one
record, one run and one result, as in the hub. A write from the change feed
touches owners through the filings; each touched query is refreshed under
its lease (re-run; filings updated, then the read set validated, so a write
that lands while the filings were being made re-runs it), and the
connections subscribed to a query whose result changed get a push: under the
connection's lease, the next Transitions from its session and the stored
results. A mutation sent over a socket refreshes, before its Transition,
only that connection's own queries it touched (found from the filings their
records keep); everyone else's come from the change feed.

Leases (`lease.py`) keep one worker per record; a worker who finds it busy
leaves a mark and the holder works again before it lets go, so no push or
refresh is lost. Per connection, messages are posted only by the lease
holder, in order, so Transitions chain.

Consistency: each result is a consistent snapshot (queries validate their
reads) and includes every write the sender knew of; a Transition's results
may come from different instants, each at least as new as the writes that
triggered it (unlike the hub's one snapshot per step).
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from runtime.database import Database
from runtime.database.readwrite import ReadSet
from runtime.functions import dedupe
from runtime.functions.executor import Executor
from runtime.functions.registry import normalize_path
from runtime.limits import (
    MUTATION_RECORD_SWEEP,
    MUTATION_RECORD_SWEEP_SECONDS,
    SYNC_REORDER_WAIT_SECONDS,
    SYNC_STORED_WORKERS,
)
from runtime.store.port import Bump, Change, Delete, Key, Op, Put, Store, scan_all
from runtime.values import decode_json, dumps, encode_json

from .changes import document_change, written_documents
from .journal import Journals, journals_for
from .lease import Held, Leases
from .messages import (
    Action,
    Authenticate,
    ClientMessage,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    encode_ts,
    parse_client_message,
)
from .read_index import IndexId
from .results import respond, run_subscription, verified_token
from .session import Fatal, QueryResult, QuerySetChanged, Reply, RunAction, RunMutation, SyncSession
from .stored_index import file_reads, filed_touched, filings, touched_owners, unfile

__all__ = ["Poster", "StoredSync"]

REORDER_WAIT = SYNC_REORDER_WAIT_SECONDS
"""Seconds a message that overtook an earlier one waits for it."""

_MAX_REFRESHES = 8
"""Runs of one query in one refresh while its reads keep moving (the last
one validated by the query itself, so its result is a snapshot)."""

_UNFILE_WITH_RELEASE = 25
"""Stale filings deleted in the lease's release transaction (at most; the
release has two items of its own, DynamoDB's transactions take 100)."""


class Poster(Protocol):
    """Delivers messages to connected clients (the Management API on AWS)."""

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        """Send one message; False if the connection is gone."""
        ...

    def close(self, connection_id: str) -> None: ...


def _conn_key(conn_id: str) -> Key:
    return ("s:conn", conn_id.encode())


def _conn_mark(conn_id: str) -> Key:
    return ("s:conn-mark", conn_id.encode())


def _query_key(owner: bytes) -> Key:
    return ("s:query", owner)


def _query_mark(owner: bytes) -> Key:
    return ("s:query-mark", owner)


def _subscribers(owner: bytes) -> str:
    return f"s:qsub:{owner.hex()}"


def _subscriber_key(owner: bytes, conn_id: str, query_id: int) -> Key:
    return (_subscribers(owner), conn_id.encode() + b"\0" + query_id.to_bytes(8, "big"))


def _ahead(message: ClientMessage | None, session: SyncSession) -> bool:
    """Whether a versioned message is based on a version not reached yet, or
    a request skips a requestId this connection has not sent yet."""
    if isinstance(message, ModifyQuerySet):
        return message.base_version > session.query_set
    if isinstance(message, Authenticate):
        return message.base_version > session.identity
    if isinstance(message, (Mutation, Action)):
        last = session.last_request
        return last is not None and message.request_id > last + 1
    return False


def _filed_values(filed: list[list[str]]) -> list[tuple[str, bytes]]:
    """A query record's filings as (partition, value). A record written
    before values were kept ([partition, sort key]) counts each as exact,
    which can only mistake an untouched query for a touched one."""
    return [(entry[0], entry[2].encode() if len(entry) > 2 else b"") for entry in filed]


T = TypeVar("T")
R = TypeVar("R")


def _each(fn: Callable[[T], R], items: list[T]) -> dict[T, R | Exception]:
    """`fn` of each item, on up to SYNC_STORED_WORKERS threads (inline for
    one): its result, or the exception it raised."""

    def run(item: T) -> R | Exception:
        try:
            return fn(item)
        except Exception as e:
            return e

    if len(items) <= 1:
        return {item: run(item) for item in items}
    with ThreadPoolExecutor(min(SYNC_STORED_WORKERS, len(items))) as pool:
        return dict(zip(items, pool.map(run, items), strict=True))


def owner_of(path: str, args: Any, identity: str, journal: str | None) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in (path.encode(), dumps(args), identity.encode(), (journal or "").encode()):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.digest()


class StoredSync:
    def __init__(
        self,
        database: Database,
        executor: Executor,
        store: Store,
        poster: Poster,
        *,
        holder: str,
        lease_ttl: float = 60.0,
        wait: float = 25.0,
        clock: Callable[[], int] = time.time_ns,
        verify: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self._verify = verify
        """A user token -> its identity, or Unauthenticated (Backend.verify_token)."""
        self._db = database
        self._executor = executor
        self._store = store
        self._poster = poster
        self._leases = Leases(store, holder, ttl=lease_ttl)
        self._wait = wait
        self._clock = clock
        self.runs = 0
        """Query runs made (tests and benchmarks read it)."""

    @property
    def _journals(self) -> Journals:
        return journals_for(self._store)

    # ---- connections -------------------------------------------------------------

    def connect(self, conn_id: str) -> None:
        # Unconditional: a retried $connect starts the same fresh session.
        data = {"session": SyncSession().to_json(), "keys": {}}
        self._store.transact([Put(_conn_key(conn_id), json.dumps(data).encode())])

    def disconnect(self, conn_id: str) -> None:
        held = self._leases.acquire_waiting(
            _conn_key(conn_id), _conn_mark(conn_id), timeout=self._wait
        )
        if held is not None:
            self._drop(conn_id, held)

    def _drop(self, conn_id: str, held: Held) -> None:
        """Forget a connection: its subscriptions, then its record."""
        subs = [
            _subscriber_key(bytes.fromhex(owner), conn_id, int(qid))
            for qid, owner in held.data["keys"].items()
        ]
        unfile(self._store, subs)
        held.data["keys"] = {}
        for _ in range(10):
            if self._leases.delete(held):
                return

    def receive(self, conn_id: str, text: str | bytes) -> None:
        """One client message, handled under the connection's lease.

        API Gateway may run a connection's messages in concurrent Lambdas,
        so one can overtake another: a ModifyQuerySet or Authenticate whose
        base version is ahead of the session waits (up to REORDER_WAIT
        seconds) for the ones before it, and so does a Mutation or Action
        whose requestId skips one, so a connection's mutations run in the
        order sent (after the wait it runs anyway)."""
        try:
            message: ClientMessage | None = parse_client_message(text)
            refused = ""
        except ProtocolError as e:
            message, refused = None, e.message
        verify = verified_token(self._verify, message)
        deadline = time.monotonic() + REORDER_WAIT
        while True:
            held = self._leases.acquire_waiting(
                _conn_key(conn_id), _conn_mark(conn_id), timeout=self._wait
            )
            if held is None:
                self._poster.post(conn_id, {"type": "FatalError", "error": "unknown connection"})
                self._poster.close(conn_id)
                return
            session = SyncSession.from_json(held.data["session"])
            if not _ahead(message, session) or time.monotonic() > deadline:
                break
            self._push_held(conn_id, held, session)  # lets go (serving any mark)
            time.sleep(0.02)
        try:
            if message is None:
                raise ProtocolError(refused)
            commands = session.receive(message, verify)
        except ProtocolError as e:
            commands = [Fatal(e.message)]
        try:
            self._handle(conn_id, held, session, commands)
        except Exception as e:  # a bug must end this connection only, with a FatalError
            traceback.print_exc()
            reason = f"the server failed to handle a message ({type(e).__name__})"
            self._poster.post(conn_id, {"type": "FatalError", "error": reason})
            self._poster.close(conn_id)
            self._drop(conn_id, held)

    def _handle(self, conn_id: str, held: Held, session: SyncSession, commands: list[Any]) -> None:
        actions: list[RunAction] = []
        floor, force = 0, False
        for command in commands:
            if isinstance(command, Fatal):
                self._poster.post(conn_id, {"type": "FatalError", "error": command.reason})
                self._poster.close(conn_id)
                self._drop(conn_id, held)
                return
            if isinstance(command, Reply):
                if not self._poster.post(conn_id, command.message):
                    self._drop(conn_id, held)
                    return
            elif isinstance(command, QuerySetChanged):
                self._subscribe(conn_id, session, held)
            elif isinstance(command, RunMutation):
                ts = self._mutation(conn_id, held, session, command)
                if ts is None:
                    self._drop(conn_id, held)
                    return
                floor, force = max(floor, ts), True
            elif isinstance(command, RunAction):
                actions.append(command)
        self._push_held(conn_id, held, session, floor=floor, force=force)
        for action in actions:
            self._poster.post(conn_id, self._action(action))

    # ---- subscriptions -------------------------------------------------------------

    def _subscribe(self, conn_id: str, session: SyncSession, held: Held) -> None:
        keys: dict[str, str] = held.data["keys"]
        who = json.dumps(session.user, sort_keys=True) if session.user is not None else ""
        owners: dict[int, tuple[str, Any, bytes]] = {}
        for query_id, sub in session.queries.items():
            path = normalize_path(sub.udf_path)
            # A journal the server did not sign counts as none (journal.py):
            # made-up journals share the run of the query without one.
            journal = self._journals.verify(path, sub.args, sub.journal)
            owner = owner_of(path, sub.args, who, json.dumps(journal) if journal else None)
            owners[query_id] = (path, journal, owner)
        # Removed queries leave, and so do those whose identity changed
        # (Authenticate): two users never share a result.
        gone = [
            qid for qid in keys if int(qid) not in owners or owners[int(qid)][2].hex() != keys[qid]
        ]
        unfile(
            self._store,
            [_subscriber_key(bytes.fromhex(keys[q]), conn_id, int(q)) for q in gone],
        )
        for qid in gone:
            del keys[qid]
        added: list[tuple[bytes, dict[str, Any]]] = []
        for query_id, sub in session.queries.items():
            if str(query_id) in keys:
                continue
            path, journal, owner = owners[query_id]
            self._store.transact(
                [Put(_subscriber_key(owner, conn_id, query_id), b""), Bump(_query_mark(owner))]
            )
            keys[str(query_id)] = owner.hex()
            record = {
                "path": path,
                "args": encode_json(sub.args),
                "identity": session.user,
                "journal": journal,
                "result": None,
                "gen": self._clock().to_bytes(8, "big").hex(),
                "filed": [],
            }
            added.append((owner, record))
        stored = self._store.get([_query_key(owner) for owner, _ in added])
        for (owner, record), existing in zip(added, stored, strict=True):
            if existing is not None and existing.value and self._current(existing.value):
                continue  # shared with another subscriber, and current
            # Waiting for a holder: what it saves may predate a write this
            # client made, and this connection's next Transition sends it.
            for other in self.refresh(owner, create=record, wait=True) - {conn_id}:
                self.push(other)

    def _current(self, value: bytes) -> bool:
        """Whether a stored shared query's result can be handed to a new
        subscriber as it is: nobody is refreshing it now and no write has
        moved what its run read since (its read set's versions, checked in
        one request). A write's refresh comes from the change feed, so a
        result may lag the latest commits by the stream's delay: a
        subscriber who just wrote must not get one from before its write."""
        data = json.loads(value)
        if not data["result"] or "versions" not in data or "lease" in data:
            return False
        versions = {(pk, bytes.fromhex(sk)): v for pk, sk, v in data["versions"]}
        return self._db.still_valid(ReadSet(versions=versions))

    # ---- shared queries ------------------------------------------------------------

    def refresh(
        self, owner: bytes, *, create: dict[str, Any] | None = None, wait: bool = False
    ) -> frozenset[str]:
        """Re-run a shared query under its lease; if its result changed, the
        connections subscribed to it (to push to), else none. A query nobody
        subscribes to any more is deleted instead. If someone else holds it,
        leave them a mark, or with `wait` wait for them and run it here (the
        result then surely includes what was committed before the call)."""
        key, mark = _query_key(owner), _query_mark(owner)
        if wait:
            held = self._leases.acquire_waiting(key, mark, timeout=self._wait, create=create)
        else:
            held = self._leases.acquire_or_mark(key, mark, create=create)
        if held is None:
            return frozenset()
        changed = False
        while True:
            data = held.data
            filed = {(pk, bytes.fromhex(sk)) for pk, sk, *_ in data["filed"]}
            # Scanned each round: a subscriber who joins later bumps the mark.
            subscribers = self.subscribers(owner)
            if not subscribers:
                if self._leases.delete(held):
                    unfile(self._store, filed)
                    return frozenset()
                continue
            before = data["result"]["digest"] if data["result"] else None
            for attempt in range(1, _MAX_REFRESHES + 1):
                last = attempt == _MAX_REFRESHES
                self.runs += 1
                result, reads, journal = run_subscription(
                    self._executor,
                    self._db,
                    data["path"],
                    decode_json(data["args"]),
                    data["identity"],
                    data["journal"],
                    self._journals,
                    validate=last,  # else checked once, below, after filing
                )
                wanted = filings(owner, bytes.fromhex(data["gen"]), reads) if reads else {}
                file_reads(self._store, {k: v for k, v in wanted.items() if k not in filed})
                # Filed first, validated second: a write that commits after
                # this check is found through the filings; one before it
                # fails the check (the reads moved) and the query runs again.
                if reads is None or last or self._db.still_valid(reads):
                    break
                filed |= set(wanted)
            data["result"] = result.to_json()
            data["journal"] = journal
            data["filed"] = [[pk, sk.hex(), v.decode()] for (pk, sk), v in wanted.items()]
            versions = reads.versions.items() if reads is not None else ()
            data["versions"] = [[pk, sk.hex(), v] for (pk, sk), v in versions]
            data["at"] = self._clock()
            changed = changed or before != result.digest.hex()
            if self._leases.release(held, self._unfiling(filed - set(wanted))):
                return subscribers if changed else frozenset()

    def _unfiling(self, stale: set[Key]) -> list[Op]:
        """Deletes of filings no longer wanted, to go with the release's
        write when there are few (the usual case: a range's bound moved);
        many are deleted here first, in batches."""
        if len(stale) > _UNFILE_WITH_RELEASE:
            unfile(self._store, stale)
            return []
        return [Delete(k) for k in stale]

    def _results(self, keys: dict[str, str]) -> tuple[dict[int, QueryResult], int]:
        """The stored results of a connection's queries, and the latest
        validation time among them."""
        owners = sorted(set(keys.values()))
        if not owners:
            return {}, 0
        records = self._store.get([_query_key(bytes.fromhex(o)) for o in owners])
        by_owner: dict[str, dict[str, Any]] = {}
        at = 0
        for owner, record in zip(owners, records, strict=True):
            if record is None or not record.value:
                continue
            data = json.loads(record.value)
            if data.get("result"):
                by_owner[owner] = data["result"]
                at = max(at, data.get("at", 0))
        results = {
            int(qid): QueryResult.from_json(by_owner[o]) for qid, o in keys.items() if o in by_owner
        }
        return results, at

    # ---- writes -----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    @property
    def table_indexes(self) -> Callable[[str], Any]:
        return self._db.table_indexes

    def on_changes(self, changes: Iterable[Change]) -> None:
        """Committed writes from the change feed (the stream Lambda)."""
        documents = [
            found
            for change in changes
            if (found := document_change(change, self._db.table_indexes)) is not None
        ]
        self.on_documents(documents)

    def on_documents(self, documents: list[tuple[str, list[tuple[IndexId, bytes]]]]) -> None:
        """Refresh every query these writes touch and push to the subscribers
        of those that changed; the first failure is raised after the rest
        are done."""
        connections: set[str] = set()
        failures: list[Exception] = []
        for outcome in self.refresh_all(sorted(self.touched(documents))).values():
            if isinstance(outcome, Exception):
                failures.append(outcome)
            else:
                connections |= outcome
        failures += self.push_all(sorted(connections)).values()
        if failures:
            raise failures[0]

    def refresh_all(self, owners: list[bytes]) -> dict[bytes, frozenset[str] | Exception]:
        """`refresh` each owner, SYNC_STORED_WORKERS at a time: each one's
        subscribers to push to, or the exception its refresh raised."""
        return _each(self.refresh, owners)

    def push_all(self, conn_ids: list[str]) -> dict[str, Exception]:
        """`push` to each connection, SYNC_STORED_WORKERS at a time; the
        exception of each push that raised one."""
        done = _each(self.push, conn_ids)
        return {c: e for c, e in done.items() if isinstance(e, Exception)}

    def touched(self, documents: list[tuple[str, list[tuple[IndexId, bytes]]]]) -> set[bytes]:
        """The shared queries whose read sets these written documents touch."""
        return touched_owners(self._store, documents) if documents else set()

    def subscribers(self, owner: bytes) -> frozenset[str]:
        """The connections subscribed to a shared query."""
        return frozenset(
            item.key[1].split(b"\0", 1)[0].decode()
            for item in scan_all(self._store, _subscribers(owner))
        )

    # ---- pushes -----------------------------------------------------------------------

    def push(self, conn_id: str) -> None:
        """Send a connection what changed (or leave it to its lease holder)."""
        held = self._leases.acquire_or_mark(_conn_key(conn_id), _conn_mark(conn_id))
        if held is None:
            return
        session = SyncSession.from_json(held.data["session"])
        try:
            self._push_held(conn_id, held, session)
        except Exception:
            # The session is saved only after its posts, so the next push
            # starts from what the client surely had.
            self._leases.abandon(held)
            raise

    def _push_held(
        self, conn_id: str, held: Held, session: SyncSession, *, floor: int = 0, force: bool = False
    ) -> None:
        while True:
            results, at = self._results(held.data["keys"])
            ts = max(floor, at)
            for message in session.messages(results, ts, force=force):
                if not self._poster.post(conn_id, message):
                    self._drop(conn_id, held)
                    return
            held.data["session"] = session.to_json()
            if self._leases.release(held):
                return
            force = False

    # ---- mutations and actions ---------------------------------------------------------

    def _mutation(
        self, conn_id: str, held: Held, session: SyncSession, command: RunMutation
    ) -> int | None:
        """Run a mutation; refresh the connection's own queries it touched;
        post its response. Its commit timestamp (the next Transition's
        floor), None if the connection is gone."""
        session_id = session.session_id
        key = dedupe.request_key(session_id, command.request_id) if session_id else None
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
        ts = 0
        if call is not None and call.ok:
            ts = call.ts or self._clock()
            if call.writes is not None:
                documents = written_documents(call.writes, self._db.table_indexes)
                self._refresh_own(conn_id, held.data["keys"], documents)
            message["ts"] = encode_ts(ts)
        posted = self._poster.post(conn_id, message)
        if session_id is not None and call is not None and call.ok and not call.replayed:
            self._sweep(held.data, session_id)  # after answering
        return ts if posted else None

    def _refresh_own(
        self,
        conn_id: str,
        keys: dict[str, str],
        documents: list[tuple[str, list[tuple[IndexId, bytes]]]],
    ) -> None:
        """Re-run this connection's queries a mutation it sent touched, found
        from their own filings (no lookup), and push to the other subscribers
        of those whose result changed.

        Waiting for each: the Transition that follows the response claims the
        commit, so every one of its queries the commit touched must be re-run
        after it (a stream worker may be refreshing one now, from a read that
        predates the commit). Other connections' queries are left to the
        stream Lambda, which the change feed brings this commit to: the
        writer's answer waits for no one else's refresh, and a touched query
        is re-run once per write, not by both Lambdas."""
        owners = sorted(set(keys.values()))
        if not owners or not documents:
            return
        records = self._store.get([_query_key(bytes.fromhex(o)) for o in owners])
        touched: list[bytes] = []
        for owner, record in zip(owners, records, strict=True):
            if record is None or not record.value:
                continue  # gone
            data = json.loads(record.value)
            # A leased record is being refreshed (or made) now, maybe from
            # reads older than the commit, with filings its record does not
            # show yet: wait for it and run it again.
            if "lease" in data or filed_touched(_filed_values(data["filed"]), documents):
                touched.append(bytes.fromhex(owner))
        others: set[str] = set()
        for outcome in _each(lambda o: self.refresh(o, wait=True), touched).values():
            if isinstance(outcome, Exception):
                raise outcome  # the Transition could not claim the commit
            others |= outcome
        for error in self.push_all(sorted(others - {conn_id})).values():
            traceback.print_exception(error)  # another connection's, not this one's

    def _sweep(self, data: dict[str, Any], session_id: str) -> None:
        """Trim expired mutation records (`dedupe.sweep`): after every mutation
        while sweeps find a full page, else once per
        MUTATION_RECORD_SWEEP_SECONDS per connection (the time is kept in
        the connection's record), so a steady writer's socket mutation
        costs no sweep request most of the time."""
        now = self._clock()
        if now < data.get("sweep_at", 0):
            return
        swept = dedupe.sweep(self._store, session_id, now=now)
        full = swept >= MUTATION_RECORD_SWEEP
        data["sweep_at"] = 0 if full else now + int(MUTATION_RECORD_SWEEP_SECONDS * 1e9)

    def _action(self, command: RunAction) -> dict[str, Any]:
        message, _ = respond(
            "ActionResponse",
            command.request_id,
            lambda: self._executor.call(
                command.udf_path, command.args, kind="action", identity=command.identity
            ),
            prod=self._executor.prod,
        )
        return message
