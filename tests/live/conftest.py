"""Fixtures of the live-video tests: a synthetic camera (FFmpeg's test pattern, H.264, served over RTSP behind a
password by GStreamer's RTSP server), the relay (an instance per test, so one may restart it), and an owner's site:
a registration shared with an agency, its edge agent enrolled with the `canvass-edge` command and running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Suite, Token
from tests.registry.conftest import Agency, NewAgency, Register, new_agency, owner, register
from tests.support import LOG_DIR, ROOT, Server, eventually, free_port, start_server

__all__ = ["new_agency", "register"]  # the registry tests' fixtures, used here too

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-gi and GStreamer's RTSP server
FFMPEG = "/usr/bin/ffmpeg"
# FFmpeg's test pattern in H.264 (constrained baseline), at 15 frames a second with a keyframe each second, in
# real time: what a camera set for low latency sends. Each picture is coded as three slices, as x264's sliced
# threads (the zerolatency tune) and many IP cameras' encoders make them, whatever this machine's core count.
FRAME_RATE, SLICES = 15, 3
TEST_PATTERN = [
    *(FFMPEG, "-nostdin", "-loglevel", "error", "-re"),
    *("-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FRAME_RATE}"),
    *("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FRAME_RATE)),
    *("-threads", "1", "-slices", str(SLICES), "-pix_fmt", "yuv420p"),
]


@dataclass(frozen=True)
class Camera:
    url: str  # without the credentials, as the owner writes it in the agent's configuration
    username: str
    password: str
    path: str


@pytest.fixture(scope="session")
def camera() -> Iterator[Camera]:
    """The synthetic camera: FFmpeg encodes its test pattern (libx264, a keyframe a second) and sends it over RTP
    to GStreamer's RTSP server, which serves it to whoever knows the password."""
    rtsp_port, rtp_port = free_port(), free_port()
    path = f"/cam-{uuid.uuid4().hex[:12]}"
    cam = Camera(f"rtsp://127.0.0.1:{rtsp_port}{path}", "viewer", f"pw-{uuid.uuid4().hex}", path)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [SYSTEM_PYTHON, str(ROOT / "scripts/rtsp_camera.py"), str(rtsp_port), str(rtp_port), path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(LOG_DIR / f"rtsp-camera-{os.getpid()}.log").open("wb"),
    )
    assert server.stdin is not None
    # On its standard input, not its command line: no process on this machine may carry the password.
    server.stdin.write(f"{cam.username}\n{cam.password}\n".encode())
    server.stdin.close()
    encoder = subprocess.Popen(
        [*TEST_PATTERN, "-f", "rtp", f"rtp://127.0.0.1:{rtp_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"ready", "the RTSP server did not start"
        yield cam
    finally:
        for p in (encoder, server):
            p.terminate()
            p.wait(10)


def relay_env(suite: Suite) -> dict[str, str]:
    """The relay's environment in these tests: one process (its viewings live in memory); the agent's credential
    asked about every half second (not ten), so a revocation is seen within a test; grants last 5 seconds (not
    30), so an expired one is seen soon."""
    return dict(
        suite.env,
        CANVASS_WORKERS="1",
        CANVASS_LOG_LEVEL="INFO",
        CANVASS_RELAY_AGENT_RECHECK_S="0.5",
        CANVASS_RELAY_GRANT_TTL_S="5",
    )


@pytest.fixture
def relay(suite: Suite) -> Iterator[Server]:
    """A relay of this test's own, knowing registry_api."""
    server = start_server("live_relay", relay_env(suite))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Site:
    """An owner's site: the registration, its credential, the camera's id, and the running agent."""

    agency: Agency
    registration_id: str
    credential: str
    camera_id: str
    config_path: Path
    status_url: str
    agent: subprocess.Popen[bytes]
    agent_log: Path

    def status(self) -> dict[str, Any]:
        try:
            r = httpx.get(self.status_url, timeout=2)
        except httpx.HTTPError:
            return {}
        out: dict[str, Any] = r.json()
        return out

    def camera_status(self) -> dict[str, Any]:
        return dict(self.status().get("cameras", {}).get(self.camera_id, {}))

    def edge(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "canvass_edge", *args, "--config", str(self.config_path)],
            env=edge_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


EDGE = ROOT / "edge"
sys.path.append(str(EDGE))  # the agent's package, read here by its own tests as the agent runs it


def edge_env() -> dict[str, str]:
    """The agent's package, from the repository's edge/ (installed elsewhere with `pip install ./edge`)."""
    return dict(os.environ, PYTHONPATH=str(EDGE))


MakeSite = Callable[..., Site]


@pytest.fixture
def site(
    registry: httpx.Client,
    new_agency: NewAgency,
    register: Register,
    relay: Server,
    camera: Camera,
    tmp_path: Path,
) -> Iterator[MakeSite]:
    agents: list[subprocess.Popen[bytes]] = []

    def _site(agency: Agency | None = None, **trigger: Any) -> Site:
        agency = agency or new_agency()
        reg, cred = register(
            agency, share_with=[agency.slug], cameras=[{"label": "door", "live_mode": "on_alert"}]
        )
        rid = reg["id"]
        camera_id = str(reg["properties"]["cameras"][0]["id"])
        code = registry.post(f"/v1/registrations/{rid}/edge-agents", headers=owner(cred)).json()["code"]
        status_port = free_port()
        config = tmp_path / f"edge-{rid}.toml"
        trigger_toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in trigger.items())
        config.write_text(
            f'registry_url = "{registry.base_url}"\n'
            f'relay_url = "ws://127.0.0.1:{relay.port}/v1/edge-agents/connect"\n'
            f'credential_file = "{tmp_path / ("credential-" + rid + ".json")}"\n'
            f"status_port = {status_port}\n"
            f'ffmpeg = "{FFMPEG}"\n'
            f"[trigger]\n{trigger_toml}\n"
            f'[[cameras]]\nid = "{camera_id}"\nrtsp_url = "{camera.url}"\n'
            f'username = "{camera.username}"\npassword = "{camera.password}"\n'
        )
        config.chmod(0o600)  # it holds the camera's password: the agent refuses a file every user can read
        enrolled = subprocess.run(
            [sys.executable, "-m", "canvass_edge", "enrol", "--code", code, "--config", str(config)],
            env=edge_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert enrolled.returncode == 0, enrolled.stderr
        log_path = LOG_DIR / f"edge-{os.getpid()}-{rid}.log"
        agent = subprocess.Popen(
            [sys.executable, "-m", "canvass_edge", "run", "--config", str(config)],
            env=edge_env(),
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
        )
        agents.append(agent)
        s = Site(
            agency, rid, cred, camera_id, config, f"http://127.0.0.1:{status_port}/status", agent, log_path
        )
        assert eventually(lambda: s.status().get("connected"), timeout=30), log_path.read_text()[-2000:]
        return s

    yield _site
    for a in agents:
        a.terminate()
        a.wait(10)


def open_window(registry: httpx.Client, site: Site, **body: Any) -> str:
    r = registry.post(
        f"/v1/registrations/{site.registration_id}/live-windows",
        json={"reason": "alert", "duration_s": 600, **body},
        headers=owner(site.credential),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def close_window(registry: httpx.Client, site: Site, window_id: str) -> None:
    r = registry.post(
        f"/v1/registrations/{site.registration_id}/live-windows/{window_id}/close",
        headers=owner(site.credential),
    )
    assert r.status_code == 200, r.text


def investigator(auth: Token, agency: Agency, sub: str = "inv-1") -> dict[str, str]:
    return auth("investigator", agency.slug, sub=sub)
