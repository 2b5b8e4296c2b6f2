"""A synthetic camera for trying live sharing by hand (`make camera`): FFmpeg's test pattern in H.264, served over
RTSP behind a user name and password by GStreamer's RTSP server (scripts/rtsp_camera.py, run with Debian's
python3), as the live tests use. It prints what to put in the edge agent's configuration; Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-gi and GStreamer's RTSP server
TEST_PATTERN = [
    *("ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=15"),
    *("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p"),
]


def main() -> int:
    port = os.environ.get("CAMERA_PORT", "8554")
    rtp_port = os.environ.get("CAMERA_RTP_PORT", "5004")
    user, password, path = "viewer", os.environ.get("CAMERA_PASSWORD", "demo-camera"), "/demo"
    server = subprocess.Popen(
        [SYSTEM_PYTHON, str(ROOT / "scripts" / "rtsp_camera.py"), port, rtp_port, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(f"{user}\n{password}\n".encode())  # its standard input: a command line is public
    server.stdin.close()
    if server.stdout.readline().strip() != b"ready":
        server.kill()
        return 1
    # FFmpeg prints the RTP session's description on its output: not wanted here.
    encoder = subprocess.Popen(
        [*TEST_PATTERN, "-f", "rtp", f"rtp://127.0.0.1:{rtp_port}"], stdout=subprocess.DEVNULL
    )
    print("A synthetic camera is serving. In the edge agent's configuration:\n")
    print(f'  rtsp_url = "rtsp://127.0.0.1:{port}{path}"\n  username = "{user}"\n  password = "{password}"\n')
    print("Ctrl-C stops it.", flush=True)
    # Both signals held until waited for, so either lets the camera's two processes be stopped below.
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
    for p in (encoder, server):
        p.terminate()
        p.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
