"""Sync-protocol messages the hardening tests of both sync implementations send."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["forged_journal_adds"]


def forged_journal_adds(n: int, channel: str) -> dict[str, Any]:
    """A ModifyQuerySet adding `messages:list` n times, each with a journal
    the server never issued (the amplification attempt)."""
    adds = [
        {
            "type": "Add",
            "queryId": i,
            "udfPath": "messages:list",
            "args": [{"channel": channel}],
            "journal": json.dumps({"endCursors": [f"forged-{i}"]}),
        }
        for i in range(n)
    ]
    return {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds}
