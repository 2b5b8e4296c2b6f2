"""community_api's test world: an agency made over registry_api's contract, and real media files made by the
tests — a JPEG with GPS, camera and XMP metadata, an MP4 with container tags — whose metadata must not survive."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import ExifTags, Image

from tests.conftest import Suite, Token
from tests.contract.conftest import create_agency
from tests.support import Server, start_server

BOX = (-87.98, 42.98, -87.86, 43.10)
# What the fixtures' metadata says, so a test can look for it in what was stored.
CAMERA_MAKE = "SentinelCam"
GPS_TEXT = "+43.0389-087.9065/"
VIDEO_TITLE = "SentinelTitle"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="SentinelCreator"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


@dataclass
class Agency:
    slug: str
    auth: Token

    def as_(self, role: str, sub: str | None = None) -> dict[str, str]:
        return self.auth(role, self.slug, sub=sub or f"{role}-{self.slug}")


@pytest.fixture
def agency(registry: httpx.Client, auth: Token) -> Agency:
    slug = "c-" + uuid.uuid4().hex[:10]
    create_agency(registry, auth, slug, BOX)
    return Agency(slug, auth)


def jpeg_with_gps(width: int = 64, height: int = 48) -> bytes:
    """A real JPEG whose EXIF names a camera, a GPS position and an orientation (rotate 90°), with an XMP packet."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA_MAKE
    exif[ExifTags.Base.Model] = "Model 7"
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (43.0, 2.0, 20.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (87.0, 54.0, 23.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, xmp=XMP)
    data = out.getvalue()
    assert CAMERA_MAKE.encode() in data and b"SentinelCreator" in data  # the fixture carries what must go
    return data


def mp4_with_metadata(tmp: Path) -> bytes:
    """A real one-second MP4 (video and audio) whose container says a title, a place and a comment."""
    path = tmp / f"clip-{uuid.uuid4().hex[:6]}.mp4"
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-loglevel", "error",
            "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5",
            "-f", "lavfi", "-i", "sine=duration=1",
            "-c:v", "mpeg4", "-c:a", "aac", "-shortest",
            "-metadata", f"title={VIDEO_TITLE}", "-metadata", f"location={GPS_TEXT}",
            "-metadata", "comment=SentinelComment",
            str(path),
        ],
        check=True,
    )  # fmt: skip
    tags = container_tags(path)
    assert tags.get("title") == VIDEO_TITLE and "location" in tags, tags  # the fixture carries what must go
    data = path.read_bytes()
    assert b"loci" in data  # the place, as the ISO location box
    return data


def container_tags(path: Path) -> dict[str, str]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", str(path)],
        check=True,
        capture_output=True,
    )
    return dict(json.loads(probe.stdout)["format"].get("tags", {}))


def mail_text(message: Message) -> str:
    """A plain-text mail's body."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def send_tip(
    community: httpx.Client,
    agency: str,
    text: str = "A van parks behind the school every night at 2am.",
    *,
    files: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    return community.post(
        "/v1/tips", files=form({"agency": agency, "text": text, **fields}, files), headers=headers
    )


def form(fields: dict[str, str], files: list[tuple[str, bytes, str]] = ()) -> list[tuple[str, Any]]:  # type: ignore[assignment]
    """A multipart form (always multipart, even without files): text fields, then files under `media`."""
    return [(k, (None, v)) for k, v in fields.items()] + [("media", f) for f in files]


@pytest.fixture
def own_instance(suite: Suite) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start a community_api of the test's own (with its own settings, e.g. a low rate limit or verbose logs)."""
    started: list[Server] = []

    def _start(**env: str) -> Server:
        server = start_server("community_api", dict(suite.env, **env))
        started.append(server)
        return server

    yield _start
    for s in started:
        s.stop()
