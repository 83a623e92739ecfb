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
import secrets
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


_TAG = "\x00pre-encoded:" + secrets.token_hex(8) + ":"
"""Stands in for a pre-encoded value while the envelope is encoded; its
random part keeps it out of any value a client wrote (and a message in
which it appears anyway is encoded the slow way: `message_text`)."""
_TAG_TEXT = _dumps(_TAG)[1:-1]


def message_text(message: Any) -> str:
    """The message as compact JSON (what `json.dumps(message,
    separators=(",", ":"))` writes), reusing pre-encoded values' text. The
    envelope (a Transition, its modifications, their fields: three levels)
    is encoded by the json module in one call with a placeholder for each
    pre-encoded value, then each placeholder is replaced by its text."""
    if type(message) is _EncodedDict or type(message) is _EncodedList:
        text: str = message.json_text
        return text
    texts: list[str] = []
    shell = _shell(message, texts, 0)
    out: str = _dumps(shell)
    if not texts:
        return out
    if out.count(_TAG_TEXT) != len(texts):
        return _walk(message, 0)  # a value carried the tag: no shortcut
    for i, text in enumerate(texts):
        out = out.replace(f'"{_TAG_TEXT}{i}"', text, 1)
    return out


def _shell(obj: Any, texts: list[str], depth: int) -> Any:
    """`obj` with each pre-encoded value (within three levels) replaced by a
    numbered placeholder whose text is appended to `texts`."""
    kind = type(obj)
    if kind is _EncodedDict or kind is _EncodedList:
        texts.append(obj.json_text)
        return f"{_TAG}{len(texts) - 1}"
    if depth < 3 and kind is dict:
        return {key: _shell(item, texts, depth + 1) for key, item in obj.items()}
    if depth < 3 and kind is list:
        return [_shell(item, texts, depth + 1) for item in obj]
    return obj


def _walk(message: Any, depth: int) -> str:
    """`message_text` without the placeholder shortcut."""
    kind = type(message)
    if kind is _EncodedDict or kind is _EncodedList:
        text: str = message.json_text
        return text
    if depth < 3 and kind is dict:
        parts = [_dumps(key) + ":" + _walk(item, depth + 1) for key, item in message.items()]
        return "{" + ",".join(parts) + "}"
    if depth < 3 and kind is list:
        return "[" + ",".join(_walk(item, depth + 1) for item in message) + "]"
    return _dumps(message)
