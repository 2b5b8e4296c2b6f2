"""The agent's configuration (a TOML file the owner writes) and its credential (a file only its user may read).

registry_url = "https://canvass.example.org/registry"   # registry_api
relay_url = "wss://canvass.example.org/relay/v1/edge-agents/connect"
credential_file = "/var/lib/canvass-edge/credential.json"   # default: next to this file
status_port = 8765            # the local status and trigger endpoint, on 127.0.0.1 only
ffmpeg = "ffmpeg"

[trigger]                     # what the local trigger opens
agencies = ["milwaukee-pd"]   # default: every agency the registration is shared with
duration_s = 1800
reason = "emergency"

[[cameras]]
id = "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"   # the camera's id in Canvass
rtsp_url = "rtsp://192.168.1.20:554/stream1"  # never leaves this box
username = "viewer"
password = "..."                               # never leaves this box
"""

from __future__ import annotations

import json
import os
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit


@dataclass(frozen=True)
class Camera:
    id: uuid.UUID
    rtsp_url: str
    username: str | None = None
    password: str | None = None

    def source(self) -> str:
        """The URL FFmpeg reads: the local address with the credentials in it (given to FFmpeg alone)."""
        if not self.username:
            return self.rtsp_url
        parts = urlsplit(self.rtsp_url)
        auth = quote(self.username, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Trigger:
    agencies: list[str] | None = None
    duration_s: int = 1800
    reason: str = "emergency"


@dataclass(frozen=True)
class Config:
    registry_url: str
    relay_url: str
    credential_file: Path
    cameras: dict[uuid.UUID, Camera]
    status_port: int = 8765
    ffmpeg: str = "ffmpeg"
    trigger: Trigger = field(default_factory=Trigger)


class ConfigError(ValueError):
    pass


def load(path: Path) -> Config:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
        cameras = {}
        for c in raw.get("cameras", []):
            cam = Camera(uuid.UUID(str(c["id"])), str(c["rtsp_url"]), c.get("username"), c.get("password"))
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cam.rtsp_url):
                # FFmpeg is given the URL as a line of a script (agent.py): a line break would end it.
                raise ValueError(f"camera {cam.id}: a control character in rtsp_url")
            cameras[cam.id] = cam
        if any(c.password for c in cameras.values()) and path.stat().st_mode & 0o007:
            raise ValueError(
                "it holds camera passwords and every user of this machine can read it: run `chmod 600 "
                f"{path}` (or chmod o-rwx, for a group of the agent's user)"
            )
        registry_url = _encrypted(str(raw["registry_url"]), "registry_url", "https")
        relay_url = _encrypted(str(raw["relay_url"]), "relay_url", "wss")
        t = raw.get("trigger", {})
        return Config(
            registry_url=registry_url.rstrip("/"),
            relay_url=relay_url,
            credential_file=Path(raw.get("credential_file") or path.with_name("credential.json")),
            cameras=cameras,
            status_port=int(raw.get("status_port", 8765)),
            ffmpeg=str(raw.get("ffmpeg", "ffmpeg")),
            trigger=Trigger(
                agencies=t.get("agencies"),
                duration_s=int(t.get("duration_s", 1800)),
                reason=str(t.get("reason", "emergency")),
            ),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _encrypted(url: str, name: str, secure: str) -> str:
    """`url`, which must be encrypted (`secure`: https or wss) unless it stays on this machine: the agent's
    credential and the cameras' video travel over it."""
    parts = urlsplit(url)
    plain = {"https": "http", "wss": "ws"}[secure]
    if parts.scheme == secure and parts.hostname:
        return url
    if parts.scheme == plain and parts.hostname in LOOPBACK:
        return url
    raise ValueError(
        f"{name} must be a {secure}:// URL (the agent's credential and the video travel over it): {url!r}"
    )


def save_credential(path: Path, body: dict[str, Any]) -> None:
    """Written readable by this user alone (0600) from the first byte, replacing any earlier one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(body, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_credential(path: Path) -> str:
    try:
        return str(json.loads(path.read_text())["credential"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"no agent credential in {path}: run `canvass-edge enrol` first") from exc
