"""Sync messages as text: the same JSON as the json module writes, with a
shared result's value encoded once for all its subscribers."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from runtime.sync.wire_text import message_text, pre_encoded

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _transition(values: list[Any]) -> dict[str, Any]:
    return {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="},
        "modifications": [
            {"type": "QueryUpdated", "queryId": i, "value": v, "logLines": [], "journal": None}
            for i, v in enumerate(values)
        ],
    }


@given(st.lists(json_values, max_size=4), st.booleans())
def test_the_text_is_what_the_json_module_writes(values: list[Any], wrap: bool) -> None:
    shown = [pre_encoded(v) for v in values] if wrap else values
    expected = json.dumps(_transition(values), separators=(",", ":"))
    assert message_text(_transition(shown)) == expected
    assert json.loads(message_text(_transition(shown))) == json.loads(expected)


def test_a_pre_encoded_value_is_encoded_once_and_reused() -> None:
    value = {"page": [{"body": "hi", "n": 1}], "isDone": True}
    shared = pre_encoded(value)
    assert shared == value and isinstance(shared, dict)  # still a dict to everyone else
    shared["page"] = "changed after encoding"  # the text was fixed when it was encoded
    for query_id in range(3):
        text = message_text({"type": "QueryUpdated", "queryId": query_id, "value": shared})
        assert json.loads(text)["value"] == {"page": [{"body": "hi", "n": 1}], "isDone": True}


def test_scalars_are_left_as_they_are() -> None:
    for scalar in (None, True, 3, 2.5, "text"):
        assert pre_encoded(scalar) is scalar


def test_a_value_carrying_the_placeholder_tag_is_still_written_exactly() -> None:
    """Pre-encoded values stand in as tagged placeholders while the envelope
    is encoded; a client's string equal to a placeholder must not be replaced."""
    from runtime.sync.wire_text import _TAG

    message = {
        "modifications": [
            {"value": pre_encoded([f"{_TAG}0", {"k": f"{_TAG}1"}])},
            {"value": f"{_TAG}0"},
            {"value": pre_encoded({"n": 1})},
        ]
    }
    assert message_text(message) == json.dumps(message, separators=(",", ":"))
