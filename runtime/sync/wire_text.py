"""Sync messages as text, with each query result's value encoded once.

A result shared by many subscribers (one query, a thousand sockets) goes
out in a thousand Transitions. `pre_encoded` wraps the value's
convex_encoded_json in a dict or list subclass that carries its compact
JSON text, computed once; `message_text` writes a message around that text
instead of encoding the value again for every connection. The wrappers are
ordinary dicts and lists to everything else (tests, `json.dumps`).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["message_text", "pre_encoded", "with_text"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


class _EncodedDict(dict[str, Any]):
    __slots__ = ("json_text",)
    json_text: str


class _EncodedList(list[Any]):
    __slots__ = ("json_text",)
    json_text: str


def pre_encoded(value: Any) -> Any:
    """`value` (convex_encoded_json) carrying its JSON text; scalars, which
    cost nothing to encode again, are returned as they are."""
    if type(value) is dict:
        wrapped: _EncodedDict | _EncodedList = _EncodedDict(value)
    elif type(value) is list:
        wrapped = _EncodedList(value)
    else:
        return value
    wrapped.json_text = _dumps(value)
    return wrapped


def with_text(message: dict[str, Any], text: str) -> dict[str, Any]:
    """`message` carrying `text`, its JSON already written (a Transition
    measured against the size limit is not encoded again to be sent)."""
    wrapped = _EncodedDict(message)
    wrapped.json_text = text
    return wrapped


def message_text(message: Any, _depth: int = 0) -> str:
    """The message as compact JSON (what `json.dumps(message,
    separators=(",", ":"))` writes), reusing pre-encoded values' text. Only
    the envelope is walked (a Transition, its modifications, their fields):
    anything deeper is encoded by the json module in one call."""
    kind = type(message)
    if kind is _EncodedDict or kind is _EncodedList:
        text: str = message.json_text
        return text
    if _depth < 3 and kind is dict:
        deeper = _depth + 1
        parts = [_dumps(key) + ":" + message_text(item, deeper) for key, item in message.items()]
        return "{" + ",".join(parts) + "}"
    if _depth < 3 and kind is list:
        return "[" + ",".join(message_text(item, _depth + 1) for item in message) + "]"
    return _dumps(message)
