"""The dev server's hand-built text frames, read back by the websockets
library's own frame parser (what every client does with them)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from runtime.local.ws_frames import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_frame_of_each_length_encoding_parses_back(size: int) -> None:
    payload = (b"\xc3\xa9" * size)[: size - size % 2]  # "é"s: UTF-8, whole characters
    reader = StreamReader()
    reader.feed_data(text_frame(payload) + text_frame(b"next"))
    reader.feed_eof()
    frames = []
    for _ in range(2):
        gen = Frame.parse(reader.read_exact, mask=False)
        try:
            next(gen)
        except StopIteration as done:
            frames.append(done.value)
    first, second = frames
    assert (first.opcode, first.fin, first.data) == (Opcode.TEXT, True, payload)
    assert (second.opcode, second.data) == (Opcode.TEXT, b"next")  # nothing over- or under-read
