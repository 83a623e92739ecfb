"""Reading a field of a document by its dotted path."""

from __future__ import annotations

from typing import Any

from runtime.values import UNDEFINED

__all__ = ["field_value"]


def field_value(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted field path, or UNDEFINED when any step is missing."""
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return UNDEFINED
        cur = cur[part]
    return cur
