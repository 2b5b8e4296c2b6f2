"""The edge agent's mending of FFmpeg's fragmented MP4 (edge/canvass_edge/fmp4.py): a keyframe FFmpeg wrote as one
sample per slice (its parameter sets repeated before each slice, each sample a tick long) leaves as one sample
holding every slice, with the picture's duration; a stream of whole pictures, or laid out otherwise than FFmpeg
writes it, leaves byte for byte as it came; bytes that are no such stream are refused."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from canvass_edge.fmp4 import MAX_BOX, BadStream, Mender

from tests.live.mp4 import IDR, PPS, SPS, samples

SYNC, NOT_SYNC = 0x02000000, 0x01010000  # sample flags as FFmpeg writes them
SPS_UNIT = bytes([0x67, 0x42, 0xC0, 0x0D, 0xD9, 0x01, 0x41, 0xFB])
PPS_UNIT = bytes([0x68, 0xCB, 0x83, 0xCB, 0x20])


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def slice_unit(nal_type: int, first_mb: int, size: int = 40) -> bytes:
    """A slice NAL unit starting at the given macroblock (its header's first field, Exp-Golomb coded)."""
    code = bin(first_mb + 1)[2:]
    bits = "0" * (len(code) - 1) + code + "1"
    bits += "0" * (-len(bits) % 8)
    header = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return bytes([0x60 | nal_type]) + header + bytes([0xA5]) * size


def sample(*units: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(u)) + u for u in units)


def fragment(entries: list[tuple[int, bytes, int]], number: int = 1, base: int = 0) -> bytes:
    """A fragment as FFmpeg writes it with default_base_moof: tfhd with defaults, tfdt, and a trun giving each
    sample's duration, size and flags, whose data offset points at the mdat's payload."""
    tfhd = box(b"tfhd", struct.pack(">IIIII", 0x020038, 1, entries[0][0], len(entries[0][1]), NOT_SYNC))
    tfdt = box(b"tfdt", struct.pack(">IQ", 0x01000000, base))

    def moof(offset: int) -> bytes:
        runs = b"".join(struct.pack(">III", d, len(s), f) for d, s, f in entries)
        trun = box(b"trun", struct.pack(">IIi", 0x000701, len(entries), offset) + runs)
        return box(b"moof", box(b"mfhd", struct.pack(">II", 0, number)) + box(b"traf", tfhd + tfdt + trun))

    header = moof(0)
    return moof(len(header) + 8) + box(b"mdat", b"".join(s for _, s, _ in entries))


INIT = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"moov", b"m" * 60)
P_PICTURE = sample(slice_unit(1, 0), slice_unit(1, 100), slice_unit(1, 200))


def mended(stream: bytes, piece: int) -> bytes:
    mender = Mender()
    return b"".join(mender.feed(stream[at : at + piece]) for at in range(0, len(stream), piece))


def test_a_keyframe_written_one_sample_per_slice_leaves_as_one_sample_with_its_slices_and_duration() -> None:
    split = [
        (1, sample(SPS_UNIT, PPS_UNIT, slice_unit(IDR, 0)), SYNC),
        (1, sample(SPS_UNIT, PPS_UNIT, slice_unit(IDR, 100)), SYNC),
        (5998, sample(SPS_UNIT, PPS_UNIT, slice_unit(IDR, 200)), SYNC),
        (6000, P_PICTURE, NOT_SYNC),
        (6000, P_PICTURE, NOT_SYNC),
    ]
    stream = INIT + fragment(split, 1, 0) + fragment(split, 2, 18000)
    for piece in (1, 7, 100, len(stream)):
        out = mended(stream, piece)
        assert out.startswith(INIT), piece
        got = samples(out)
        assert [(s.fragment, s.duration) for s in got] == [(0, 6000)] * 3 + [(1, 6000)] * 3, piece
        keyframe = got[0]
        assert keyframe.types() == [SPS, PPS, IDR, IDR, IDR]  # the parameter sets once, then the slices
        assert keyframe.slice_starts() == [0, 100, 200]
        assert all(s.slice_starts() == [0, 100, 200] for s in got)
        assert [s.keyframe for s in got] == [True, False, False] * 2  # the first slice's sample's flags


def test_a_stream_of_whole_pictures_leaves_byte_for_byte_as_it_came() -> None:
    whole = [
        (
            6000,
            sample(SPS_UNIT, PPS_UNIT, slice_unit(IDR, 0), slice_unit(IDR, 100), slice_unit(IDR, 200)),
            SYNC,
        ),
        (6000, P_PICTURE, NOT_SYNC),
    ]
    stream = INIT + fragment(whole, 1, 0) + fragment(whole, 2, 12000)
    assert mended(stream, 5) == stream


SPLIT_KEYFRAME = [
    (1, sample(SPS_UNIT, PPS_UNIT, slice_unit(IDR, 0)), SYNC),
    (6000, sample(SPS_UNIT, PPS_UNIT, slice_unit(IDR, 100)), SYNC),
]


def two_track_fragments(frag: bytes) -> bytes:
    (size,) = struct.unpack_from(">I", frag)
    moof, mdat = frag[:size], frag[size:]
    traf = moof[moof.index(b"traf") - 4 :]
    return box(b"moof", moof[8:] + traf) + mdat


def a_nal_unit_running_past_its_sample(frag: bytes) -> bytes:
    return frag.replace(struct.pack(">I", len(SPS_UNIT)) + SPS_UNIT, struct.pack(">I", 999) + SPS_UNIT, 1)


@pytest.mark.parametrize("change", [two_track_fragments, a_nal_unit_running_past_its_sample])
def test_a_fragment_it_cannot_read_leaves_as_it_came(change: Callable[[bytes], bytes]) -> None:
    frag = fragment(SPLIT_KEYFRAME)
    assert [s.duration for s in samples(mended(INIT + frag, 3))] == [6001]  # mended, as it reads it
    changed = change(frag)
    assert changed != frag
    assert mended(INIT + changed, 3) == INIT + changed


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">I4s", 0, b"mdat"),
        struct.pack(">I4s", 4, b"moof"),
        struct.pack(">I4s", MAX_BOX + 1, b"mdat"),
    ],
    ids=["size-0", "size-under-its-header", "over-the-limit"],
)
def test_bytes_that_are_not_a_fragmented_mp4_stream_are_refused(data: bytes) -> None:
    with pytest.raises(BadStream):
        Mender().feed(data)
