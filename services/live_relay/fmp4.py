"""Fragmented MP4, read only as far as the relay needs: a camera's byte stream cut into its initialisation
segment (`ftyp` + `moov`) and its fragments (`moof` + `mdat`, each starting at a keyframe: the agent asks FFmpeg
for `frag_keyframe`). Only the 8-byte (or 16-byte) box headers are read; the media is never decoded."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

INIT_BOXES = frozenset({b"ftyp", b"moov"})


class BadStream(ValueError):
    """The bytes are not a fragmented MP4 stream the relay can cut (or a box is over the size allowed)."""


@dataclass
class Splitter:
    """Fed a camera's bytes in any pieces; gives back each complete piece: ("init", bytes) once `moov` ends,
    ("fragment", bytes) once a fragment's `mdat` ends. Boxes between fragments (`styp`, `sidx`, `prft`) go with
    the next fragment."""

    max_box: int
    _buf: bytearray = field(default_factory=bytearray)
    _init: bytearray = field(default_factory=bytearray)
    _frag: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self._buf += data
        out: list[tuple[str, bytes]] = []
        while True:
            box = self._next_box()
            if box is None:
                return out
            kind, raw = box
            if kind in INIT_BOXES:
                self._init += raw
                if kind == b"moov":
                    out.append(("init", bytes(self._init)))
                    self._init.clear()
                    self._frag.clear()
            else:
                self._frag += raw
                if kind == b"mdat":
                    out.append(("fragment", bytes(self._frag)))
                    self._frag.clear()
            if len(self._frag) > self.max_box or len(self._init) > self.max_box:
                raise BadStream("a fragment is larger than the relay accepts")

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
        if size > self.max_box:
            raise BadStream(f"an MP4 box of {size} bytes, over the {self.max_box} allowed")
        if not all(32 <= c < 127 for c in kind):
            raise BadStream("not an MP4 box")
        if len(self._buf) < size:
            return None
        raw = bytes(self._buf[:size])
        del self._buf[:size]
        return kind, raw
