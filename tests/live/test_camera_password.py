"""The camera's password stays in the agent's configuration on the owner's box: while the agent streams a camera
through FFmpeg, no process of the machine carries the password on its command line (which every local user can
read, `ps` or /proc/PID/cmdline), no file the agent or FFmpeg holds open that has it is readable by another user,
none is left once the stream stops, and the agent's log never names the camera's address."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from canvass_edge.agent import FFMPEG_INPUT, ffconcat
from canvass_edge.config import ConfigError, load

from tests.conftest import Token
from tests.live.conftest import FFMPEG, Camera, MakeSite, close_window, investigator, open_window
from tests.live.test_relay import Watch, viewing
from tests.support import Server, eventually

PROC = Path("/proc")


def command_lines() -> dict[int, bytes]:
    """Every process's command line, as any local user reads it."""
    out = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:  # the process ended meanwhile
                continue
    return out


def children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # the field after the state: the parent's id
                found.append(int(entry.name))
    return found


def files_holding(pid: int, secret: bytes) -> dict[str, int]:
    """The regular files the process holds open whose content has the secret (also once unlinked: read through
    /proc), each with its permission bits and those of its directory (-1 if the directory is gone)."""
    held = {}
    fds = PROC / str(pid) / "fd"
    for fd in os.listdir(fds):
        try:
            if not stat.S_ISREG(os.stat(fds / fd).st_mode):
                continue  # pipes and sockets: no one else can open them
            target = os.readlink(fds / fd).removesuffix(" (deleted)")
            if secret not in (fds / fd).read_bytes():
                continue
        except OSError:
            continue
        mode = stat.S_IMODE(os.stat(fds / fd).st_mode)
        parent = Path(target).parent
        held[target] = mode | (stat.S_IMODE(parent.stat().st_mode) << 9 if parent.exists() else 0)
    return held


def test_while_the_agent_streams_a_camera_no_process_carries_its_password_and_no_other_user_can_read_it(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, camera: Camera
) -> None:
    s = site()
    window_id = open_window(registry, s)
    r = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert r.status_code == 201, r.text
    watch = Watch(relay, r.json())
    assert eventually(lambda: watch.fragments() >= 1, timeout=30), (watch.status, len(watch.data))
    ffmpeg = [p for p in children(s.agent.pid) if (PROC / str(p) / "comm").read_text().strip() == "ffmpeg"]
    assert len(ffmpeg) == 1, ffmpeg  # the agent streams the camera with FFmpeg now

    secret = camera.password.encode()
    carrying = {pid: line.replace(b"\0", b" ") for pid, line in command_lines().items() if secret in line}
    assert carrying == {}
    held = {**files_holding(ffmpeg[0], secret), **files_holding(s.agent.pid, secret)}
    for path, modes in held.items():
        # The file: its user's alone; its directory: no one else may even look up a name in it.
        assert modes & 0o077 == 0 and (modes >> 9) & 0o077 == 0, (path, oct(modes & 0o777), oct(modes >> 9))

    # The stream stops: FFmpeg has ended, and whatever file had the password is gone.
    close_window(registry, s, window_id)
    assert eventually(lambda: not (PROC / str(ffmpeg[0])).exists(), timeout=10)
    watch.stop()
    assert [path for path in held if Path(path).exists()] == []
    log = s.agent_log.read_text()
    assert camera.password not in log and camera.url.split("//", 1)[1] not in log


def test_ffmpeg_reads_a_url_with_quotes_backslashes_spaces_and_hashes_from_the_script_the_agent_writes(
    tmp_path: Path,
) -> None:
    clip = tmp_path / "it's a \\ #clip.mp4"
    subprocess.run(
        [
            *(
                FFMPEG,
                "-nostdin",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=15",
                "-t",
                "1",
            ),
            *("-c:v", "libx264", "-preset", "ultrafast", str(clip)),
        ],
        check=True,
    )
    # The agent's input options, but a local file's protocol instead of the network's.
    options = [o.replace("pipe,tcp,tls", "pipe,file") for o in FFMPEG_INPUT]
    read = subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", *options, "-c", "copy", "-f", "null", "-"],
        input=ffconcat(f"file:{clip}"),
        capture_output=True,
        check=False,
    )
    assert read.returncode == 0, read.stderr


@pytest.mark.parametrize(
    "url", ["rtsp://192.0.2.1/a\nfile 'x'", "rtsp://192.0.2.1/a\rb", "rtsp://192.0.2.1/\u007f"]
)
def test_a_camera_url_with_a_control_character_is_refused_when_the_configuration_is_read(
    tmp_path: Path, url: str
) -> None:
    config = tmp_path / "edge.toml"
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in url)  # TOML's
    config.write_text(
        'registry_url = "http://127.0.0.1"\nrelay_url = "ws://127.0.0.1"\n'
        f'[[cameras]]\nid = "{uuid.uuid4()}"\nrtsp_url = "{escaped}"\n'
    )
    with pytest.raises(ConfigError, match="control character in rtsp_url"):
        load(config)


def test_a_configuration_every_user_can_read_is_refused_when_it_holds_a_camera_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "edge.toml"
    camera = f'[[cameras]]\nid = "{uuid.uuid4()}"\nrtsp_url = "rtsp://192.168.1.20/s"\n'
    config.write_text(
        'registry_url = "http://127.0.0.1"\nrelay_url = "ws://127.0.0.1"\n' + camera + 'password = "p"\n'
    )
    config.chmod(0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {config}"):
        load(config)
    config.chmod(0o640)  # the agent's group may read it
    assert load(config).cameras
    config.chmod(0o644)
    config.write_text('registry_url = "http://127.0.0.1"\nrelay_url = "ws://127.0.0.1"\n' + camera)
    assert load(config).cameras  # no password in it: nothing to hide


@pytest.mark.parametrize(
    ("registry_url", "relay_url", "refused"),
    [
        (
            "http://canvass.example.org/registry",
            "wss://canvass.example.org/relay",
            "registry_url must be a https://",
        ),
        (
            "https://canvass.example.org/registry",
            "ws://canvass.example.org/relay",
            "relay_url must be a wss://",
        ),
        (
            "https://canvass.example.org/registry",
            "ftp://canvass.example.org/relay",
            "relay_url must be a wss://",
        ),
        ("https:///registry", "wss://canvass.example.org/relay", "registry_url must be a https://"),
        ("https://canvass.example.org/registry", "wss://canvass.example.org/relay", None),
        ("http://127.0.0.1:8001", "ws://localhost:8005/relay", None),
        ("http://[::1]:8001", "ws://127.0.0.1:8005/relay", None),
    ],
)
def test_the_agent_speaks_to_canvass_only_over_tls_unless_it_stays_on_this_machine(
    tmp_path: Path, registry_url: str, relay_url: str, refused: str | None
) -> None:
    """The agent's credential and the cameras' video travel over these URLs: plain HTTP or WebSocket is refused
    for any host but this machine's own."""
    config = tmp_path / "edge.toml"
    config.write_text(f'registry_url = "{registry_url}"\nrelay_url = "{relay_url}"\n')
    if refused is None:
        assert load(config).relay_url == relay_url
    else:
        with pytest.raises(ConfigError, match=refused):
            load(config)
