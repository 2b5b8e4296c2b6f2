"""The relay's cutting of a camera's fragmented MP4 (services/live_relay/fmp4.py): whole pieces out of bytes in any
pieces, and bytes that are not such a stream refused rather than passed on."""

from __future__ import annotations

import struct

import pytest

from services.live_relay.fmp4 import BadStream, Splitter


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_the_initialisation_segment_and_each_fragment_come_out_whole_however_the_bytes_are_cut() -> None:
    init = box(b"ftyp", b"isom") + box(b"moov", b"m" * 40)
    fragments = [box(b"moof", b"f" * 20) + box(b"mdat", bytes([n]) * 100) for n in range(3)]
    stream = init + b"".join(fragments)
    for size in (1, 7, 64, len(stream)):
        splitter = Splitter(max_box=1024)
        out = []
        for at in range(0, len(stream), size):
            out += splitter.feed(stream[at : at + size])
        assert out == [("init", init), *(("fragment", f) for f in fragments)], size


def test_a_64_bit_box_size_is_read() -> None:
    payload = b"x" * 10
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    assert Splitter(max_box=1024).feed(box(b"moof") + large) == [("fragment", box(b"moof") + large)]


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">I4s", 0, b"mdat"),  # "to the end of the file": no end in a live stream
        struct.pack(">I4s", 4, b"moof"),  # smaller than its own header
        struct.pack(">I4s", 5000, b"mdat"),  # over the size allowed
        b"\x00\x00\x00\x10\xff\xfe\x00\x01" + b"x" * 8,  # not a box type
    ],
)
def test_bytes_that_are_not_a_fragmented_mp4_stream_are_refused(data: bytes) -> None:
    with pytest.raises(BadStream):
        Splitter(max_box=1024).feed(data)


def test_a_fragment_growing_past_the_limit_is_refused() -> None:
    splitter = Splitter(max_box=100)
    with pytest.raises(BadStream):
        for _ in range(20):
            splitter.feed(box(b"prft", b"p" * 40))
