"""The read-set index: a write finds exactly the queries whose reads cover it."""

from __future__ import annotations

import random

from runtime.database.readwrite import IndexRange, ReadSet
from runtime.sync.read_index import ReadIndex
from runtime.values import encode_key, prefix_end, successor

IDX = ("messages", "by_channel")


def key(channel: str, t: float, doc: str = "d") -> bytes:
    return encode_key((channel, t, doc))


def reads(*ranges: tuple[bytes, bytes | None], docs: tuple[str, ...] = ()) -> ReadSet:
    rs = ReadSet()
    rs.ranges.extend(IndexRange(IDX[0], IDX[1], lo, hi) for lo, hi in ranges)
    rs.documents.update(docs)
    return rs


def test_prefix_ranges_intervals_and_documents() -> None:
    index = ReadIndex()
    red = encode_key(("red",))
    index.put("eq-red", reads((red, prefix_end(red))))
    index.put("whole", reads((b"", None)))
    index.put("top2-red", reads((key("red", 5.0), prefix_end(red))))  # truncated: newest two
    index.put("gt-m", reads((successor(encode_key(("m",))), None)))
    index.put("doc", reads(docs=("abc",)))
    assert index.touched("x", [(IDX, key("red", 9.0))]) == {"eq-red", "whole", "top2-red", "gt-m"}
    assert index.touched("x", [(IDX, key("red", 1.0))]) == {"eq-red", "whole", "gt-m"}
    assert index.touched("x", [(IDX, key("blue", 1.0))]) == {"whole"}
    assert index.touched("abc", [(("other", "by_id"), b"")]) == {"doc"}
    index.remove("whole")
    index.remove("doc")
    assert index.touched("abc", [(IDX, key("blue", 1.0))]) == set()
    index.put("eq-red", reads())  # replaced by an empty read set
    assert index.touched("x", [(IDX, key("red", 1.0))]) == {"gt-m"}


def test_matches_a_brute_force_check() -> None:
    rng = random.Random(7)
    channels = [f"c{i}" for i in range(30)]
    index = ReadIndex()
    spans: dict[str, tuple[bytes, bytes | None]] = {}
    for n in range(300):
        ch = rng.choice(channels)
        lo = encode_key((ch,)) if rng.random() < 0.5 else key(ch, rng.random())
        hi = prefix_end(encode_key((ch,))) if rng.random() < 0.7 else key(ch, rng.random() + 1)
        spans[f"q{n}"] = (lo, hi)
        index.put(f"q{n}", reads((lo, hi)))
    for _ in range(500):
        k = key(rng.choice(channels), rng.random() * 2)
        expected = {o for o, (lo, hi) in spans.items() if lo <= k and (hi is None or k < hi)}
        assert index.touched("x", [(IDX, k)]) == expected
