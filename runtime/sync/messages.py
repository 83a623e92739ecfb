"""The sync protocol's messages (PROTOCOL.md, "Sync protocol"): parsing what
clients send, building what the server sends. Pure; no I/O."""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import PlatformError
from runtime.limits import SYNC_ID_MAX, SYNC_SESSION_ID_CHARS
from runtime.values import InvalidValueError, decode_json
from runtime.values.client_json import ClientJsonError, loads_client

__all__ = [
    "Action",
    "Add",
    "Authenticate",
    "ClientMessage",
    "Connect",
    "Event",
    "ModifyQuerySet",
    "Mutation",
    "ProtocolError",
    "Remove",
    "Version",
    "decode_ts",
    "encode_ts",
    "parse_client_message",
]

_U64 = struct.Struct("<Q")


class ProtocolError(PlatformError):
    """A message the server cannot accept: the connection ends with FatalError."""

    code = "PROTOCOL_ERROR"


_last_ts: tuple[int, str] = (0, "AAAAAAAAAAA=")
"""The last timestamp encoded: a step pushing one commit to a thousand
sockets encodes the same one a thousand times."""


def encode_ts(ts: int) -> str:
    """Timestamps on the wire: u64 nanoseconds, 8 bytes little-endian, base64."""
    global _last_ts
    last = _last_ts
    if last[0] == ts:
        return last[1]
    text = base64.b64encode(_U64.pack(ts)).decode("ascii")
    _last_ts = (ts, text)
    return text


def decode_ts(text: object) -> int:
    try:
        raw = base64.b64decode(str(text), validate=True)
        (ts,) = _U64.unpack(raw)
    except (ValueError, struct.error):
        raise ProtocolError(f"bad timestamp {text!r}: expected base64 of 8 bytes") from None
    return int(ts)


@dataclass(frozen=True, slots=True)
class Version:
    query_set: int
    identity: int
    ts: int
    _json: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """`to_json`'s answer, kept: a Transition's end version is the next one's start."""

    def to_json(self) -> dict[str, Any]:
        """The wire form (shared: read it, do not change it)."""
        out = self._json
        if out is None:
            out = {"querySet": self.query_set, "identity": self.identity, "ts": encode_ts(self.ts)}
            object.__setattr__(self, "_json", out)
        return out


@dataclass(frozen=True, slots=True)
class Connect:
    session_id: str
    connection_count: int
    max_observed_ts: int | None


@dataclass(frozen=True, slots=True)
class Authenticate:
    base_version: int
    token_type: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Add:
    query_id: int
    udf_path: str
    args: Any
    journal: str | None


@dataclass(frozen=True, slots=True)
class Remove:
    query_id: int


@dataclass(frozen=True, slots=True)
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: tuple[Add | Remove, ...]


@dataclass(frozen=True, slots=True)
class Mutation:
    request_id: int
    udf_path: str
    args: Any


@dataclass(frozen=True, slots=True)
class Action:
    request_id: int
    udf_path: str
    args: Any


@dataclass(frozen=True, slots=True)
class Event:
    """Client telemetry: ignored."""


ClientMessage = Connect | Authenticate | ModifyQuerySet | Mutation | Action | Event


_SESSION_ID = re.compile(rf"[!-~]{{1,{SYNC_SESSION_ID_CHARS}}}")


def _int(obj: dict[str, Any], name: str) -> int:
    """A request id, query id or version: an integer in 0..SYNC_ID_MAX (the
    JSON may spell it 7 or 7.0). Anything else, 1e999 and NaN included, is
    refused here rather than breaking the code that uses it."""
    value = obj.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= SYNC_ID_MAX  # False for NaN
        or value != int(value)
    ):
        shown = repr(value)[:40]
        raise ProtocolError(
            f"{obj.get('type')}.{name} must be an integer from 0 to {SYNC_ID_MAX}, got {shown}"
        )
    return int(value)


def _session_id(obj: dict[str, Any]) -> str:
    value = _str(obj, "sessionId")
    if not _SESSION_ID.fullmatch(value):
        raise ProtocolError(
            f"Connect.sessionId must be 1 to {SYNC_SESSION_ID_CHARS} printable ASCII "
            "characters (the official clients send a UUID)"
        )
    return value


def _str(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ProtocolError(f"{obj.get('type')}.{name} must be a string, got {value!r}")
    return value


def _args(obj: dict[str, Any]) -> Any:
    args = obj.get("args", [{}])
    if isinstance(args, list):
        if len(args) != 1:
            raise ProtocolError(f"{obj.get('type')}.args must hold exactly one object")
        args = args[0]
    try:
        return decode_json(args)
    except InvalidValueError as e:
        raise ProtocolError(f"{obj.get('type')}.args are not Convex values: {e}") from None


def parse_client_message(text: str | bytes) -> ClientMessage:
    try:
        obj = loads_client(text)
    except ClientJsonError as e:
        raise ProtocolError(
            f"a message is one JSON object; this one is not JSON we accept: {e}"
        ) from None
    if not isinstance(obj, dict):
        raise ProtocolError("a message is one JSON object")
    kind = obj.get("type")
    if kind == "Connect":
        observed = obj.get("maxObservedTimestamp")
        return Connect(
            _session_id(obj),
            _int(obj, "connectionCount") if "connectionCount" in obj else 0,
            decode_ts(observed) if observed else None,
        )
    if kind == "Authenticate":
        token_type = _str(obj, "tokenType")
        value = obj.get("value")
        return Authenticate(
            _int(obj, "baseVersion"), token_type, value if isinstance(value, str) else None
        )
    if kind == "ModifyQuerySet":
        mods: list[Add | Remove] = []
        raw = obj.get("modifications")
        if not isinstance(raw, list):
            raise ProtocolError("ModifyQuerySet.modifications must be a list")
        for m in raw:
            if not isinstance(m, dict):
                raise ProtocolError("ModifyQuerySet.modifications holds objects")
            if m.get("type") == "Add":
                journal = m.get("journal")
                mods.append(
                    Add(
                        _int(m, "queryId"),
                        _str(m, "udfPath"),
                        _args(m),
                        journal if isinstance(journal, str) else None,
                    )
                )
            elif m.get("type") == "Remove":
                mods.append(Remove(_int(m, "queryId")))
            else:
                raise ProtocolError(f"unknown query set modification {m.get('type')!r}")
        return ModifyQuerySet(_int(obj, "baseVersion"), _int(obj, "newVersion"), tuple(mods))
    if kind == "Mutation":
        return Mutation(_int(obj, "requestId"), _str(obj, "udfPath"), _args(obj))
    if kind == "Action":
        return Action(_int(obj, "requestId"), _str(obj, "udfPath"), _args(obj))
    if kind == "Event":
        return Event()
    raise ProtocolError(f"unknown message type {kind!r}")
