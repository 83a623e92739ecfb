"""The stream mapping's filter in template.yaml and the one the local
harness applies (`runtime.aws.stream_records.document_write`) pass the
same records: document writes and removals, not the platform's own items."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.aws.stream_records import document_write


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda's filter rule for the subset the template uses: objects match
    key by key, a list names the values allowed."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _matches(p, value[k]) for k, p in pattern.items()
        )
    return value in pattern


def _record(event: str, new: dict[str, Any] | None, old: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"Keys": {"pk": {"S": "x"}}}
    if new is not None:
        data["NewImage"] = new
    if old is not None:
        data["OldImage"] = old
    return {"eventName": event, "dynamodb": data}


DOC = {"pk": {"S": "d:t"}, "f": {"BOOL": True}, "ts": {"N": "1"}}
STATE = {"pk": {"S": "s:conn"}, "n": {"N": "3"}}
RECORDS = {
    "document inserted": (_record("INSERT", DOC, None), True),
    "document modified": (_record("MODIFY", DOC, DOC), True),
    "document removed": (_record("REMOVE", None, DOC), True),
    "session written": (_record("MODIFY", STATE, STATE), False),
    "lease taken": (_record("INSERT", STATE, None), False),
    "filing removed": (_record("REMOVE", None, STATE), False),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_template_filter_and_harness_filter_agree(sam_source: dict[str, Any], name: str) -> None:
    mapping = sam_source["Resources"]["StreamFunction"]["Properties"]["Events"]["Feed"]
    patterns = [
        json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]
    ]
    record, expected = RECORDS[name]
    assert any(_matches(p, record) for p in patterns) is expected
    assert document_write(record) is expected
