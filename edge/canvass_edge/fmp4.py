"""FFmpeg's fragmented MP4 of a camera, mended on the owner's box so that every sample is one whole picture (an
H.264 access unit) before it leaves for the relay.

Why: an encoder may cut each picture into several slices (x264's sliced threads, many IP cameras), and an RTSP
server may repeat the parameter sets (SPS, PPS) before every slice of a keyframe, not once before the picture:
GStreamer's `rtph264pay config-interval=-1` does, and so do the cameras and recorders built on it. The standard
says a parameter set after a slice begins a new access unit (H.264 7.4.1.2.3), so FFmpeg's H.264 parser cuts the
keyframe there, and with `-c copy` FFmpeg writes it as one sample per slice, all at the RTP timestamp of the
picture but each one tick (1/90 000 s) after the other to keep the times increasing. A browser decodes each
sample as a picture: the keyframe's first sample lacks the slices below it and the next one the slices above it,
and every picture until the next keyframe is predicted from that, so Chromium shows part of the frame green.

Here a sample whose first slice does not begin its picture (its `first_mb_in_slice` is not 0, the test FFmpeg's
own parser makes) is joined to the sample before it, without the parameter sets it repeats, and the two durations
are added. FFmpeg's `-min_frag_duration` (agent.py) keeps such samples in one fragment. Only box headers, the
track fragment's `tfhd`/`trun`, each NAL unit's length and the first bit of each slice header are read; the media
is never decoded. A fragment laid out otherwise than FFmpeg writes it (several tracks or runs, sample groups,
encryption, an explicit base offset) is passed on unchanged."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAX_BOX = 64 * 1024 * 1024  # a fragment is held here whole; the relay takes 16 MiB boxes unless told more
NAL_LENGTH = 4  # FFmpeg's MP4 muxer writes every NAL unit's length in 4 bytes (avcC lengthSizeMinusOne = 3)
# NAL unit types whose payload starts with a slice header: non-IDR slice, data partition A, IDR slice.
SLICES = frozenset({1, 2, 5})
# SPS, PPS, access unit delimiter: a repeat of one inside a picture carries nothing.
REPEATABLE = frozenset({7, 8, 9})

# tfhd and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8)
TFHD_BASE_DATA_OFFSET, TFHD_DESCRIPTION_INDEX, TFHD_DEFAULT_DURATION, TFHD_DEFAULT_SIZE = 0x1, 0x2, 0x8, 0x10
TRUN_DATA_OFFSET, TRUN_FIRST_FLAGS = 0x1, 0x4
TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO = 0x100, 0x200, 0x400, 0x800


class BadStream(ValueError):
    """FFmpeg's output is not a fragmented MP4 stream (or holds a box over MAX_BOX)."""


class _Unusual(Exception):
    """A fragment laid out otherwise than FFmpeg writes it: passed on as it is."""


@dataclass
class Mender:
    """Fed FFmpeg's bytes in any pieces; gives back the same stream, each fragment's samples made whole pictures,
    as soon as a fragment (`moof` + `mdat`) is complete. Other boxes pass through unchanged."""

    _buf: bytearray = field(default_factory=bytearray)
    _moof: bytes | None = None

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while (box := self._next_box()) is not None:
            kind, raw = box
            if kind == b"mdat" and self._moof is not None:
                out += mend(self._moof, raw)
                self._moof = None
                continue
            if self._moof is not None:  # a fragment header without its data: not ours to mend
                out += self._moof
                self._moof = None
            if kind == b"moof":
                self._moof = raw
            else:
                out += raw
        return bytes(out)

    def _next_box(self) -> tuple[bytes, bytes] | None:
        if len(self._buf) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", self._buf)
        header = 8
        if size == 1:
            if len(self._buf) < 16:
                return None
            (size,) = struct.unpack_from(">Q", self._buf, 8)
            header = 16
        if size < header:  # 0 ("to the end of the file") has no end in a live stream
            raise BadStream(f"an MP4 box of size {size}")
        if size > MAX_BOX:
            raise BadStream(f"an MP4 box of {size} bytes")
        if len(self._buf) < size:
            return None
        raw = bytes(self._buf[:size])
        del self._buf[:size]
        return kind, raw


def mend(moof: bytes, mdat: bytes) -> bytes:
    """One fragment with each sample one whole picture: the same bytes when they already are (or when the
    fragment's layout is not FFmpeg's)."""
    try:
        fragment = _Fragment.read(moof, mdat)
        if not fragment.join_slices():
            return moof + mdat
    except (_Unusual, struct.error, IndexError):
        return moof + mdat
    return fragment.write()


@dataclass
class _Sample:
    duration: int
    data: bytes
    flags: bytes  # 4 bytes, when the run gives each sample its flags
    cto: bytes  # 4 bytes, when the run gives each sample a composition time offset


@dataclass
class _Fragment:
    moof_children: list[tuple[bytes, bytes]]  # (kind, raw box), the traf's place kept
    traf_children: list[tuple[bytes, bytes]]  # the trun's place kept
    trun_version: int
    trun_flags: int
    first_flags: bytes
    samples: list[_Sample]

    @classmethod
    def read(cls, moof: bytes, mdat: bytes) -> _Fragment:
        moof_children = _children(moof)
        trafs = [raw for kind, raw in moof_children if kind == b"traf"]
        if len(trafs) != 1:
            raise _Unusual
        traf_children = _children(trafs[0])
        kinds = [kind for kind, _ in traf_children]
        if sorted(kinds) not in ([b"tfhd", b"trun"], [b"tfdt", b"tfhd", b"trun"]):
            raise _Unusual
        tfhd = next(raw for kind, raw in traf_children if kind == b"tfhd")
        trun = next(raw for kind, raw in traf_children if kind == b"trun")

        (tf_flags,) = struct.unpack_from(">I", tfhd, 8)
        tf_flags &= 0xFFFFFF
        if tf_flags & TFHD_BASE_DATA_OFFSET:
            raise _Unusual
        at = 20 if tf_flags & TFHD_DESCRIPTION_INDEX else 16  # after the header, version and flags, track_ID
        default_duration = default_size = None
        if tf_flags & TFHD_DEFAULT_DURATION:
            (default_duration,) = struct.unpack_from(">I", tfhd, at)
            at += 4
        if tf_flags & TFHD_DEFAULT_SIZE:
            (default_size,) = struct.unpack_from(">I", tfhd, at)

        (version_flags, count) = struct.unpack_from(">II", trun, 8)
        version, flags = version_flags >> 24, version_flags & 0xFFFFFF
        if not flags & TRUN_DATA_OFFSET:
            raise _Unusual
        (data_offset,) = struct.unpack_from(">i", trun, 16)
        at = 20
        first_flags = b""
        if flags & TRUN_FIRST_FLAGS:
            first_flags = trun[at : at + 4]
            at += 4
        mdat_header = 16 if struct.unpack_from(">I", mdat)[0] == 1 else 8
        if data_offset != len(moof) + mdat_header:
            raise _Unusual
        payload = memoryview(mdat)[mdat_header:]
        samples: list[_Sample] = []
        pos = 0
        for _ in range(count):
            duration, size = default_duration, default_size
            sample_flags = cto = b""
            if flags & TRUN_DURATION:
                (duration,) = struct.unpack_from(">I", trun, at)
                at += 4
            if flags & TRUN_SIZE:
                (size,) = struct.unpack_from(">I", trun, at)
                at += 4
            if flags & TRUN_FLAGS:
                sample_flags = trun[at : at + 4]
                at += 4
            if flags & TRUN_CTO:
                cto = trun[at : at + 4]
                at += 4
            if duration is None or size is None:  # given by the movie's trex: not read here
                raise _Unusual
            samples.append(_Sample(duration, bytes(payload[pos : pos + size]), sample_flags, cto))
            pos += size
        if pos != len(payload) or at != len(trun):
            raise _Unusual
        return cls(moof_children, traf_children, version, flags, first_flags, samples)

    def join_slices(self) -> bool:
        """Join each sample that continues the picture before it to that sample; whether any was."""
        joined: list[_Sample] = []
        for sample in self.samples:
            units = _nal_units(sample.data)
            if joined and _continues_picture(units):
                before = joined[-1]
                have = set(_nal_units(before.data))
                kept = [u for u in units if not (u[0] & 0x1F in REPEATABLE and u in have)]
                before.data += b"".join(len(u).to_bytes(NAL_LENGTH, "big") + u for u in kept)
                before.duration += sample.duration
            else:
                joined.append(_Sample(sample.duration, sample.data, sample.flags, sample.cto))
        if len(joined) == len(self.samples):
            return False
        self.samples = joined
        return True

    def write(self) -> bytes:
        flags = self.trun_flags | TRUN_DURATION | TRUN_SIZE
        mdat = _box(b"mdat", b"".join(s.data for s in self.samples))
        moof = self._moof(flags, 0)
        return self._moof(flags, len(moof) + 8) + mdat

    def _moof(self, flags: int, data_offset: int) -> bytes:
        entries = b"".join(
            struct.pack(">II", s.duration, len(s.data))
            + (s.flags if flags & TRUN_FLAGS else b"")
            + (s.cto if flags & TRUN_CTO else b"")
            for s in self.samples
        )
        trun = _box(
            b"trun",
            struct.pack(">IIi", self.trun_version << 24 | flags, len(self.samples), data_offset)
            + self.first_flags
            + entries,
        )
        traf = _box(b"traf", b"".join(trun if kind == b"trun" else raw for kind, raw in self.traf_children))
        return _box(b"moof", b"".join(traf if kind == b"traf" else raw for kind, raw in self.moof_children))


def _children(box: bytes) -> list[tuple[bytes, bytes]]:
    """A container box's child boxes, each (kind, raw bytes)."""
    header = 16 if struct.unpack_from(">I", box)[0] == 1 else 8
    out: list[tuple[bytes, bytes]] = []
    at = header
    while at < len(box):
        size, kind = struct.unpack_from(">I4s", box, at)
        if size == 1:
            (size,) = struct.unpack_from(">Q", box, at + 8)
        if size < 8 or at + size > len(box):
            raise _Unusual
        out.append((kind, box[at : at + size]))
        at += size
    return out


def _nal_units(sample: bytes) -> list[bytes]:
    units: list[bytes] = []
    at = 0
    while at < len(sample):
        size = int.from_bytes(sample[at : at + NAL_LENGTH], "big")
        at += NAL_LENGTH
        if size == 0 or at + size > len(sample):
            raise _Unusual
        units.append(sample[at : at + size])
        at += size
    return units


def _continues_picture(units: list[bytes]) -> bool:
    """Whether the first slice among these NAL units continues a picture: its first_mb_in_slice, the slice
    header's first field (Exp-Golomb), is not 0 — which is coded as a single 1 bit."""
    for unit in units:
        if unit[0] & 0x1F in SLICES:
            return len(unit) > 1 and not unit[1] & 0x80
    return False


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload
