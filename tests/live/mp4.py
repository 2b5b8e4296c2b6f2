"""Reading what a viewer received, in the live tests: each complete fragment's samples (duration and H.264 NAL
units) from its `trun` and `mdat` — a browser's Media Source Extensions decode each sample as one picture — and,
for each slice, where in the picture it starts. Written from ISO/IEC 14496-12 and H.264, apart from the agent's
own reading (edge/canvass_edge/fmp4.py), so the tests check the agent rather than repeat it."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

SPS, PPS, IDR = 7, 8, 5
SLICE_TYPES = frozenset({1, 5})
NOT_SYNC = 0x10000  # sample_is_non_sync_sample, in the sample flags


@dataclass(frozen=True)
class Sample:
    fragment: int  # the fragment's number in the stream, from 0
    duration: int  # in the track's timescale
    flags: int  # the sample flags (ISO/IEC 14496-12 8.8.3.1)
    nal_units: tuple[bytes, ...]

    @property
    def keyframe(self) -> bool:
        return not self.flags & NOT_SYNC

    def types(self) -> list[int]:
        return [u[0] & 0x1F for u in self.nal_units]

    def slice_starts(self) -> list[int]:
        """Each slice's first_mb_in_slice: where in the picture (in macroblocks) it starts."""
        return [_exp_golomb(u[1:]) for u in self.nal_units if u[0] & 0x1F in SLICE_TYPES]


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """Each complete box between start and end: (kind, where its payload starts, where it ends)."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        if size < header or at + size > end:
            return
        yield kind, at + header, at + size
        at += size


def samples(stream: bytes) -> list[Sample]:
    """The samples of every complete fragment (`moof` then `mdat`) of a fragmented MP4 stream."""
    out: list[Sample] = []
    moof: tuple[int, int] | None = None
    fragment = 0
    for kind, payload, end in boxes(stream):
        if kind == b"moof":
            moof = (payload - 8, end)
        elif kind == b"mdat" and moof is not None:
            out += _fragment(stream, moof[0], moof[1], fragment)
            fragment += 1
            moof = None
    return out


def _fragment(stream: bytes, moof_at: int, moof_end: int, number: int) -> list[Sample]:
    (traf,) = [(p, e) for k, p, e in boxes(stream, moof_at + 8, moof_end) if k == b"traf"]
    children = {k: (p, e) for k, p, e in boxes(stream, *traf)}
    tfhd, trun = children[b"tfhd"][0], children[b"trun"][0]
    tf_flags = struct.unpack_from(">I", stream, tfhd)[0] & 0xFFFFFF
    assert not tf_flags & 0x1, "an explicit base data offset"
    at = tfhd + 8 + (4 if tf_flags & 0x2 else 0)
    default_duration = default_size = default_flags = 0
    if tf_flags & 0x8:
        (default_duration,) = struct.unpack_from(">I", stream, at)
        at += 4
    if tf_flags & 0x10:
        (default_size,) = struct.unpack_from(">I", stream, at)
        at += 4
    if tf_flags & 0x20:
        (default_flags,) = struct.unpack_from(">I", stream, at)
    flags, count = struct.unpack_from(">II", stream, trun)
    flags &= 0xFFFFFF
    at = trun + 8
    data = moof_at
    if flags & 0x1:
        data += struct.unpack_from(">i", stream, at)[0]
        at += 4
    first_flags = None
    if flags & 0x4:
        (first_flags,) = struct.unpack_from(">I", stream, at)
        at += 4
    out: list[Sample] = []
    for n in range(count):
        duration, size = default_duration, default_size
        sample_flags = first_flags if n == 0 and first_flags is not None else default_flags
        if flags & 0x100:
            (duration,) = struct.unpack_from(">I", stream, at)
            at += 4
        if flags & 0x200:
            (size,) = struct.unpack_from(">I", stream, at)
            at += 4
        if flags & 0x400:
            (sample_flags,) = struct.unpack_from(">I", stream, at)
            at += 4
        at += 4 if flags & 0x800 else 0
        units = tuple(_nal_units(stream[data : data + size]))
        out.append(Sample(number, duration, sample_flags, units))
        data += size
    return out


def _nal_units(sample: bytes) -> Iterator[bytes]:
    at = 0
    while at < len(sample):
        (size,) = struct.unpack_from(">I", sample, at)
        assert 0 < size <= len(sample) - at - 4, "a NAL unit's length runs past its sample"
        yield sample[at + 4 : at + 4 + size]
        at += 4 + size


def _exp_golomb(data: bytes) -> int:
    """The unsigned Exp-Golomb number the bits start with (a slice header's first field)."""
    bits = "".join(f"{b:08b}" for b in data[:8])
    zeros = bits.index("1")
    return int(bits[zeros : 2 * zeros + 1], 2) - 1


def complete(stream: bytes) -> bytes:
    """The stream up to the end of its last complete fragment (a viewer stops reading anywhere)."""
    end = 0
    for kind, _, box_end in boxes(stream):
        if kind in (b"moov", b"mdat"):
            end = box_end
    return stream[:end]
