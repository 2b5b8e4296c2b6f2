"""Removing what a tip's media says about who made it, before anything is stored.

Images (JPEG, PNG, WebP) are decoded with Pillow and their pixels alone written to a new file: EXIF (the camera,
its serial number, GPS), XMP, IPTC, comments and text chunks are not carried over. The EXIF orientation is applied
to the pixels first, so the picture still stands the right way up without it.

Video and audio are remuxed by ffmpeg without re-encoding (`-map_metadata -1 -map_chapters -1 -c copy`, bit-exact
muxing so no encoder tag is written), keeping only the video and audio streams. The SEI messages of H.264 and
H.265 video, where encoders and cameras write user data (the encoder and its settings, a device's model or serial
number, GPS), are dropped from every sample (ffmpeg's filter_units), and from an H.265 track's decoder
configuration (hvcC) too (`without_hevc_config_sei`); timing and HDR SEI go with them, which players do without.
Data streams, where phones and action cameras put GPS tracks, are dropped, and so are attached pictures (a cover or
a thumbnail is a photo, copied as it is, with its EXIF). The demuxer is the one the declared type names (never guessed from the
content), so a playlist or another file format cannot make ffmpeg open anything else.

A type that none of these can clean is refused: there is no "store as given".

A process of the service runs at most `ffmpeg_concurrency` ffmpeg at once; a file waits at most `ffmpeg_wait_s`
for its turn, after which its tip is refused with 503 and Retry-After (nothing of a tip is stored before all its
files are cleaned), so many uploads at once queue for a while and are then turned away, not run all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import os
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from services.community_api.config import config
from shared.errors import Problem

# Declared media type -> Pillow's format name.
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# Declared media type -> (the demuxer it is read with, the muxer it is written with).
AV_FORMATS = {
    "video/mp4": ("mov", "mp4"),
    "video/quicktime": ("mov", "mov"),
    "video/webm": ("matroska", "webm"),
    "audio/mpeg": ("mp3", "mp3"),
    "audio/mp4": ("mov", "ipod"),
    "audio/ogg": ("ogg", "ogg"),
}
CLEANABLE = frozenset(IMAGE_FORMATS) | frozenset(AV_FORMATS)
# The NAL unit types of SEI messages (ffmpeg's filter_units syntax): H.264's 6; H.265's prefix and suffix SEI.
SEI_NAL_TYPES = {"h264": "6", "hevc": "39|40"}
# The muxers that write an ISO base media file (moov, trak, … stsd), where an H.265 track's decoder
# configuration (hvcC) may carry SEI of its own.
MOV_MUXERS = frozenset({"mp4", "mov", "ipod"})
# An image larger than this many pixels is refused rather than decoded (a small file can unpack to gigabytes).
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Cleaned:
    media_type: str
    content: bytes

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.content).digest()


def unreadable(media_type: str, index: int) -> Problem:
    return Problem(
        422,
        f"/body/media/{index}: the file could not be read as {media_type}, so its metadata cannot be removed;"
        " nothing was stored.",
        kind="media-unreadable",
        title="Media could not be cleaned",
    )


def refuse_uncleanable(media_type: str, index: int) -> Problem:
    return Problem(
        415,
        f"/body/media/{index}: {media_type or 'a file without a type'} cannot be cleaned of its metadata, so it is"
        f" not accepted. Accepted types: {', '.join(sorted(CLEANABLE))}.",
        kind="media-type-not-cleanable",
        title="Media type not accepted",
    )


def _clean_image(data: bytes, media_type: str, index: int) -> bytes:
    fmt = IMAGE_FORMATS[media_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as source:
                if source.width * source.height > MAX_PIXELS:
                    raise unreadable(media_type, index)
                source.load()
                upright = ImageOps.exif_transpose(source) or source
                # A new image from the pixels alone: nothing of the source's info (EXIF, XMP, ICC, comments,
                # text chunks) can follow it into the saved file.
                mode = upright.mode if upright.mode in ("1", "L", "LA", "RGB", "RGBA", "P") else "RGBA"
                pixels = upright.convert(mode) if mode != upright.mode else upright
                clean = Image.new(mode, pixels.size)
                if mode == "P":
                    palette = pixels.getpalette()
                    if palette is not None:
                        clean.putpalette(palette)
                clean.paste(pixels)
                if fmt == "JPEG" and clean.mode not in ("1", "L", "RGB"):
                    clean = clean.convert("RGB")
                out = io.BytesIO()
                clean.save(out, fmt, **({"quality": 92} if fmt in ("JPEG", "WEBP") else {}))
                return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise unreadable(media_type, index) from exc
    except Image.DecompressionBombWarning as exc:
        raise unreadable(media_type, index) from exc


_ffmpeg_slots: asyncio.Semaphore | None = None


def busy() -> Problem:
    retry = max(1, math.ceil(config().ffmpeg_wait_s))
    return Problem(
        503,
        f"Too many media files are being cleaned at the moment; nothing of this tip was stored. Send it again in "
        f"{retry} seconds.",
        headers={"Retry-After": str(retry)},
    )


@asynccontextmanager
async def ffmpeg_slot() -> AsyncIterator[None]:
    """One of the process's `ffmpeg_concurrency` ffmpeg slots, waited for at most `ffmpeg_wait_s` (then 503)."""
    global _ffmpeg_slots
    if _ffmpeg_slots is None:
        _ffmpeg_slots = asyncio.Semaphore(config().ffmpeg_concurrency)
    try:
        async with asyncio.timeout(config().ffmpeg_wait_s):
            await _ffmpeg_slots.acquire()
    except TimeoutError:
        raise busy() from None
    try:
        yield
    finally:
        _ffmpeg_slots.release()


async def _clean_av(path: str, media_type: str, index: int) -> bytes:
    async with ffmpeg_slot():
        codecs = await _video_codecs(path, media_type, index)
        data = await _remux(path, media_type, index, codecs)
    if AV_FORMATS[media_type][1] in MOV_MUXERS and "hevc" in codecs:
        try:
            return await asyncio.to_thread(without_hevc_config_sei, data)
        except ValueError:
            raise unreadable(media_type, index) from None
    return data


async def _run(args: list[str], media_type: str, index: int) -> tuple[int, bytes]:
    """Run ffmpeg or ffprobe within `ffmpeg_timeout_s`: its exit code and its standard output."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), config().ffmpeg_timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise unreadable(media_type, index) from None
    assert proc.returncode is not None
    return proc.returncode, out


async def _video_codecs(path: str, media_type: str, index: int) -> list[str]:
    """The codecs of the file's video streams (not attached pictures), in the order ffmpeg maps them."""
    demuxer, _ = AV_FORMATS[media_type]
    code, out = await _run(
        [config().ffprobe_path, "-v", "error", "-protocol_whitelist", "file", "-f", demuxer,
         "-select_streams", "V", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path],
        media_type,
        index,
    )  # fmt: skip
    if code != 0:
        raise unreadable(media_type, index)
    return [line.strip() for line in out.decode(errors="replace").splitlines() if line.strip()]


def _sei_filters(codecs: list[str]) -> list[str]:
    """A bitstream filter for each H.264 or H.265 video stream that drops its SEI NAL units."""
    args: list[str] = []
    for i, codec in enumerate(codecs):
        if codec in SEI_NAL_TYPES:
            args += [f"-bsf:v:{i}", f"filter_units=remove_types={SEI_NAL_TYPES[codec]}"]
    return args


async def _remux(path: str, media_type: str, index: int, codecs: list[str]) -> bytes:
    demuxer, muxer = AV_FORMATS[media_type]
    fd, out_path = tempfile.mkstemp(prefix="canvass-tip-", suffix=".out")
    os.close(fd)
    try:
        code, _ = await _run(
            [config().ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file",
             "-f", demuxer, "-i", path,
             # video, but not an attached picture (a cover, a thumbnail: a photo with its own EXIF)
             "-map", "0:V?", "-map", "0:a?", "-map_metadata", "-1", "-map_chapters", "-1",
             "-c", "copy", *_sei_filters(codecs),
             "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
             "-f", muxer, "-y", out_path],
            media_type,
            index,
        )  # fmt: skip
        data = await asyncio.to_thread(Path(out_path).read_bytes)
        if code != 0 or not data:
            raise unreadable(media_type, index)
        return data
    finally:
        os.unlink(out_path)


# The boxes from the top of an ISO base media file down to a sample entry's hvcC, and the bytes each box's content
# holds before its children: stsd's version, flags and entry count; a visual sample entry's fixed fields.
_PATH_BOXES = {
    b"moov": 0,
    b"trak": 0,
    b"mdia": 0,
    b"minf": 0,
    b"stbl": 0,
    b"stsd": 8,
    b"hvc1": 78,
    b"hev1": 78,
}


def _box_at(data: bytes, pos: int) -> tuple[bytes, int, int]:
    """The box at `pos`: its type, its header's length and its end."""
    if pos + 8 > len(data):
        raise ValueError("truncated box header")
    size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
    header = 8
    if size == 1:
        if pos + 16 > len(data):
            raise ValueError("truncated box header")
        size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
    elif size == 0:
        size = len(data) - pos
    if size < header or pos + size > len(data):
        raise ValueError("box size out of bounds")
    return kind, header, pos + size


def _hvcc_without_sei(content: bytes) -> bytes:
    """An HEVCDecoderConfigurationRecord without its arrays of SEI NAL units."""
    if len(content) < 23:
        raise ValueError("short hvcC")
    arrays, pos, kept = content[22], 23, []
    for _ in range(arrays):
        start = pos
        if pos + 3 > len(content):
            raise ValueError("truncated hvcC array")
        nal_type, count = content[pos] & 0x3F, int.from_bytes(content[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(content):
                raise ValueError("truncated hvcC NAL unit")
            pos += 2 + int.from_bytes(content[pos : pos + 2], "big")
        if pos > len(content):
            raise ValueError("truncated hvcC NAL unit")
        if nal_type not in (39, 40):
            kept.append(content[start:pos])
    return content[:22] + bytes([len(kept)]) + b"".join(kept) + content[pos:]


def _rewrite_boxes(data: bytes) -> bytes:
    """The boxes in `data`, those on the way to an hvcC rebuilt around it (their sizes follow), the rest as
    they are."""
    out, pos = bytearray(), 0
    while pos < len(data):
        kind, header, end = _box_at(data, pos)
        if kind == b"hvcC":
            content = _hvcc_without_sei(data[pos + header : end])
        elif kind in _PATH_BOXES:
            fixed = pos + header + _PATH_BOXES[kind]
            if fixed > end:
                raise ValueError("short box")
            content = data[pos + header : fixed] + _rewrite_boxes(data[fixed:end])
        else:
            out += data[pos:end]
            pos = end
            continue
        size = header + len(content)
        out += (
            (1).to_bytes(4, "big") + kind + size.to_bytes(8, "big")
            if header == 16
            else size.to_bytes(4, "big") + kind
        )
        out += content
        pos = end
    return bytes(out)


def without_hevc_config_sei(data: bytes) -> bytes:
    """An ISO base media file (as ffmpeg wrote it) whose H.265 tracks' decoder configuration (hvcC) carries no
    SEI. ffmpeg's filter_units drops SEI from the samples but keeps those of the configuration, where an encoder
    or a camera may write its own (x265 writes its version and settings there). The moov box is rebuilt; it
    comes after the media data (ffmpeg writes it last without +faststart), so no sample's offset changes, and a
    file where it does not is refused rather than broken."""
    out, pos, moved = bytearray(), 0, False
    while pos < len(data):
        kind, _, end = _box_at(data, pos)
        box = _rewrite_boxes(data[pos:end]) if kind == b"moov" else data[pos:end]
        if kind == b"mdat" and moved:
            raise ValueError("media data after a moov that changed size")
        moved = moved or len(box) != end - pos
        out += box
        pos = end
    return bytes(out)


async def clean(path: str, media_type: str, index: int) -> Cleaned:
    """The file at `path` (as uploaded, declared `media_type`) without its metadata."""
    if media_type in IMAGE_FORMATS:
        data = await asyncio.to_thread(Path(path).read_bytes)
        return Cleaned(media_type, await asyncio.to_thread(_clean_image, data, media_type, index))
    if media_type in AV_FORMATS:
        return Cleaned(media_type, await _clean_av(path, media_type, index))
    raise refuse_uncleanable(media_type, index)
