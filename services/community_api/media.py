"""Removing what a tip's media says about who made it, before anything is stored.

Images (JPEG, PNG, WebP) are decoded with Pillow and their pixels alone written to a new file: EXIF (the camera,
its serial number, GPS), XMP, IPTC, comments and text chunks are not carried over. The EXIF orientation is applied
to the pixels first, so the picture still stands the right way up without it.

Video and audio are remuxed by ffmpeg without re-encoding (`-map_metadata -1 -map_chapters -1 -c copy`, bit-exact
muxing so no encoder tag is written), keeping only the video and audio streams: data streams, where phones and
action cameras put GPS tracks, are dropped, and so are attached pictures (a cover or a thumbnail is a photo, copied
as it is, with its EXIF). The demuxer is the one the declared type names (never guessed from the
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
        return await _remux(path, media_type, index)


async def _remux(path: str, media_type: str, index: int) -> bytes:
    demuxer, muxer = AV_FORMATS[media_type]
    fd, out_path = tempfile.mkstemp(prefix="canvass-tip-", suffix=".out")
    os.close(fd)
    try:
        proc = await asyncio.create_subprocess_exec(
            config().ffmpeg_path,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-protocol_whitelist",
            "file",
            "-f",
            demuxer,
            "-i",
            path,
            "-map",
            "0:V?",  # video, but not an attached picture (a cover, a thumbnail: a photo with its own EXIF)
            "-map",
            "0:a?",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-c",
            "copy",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-f",
            muxer,
            "-y",
            out_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            code = await asyncio.wait_for(proc.wait(), config().ffmpeg_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise unreadable(media_type, index) from None
        data = await asyncio.to_thread(Path(out_path).read_bytes)
        if code != 0 or not data:
            raise unreadable(media_type, index)
        return data
    finally:
        os.unlink(out_path)


async def clean(path: str, media_type: str, index: int) -> Cleaned:
    """The file at `path` (as uploaded, declared `media_type`) without its metadata."""
    if media_type in IMAGE_FORMATS:
        data = await asyncio.to_thread(Path(path).read_bytes)
        return Cleaned(media_type, await asyncio.to_thread(_clean_image, data, media_type, index))
    if media_type in AV_FORMATS:
        return Cleaned(media_type, await _clean_av(path, media_type, index))
    raise refuse_uncleanable(media_type, index)
