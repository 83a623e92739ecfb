"""One connection's side of the sync protocol, as a state machine.

Messages in (`receive`), commands and messages out; query results arrive
through `transition()`, which builds the next Transition. No I/O and no
clocks: the hub (`hub.py`) runs queries and mutations and carries messages.
The state is small and plain (versions, the query set, what was last sent),
so the AWS shell can keep it in DynamoDB.

Version rules (PROTOCOL.md): Transitions chain (`startVersion` = previous
`endVersion`); `endVersion.querySet` acknowledges a ModifyQuerySet only once
every query it added has a result in that Transition; `identity` acknowledges
the latest Authenticate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.auth import Unauthenticated
from runtime.limits import SYNC_MESSAGE_BYTES, SYNC_QUERIES_PER_CONNECTION
from runtime.values import decode_json, encode_json

from .messages import (
    Action,
    Add,
    Authenticate,
    ClientMessage,
    Connect,
    Event,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    Remove,
    Version,
)
from .wire_text import message_text, pre_encoded, with_text

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Fatal",
    "QueryResult",
    "QuerySetChanged",
    "Reply",
    "RunAction",
    "RunMutation",
    "SyncSession",
]

_TEXTS_KEPT = 64
"""Distinct Transition texts kept per result (see QueryResult.texts)."""

MAX_MESSAGE_BYTES = SYNC_MESSAGE_BYTES
"""The split size of Transitions (see `runtime.limits.SYNC_MESSAGE_BYTES`)."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's outcome as the protocol sends it."""

    ok: bool
    value: Any = None
    """convex_encoded_json of the value (ok) or None."""
    error_message: str | None = None
    error_data: Any = None
    """convex_encoded_json of ConvexError data, when there was some."""
    has_error_data: bool = False
    log_lines: tuple[str, ...] = ()
    digest: bytes = b""
    """Identifies the result: equal digests, equal results."""
    journal: str | None = None
    """The query's journal (its paginate end cursors), opaque to clients."""
    texts: dict[tuple[int, ...], tuple[dict[str, Any], Version]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Transitions carrying only this result, with their end version, by
    `_text_key` (start, end and query id): a thousand sockets watching one
    query mostly stand at the same versions, so their identical Transition
    is built and written once, and sent to each (fan-out)."""

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (the AWS shell keeps shared results in the store)."""
        return {
            "ok": self.ok,
            "value": self.value,
            "errorMessage": self.error_message,
            "errorData": self.error_data,
            "hasErrorData": self.has_error_data,
            "logLines": list(self.log_lines),
            "digest": self.digest.hex(),
            "journal": self.journal,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueryResult:
        return cls(
            data["ok"],
            pre_encoded(data["value"]),
            data["errorMessage"],
            data["errorData"],
            data["hasErrorData"],
            tuple(data["logLines"]),
            bytes.fromhex(data["digest"]),
            data["journal"],
        )

    def modification(self, query_id: int) -> dict[str, Any]:
        journal = self.journal
        if self.ok:
            return {
                "type": "QueryUpdated",
                "queryId": query_id,
                "value": self.value,
                "logLines": list(self.log_lines),
                "journal": journal,
            }
        out: dict[str, Any] = {
            "type": "QueryFailed",
            "queryId": query_id,
            "errorMessage": self.error_message,
            "logLines": list(self.log_lines),
            "journal": journal,
        }
        if self.has_error_data:
            out["errorData"] = self.error_data
        return out


# ---- commands for the hub ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fatal:
    reason: str


@dataclass(frozen=True, slots=True)
class QuerySetChanged:
    added: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RunMutation:
    request_id: int
    udf_path: str
    args: Any
    identity: dict[str, Any] | None = None
    """The session's identity when the message arrived: it runs under that."""


@dataclass(frozen=True, slots=True)
class RunAction:
    request_id: int
    udf_path: str
    args: Any
    identity: dict[str, Any] | None = None
    """The session's identity when the message arrived: it runs under that."""


Command = Reply | Fatal | QuerySetChanged | RunMutation | RunAction


@dataclass
class Subscription:
    udf_path: str
    args: Any
    journal: str | None
    added_in: int
    """The query set version whose ModifyQuerySet added it."""
    sent: bytes | None = None
    """Digest of the result last sent (None: never sent)."""


@dataclass
class SyncSession:
    session_id: str | None = None
    queries: dict[int, Subscription] = field(default_factory=dict)
    query_set: int = 0
    """The latest query set version received."""
    identity: int = 0
    """The latest identity version received."""
    user: dict[str, Any] | None = None
    """The identity the latest accepted Authenticate proved (None: anonymous);
    every query, mutation and action of the session runs under it."""
    sent: Version = field(default_factory=lambda: Version(0, 0, 0))
    """The endVersion of the last Transition sent."""
    removed: list[tuple[int, int]] = field(default_factory=list)
    """(query id, version) removed and not yet acknowledged."""
    last_request: int | None = None
    """The highest Mutation or Action requestId received (None: none yet).
    The official clients number both from one counter, so a request past
    the next one overtook an earlier one (`runtime/sync/stored.py` waits)."""
    max_queries: int = field(default=SYNC_QUERIES_PER_CONNECTION, compare=False, repr=False)
    """Subscriptions allowed at once (SYNC_QUERIES_PER_CONNECTION); not state."""
    _single: tuple[QueryResult, tuple[int, ...], Version] | None = field(
        default=None, compare=False, repr=False
    )
    """Set by `transition` when its one modification is one result's update:
    the result, the key under which `messages` may find or keep its
    Transition (`QueryResult.texts`), and its end version."""
    _tail: int = field(default=0, compare=False, repr=False)
    """How many modifications at the end of the last Transition must arrive
    with its end version (results of newly acknowledged queries, removals)."""

    def messages(
        self,
        results: dict[int, QueryResult],
        ts: int,
        *,
        force: bool = False,
        limit: int = MAX_MESSAGE_BYTES,
    ) -> list[dict[str, Any]]:
        """`transition()`, split into Transitions of at most `limit` bytes
        (PROTOCOL rule 5). The earlier ones carry updates of queries the
        client already has and keep the start version, so nothing is
        acknowledged and no timestamp moves until the last, which carries the
        results of newly acknowledged queries and the end version. A single
        modification over the limit still goes out whole."""
        if not force and not self.removed and len(self.queries) == 1:
            same = self._known_transition(results, ts, limit)
            if same is not None:
                return [same]
        message = self.transition(results, ts, force=force)
        if message is None:
            return []
        shared, self._single = self._single, None
        known = shared[0].texts.get(shared[1]) if shared is not None else None
        if known is not None and len(message_text(known[0])) <= limit:
            return [known[0]]  # the same Transition, built by another session
        text = message_text(message)
        if len(text) <= limit:
            sent = with_text(message, text)  # encoded once, here
            if shared is not None and len(shared[0].texts) < _TEXTS_KEPT:
                shared[0].texts[shared[1]] = (sent, shared[2])
            return [sent]
        start, end = message["startVersion"], message["endVersion"]
        mods = message["modifications"]
        cut = len(mods) - self._tail
        head, tail = mods[:cut], mods[cut:]
        out: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        size = 256
        for mod in head:
            mod_size = _size(mod) + 1
            if batch and size + mod_size > limit:
                out.append(_transition(start, start, batch))
                batch, size = [], 256
            batch.append(mod)
            size += mod_size
        tail_size = sum(_size(m) + 1 for m in tail)
        if batch and size + tail_size > limit:
            out.append(_transition(start, start, batch))
            batch = []
        out.append(_transition(start, end, batch + tail))
        return out

    def _known_transition(
        self, results: dict[int, QueryResult], ts: int, limit: int
    ) -> dict[str, Any] | None:
        """The Transition `transition` would build when this session's one
        query has a new result, if another session at the same versions
        built it already (`QueryResult.texts`: the key holds both versions
        and the query, which fix the message); None otherwise. The fan-out's
        common case, at a dict lookup a socket."""
        ((query_id, sub),) = self.queries.items()
        result = results.get(query_id)
        sent = self.sent
        if result is None or sub.sent == result.digest:
            return None
        ack = max(self.query_set, sent.query_set)
        known = result.texts.get(_text_key(sent, ack, self.identity, max(ts, sent.ts), query_id))
        if known is None or len(message_text(known[0])) > limit:
            return None
        sub.sent = result.digest
        self.sent = known[1]
        self._single = None
        self._tail = 0
        return known[0]

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON (the AWS shell keeps it in DynamoDB)."""
        return {
            "sessionId": self.session_id,
            "querySet": self.query_set,
            "identity": self.identity,
            "user": self.user,
            "sent": {
                "querySet": self.sent.query_set,
                "identity": self.sent.identity,
                "ts": self.sent.ts,
            },
            "removed": [list(r) for r in self.removed],
            "lastRequest": self.last_request,
            "queries": {
                str(qid): {
                    "udfPath": q.udf_path,
                    "args": encode_json(q.args),
                    "journal": q.journal,
                    "addedIn": q.added_in,
                    "sent": q.sent.hex() if q.sent is not None else None,
                }
                for qid, q in self.queries.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncSession:
        sent = data["sent"]
        return cls(
            session_id=data["sessionId"],
            queries={
                int(qid): Subscription(
                    q["udfPath"],
                    decode_json(q["args"]),
                    q["journal"],
                    q["addedIn"],
                    bytes.fromhex(q["sent"]) if q["sent"] is not None else None,
                )
                for qid, q in data["queries"].items()
            },
            query_set=data["querySet"],
            identity=data["identity"],
            user=data.get("user"),
            sent=Version(sent["querySet"], sent["identity"], sent["ts"]),
            removed=[(int(a), int(b)) for a, b in data["removed"]],
            last_request=data.get("lastRequest"),
        )

    def receive(
        self, message: ClientMessage, verify: Callable[[str], dict[str, Any]] | None = None
    ) -> list[Command]:
        """The commands one message asks for. `verify` turns a user token
        into its identity or raises Unauthenticated (the shell's verifier;
        None: no user token verifies)."""
        if isinstance(message, Connect):
            self.session_id = message.session_id
            return []
        if isinstance(message, Event):
            return []
        if isinstance(message, Authenticate):
            return self._authenticate(message, verify)
        if isinstance(message, ModifyQuerySet):
            return self._modify(message)
        if isinstance(message, Mutation):
            self._requested(message.request_id)
            return [RunMutation(message.request_id, message.udf_path, message.args, self.user)]
        if isinstance(message, Action):
            self._requested(message.request_id)
            return [RunAction(message.request_id, message.udf_path, message.args, self.user)]
        raise ProtocolError(f"unexpected message {type(message).__name__}")

    def _requested(self, request_id: int) -> None:
        if self.last_request is None or request_id > self.last_request:
            self.last_request = request_id

    def _authenticate(
        self, message: Authenticate, verify: Callable[[str], dict[str, Any]] | None
    ) -> list[Command]:
        if message.base_version != self.identity:
            return [
                Fatal(
                    f"Authenticate baseVersion {message.base_version} does not follow the "
                    f"identity version {self.identity}"
                )
            ]
        if message.token_type == "None":
            self.identity += 1
            self.user = None
            return [QuerySetChanged(())]
        why = f"{message.token_type} tokens are not accepted on the sync socket"
        if message.token_type == "User":
            try:
                if verify is None:
                    raise Unauthenticated("No auth provider is configured")
                user = verify(message.value or "")
            except Unauthenticated as e:
                why = e.message
            else:
                self.identity += 1
                self.user = user
                return [QuerySetChanged(())]  # every query re-runs under the new identity
        return [Reply({"type": "AuthError", "error": why, "baseVersion": message.base_version})]

    def _modify(self, message: ModifyQuerySet) -> list[Command]:
        if message.base_version != self.query_set:
            return [
                Fatal(
                    f"ModifyQuerySet baseVersion {message.base_version} does not follow the "
                    f"query set version {self.query_set}"
                )
            ]
        if message.new_version <= message.base_version:
            return [Fatal("ModifyQuerySet newVersion must be greater than baseVersion")]
        added: list[int] = []
        for mod in message.modifications:
            if isinstance(mod, Add):
                if mod.query_id in self.queries:
                    return [Fatal(f"query {mod.query_id} was added twice")]
                self.queries[mod.query_id] = Subscription(
                    mod.udf_path, mod.args, mod.journal, message.new_version
                )
                added.append(mod.query_id)
            elif isinstance(mod, Remove):
                if self.queries.pop(mod.query_id, None) is None:
                    return [Fatal(f"query {mod.query_id} is not in the query set")]
                self.removed.append((mod.query_id, message.new_version))
        if len(self.queries) > self.max_queries:
            return [
                Fatal(
                    f"too many subscriptions on one connection ({len(self.queries)}; at most "
                    f"{self.max_queries}, SYNC_QUERIES_PER_CONNECTION): unsubscribe from "
                    "queries the page no longer shows"
                )
            ]
        self.query_set = message.new_version
        return [QuerySetChanged(tuple(added))]

    def transition(
        self, results: dict[int, QueryResult], ts: int, *, force: bool = False
    ) -> dict[str, Any] | None:
        """The next Transition given the latest results (by query id; a query
        without one is still being computed), or None when there is nothing
        to say and `force` is off. `ts` never goes backwards."""
        self._single = None
        # Acknowledge the newest query set version all of whose adds have results.
        ack = self.query_set
        for sub_id, sub in self.queries.items():
            if sub_id not in results:
                ack = min(ack, sub.added_in - 1)
        ack = max(ack, self.sent.query_set)
        mods: list[dict[str, Any]] = []
        fresh: list[dict[str, Any]] = []
        only: tuple[QueryResult, int] | None = None
        for query_id, sub in self.queries.items():
            result = results.get(query_id)
            if result is None or sub.added_in > ack:
                continue
            if sub.sent != result.digest:
                target = fresh if sub.added_in > self.sent.query_set else mods
                target.append(result.modification(query_id))
                sub.sent = result.digest
                only = (result, query_id)
        keep = []
        for query_id, version in self.removed:
            if version <= ack:
                fresh.append({"type": "QueryRemoved", "queryId": query_id})
            else:
                keep.append((query_id, version))
        self.removed = keep
        self._tail = len(fresh)
        mods += fresh
        end = Version(ack, self.identity, max(ts, self.sent.ts))
        if not mods and end == self.sent and not force:
            return None
        message = {
            "type": "Transition",
            "startVersion": self.sent.to_json(),
            "endVersion": end.to_json(),
            "modifications": mods,
        }
        if only is not None and len(mods) == 1:
            key = _text_key(self.sent, end.query_set, end.identity, end.ts, only[1])
            self._single = (only[0], key, end)
        self.sent = end
        return message


def _text_key(
    start: Version, query_set: int, identity: int, ts: int, query_id: int
) -> tuple[int, ...]:
    """Where `QueryResult.texts` keeps a Transition: its start and end
    versions and its one query (plain ints: cheaper to hash than Versions)."""
    return (start.query_set, start.identity, start.ts, query_set, identity, ts, query_id)


def _size(obj: dict[str, Any]) -> int:
    return len(message_text(obj))


def _transition(start: Any, end: Any, mods: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "Transition", "startVersion": start, "endVersion": end, "modifications": mods}
