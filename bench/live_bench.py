"""The live relay's bench (`make bench ONLY=live`), run by pytest on the live tests' own parts, all real on
loopback: the synthetic camera (FFmpeg's test pattern, H.264 320×240 at 15 frames a second, served over RTSP by
GStreamer), owners' edge agents (`canvass-edge run`), the relay and registry_api. It prints:

- the time from a window opening to the first video fragment at a viewer (the agent starts FFmpeg for it), and from
  a viewer's click (asking for a viewing) to its first fragment while the camera's feed is already running;
- the relay's CPU per stream and per viewer with 1, 4 and 16 viewers of one camera, and with 4 cameras at once
  (each its own agent and feed), so streams per core;
- the agent's CPU per stream (its process and its FFmpeg).

A fragment is what the browser's MediaSource appends; the first frame is shown once it is decoded (one frame's time
more at most). CPU is read from /proc over a measured span. Not part of `make test`: it prints figures, it passes
no judgement."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import Token
from tests.live.conftest import MakeSite, Site, close_window, investigator, open_window
from tests.support import Server, eventually

SPAN_S = 10.0  # each CPU measurement
ROUNDS = 5  # each latency
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """The CPU seconds (user + system) of a process and its descendants still running."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        pids.extend(int(c) for c in children)
    return total


class Viewer(threading.Thread):
    """One agency viewer: asks the relay for a viewing of the camera and reads its stream until told to stop."""

    def __init__(self, relay: Server, headers: dict[str, str], camera_id: str) -> None:
        super().__init__(daemon=True)
        self.relay, self.headers, self.camera_id = relay, headers, camera_id
        self.clicked = time.perf_counter()
        self.first: float | None = None
        self.bytes = 0
        self.status: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        self.clicked = time.perf_counter()
        r = httpx.post(
            self.relay.url + "/v1/viewings",
            json={"camera_id": self.camera_id},
            headers=self.headers,
            timeout=30,
        )
        self.status = r.status_code
        if r.status_code != 201:
            return
        v = r.json()
        auth = {"Authorization": f"Bearer {v['grant']}"}
        with httpx.stream("GET", self.relay.url + v["stream"], headers=auth, timeout=60) as s:
            self.status = s.status_code
            for chunk in s.iter_raw():
                self.bytes += len(chunk)
                if self.first is None and b"moof" in chunk:
                    self.first = time.perf_counter()
                if self.stop.is_set():
                    return

    def first_s(self) -> float:
        assert eventually(lambda: self.first is not None or (self.status not in (None, 200, 201)), timeout=30)
        assert self.first is not None, f"no video: {self.status}"
        return self.first - self.clicked


def idle(site: Site) -> bool:
    return not site.camera_status().get("streaming")


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f} ms (min {min(values) * 1000:,.0f}, max {max(values) * 1000:,.0f})"


def test_the_live_relay_bench(registry: httpx.Client, site: MakeSite, relay: Server, auth: Token) -> None:
    s = site()
    headers = investigator(auth, s.agency)
    lines = ["", "## Live video (the relay, an edge agent, the synthetic camera; loopback)", ""]

    # A window opening to the first fragment at a viewer: the agent starts FFmpeg and the camera's next keyframe.
    cold: list[float] = []
    for _ in range(ROUNDS):
        assert eventually(lambda: idle(s), timeout=30)
        opened = time.perf_counter()
        window_id = open_window(registry, s)
        v = Viewer(relay, headers, s.camera_id)
        v.start()
        v.first_s()
        assert v.first is not None
        cold.append(v.first - opened)
        v.stop.set()
        close_window(registry, s, window_id)
        v.join(30)
    lines.append(f"- window opened → first fragment at the viewer (camera idle): {ms(cold)}, {ROUNDS} rounds")

    # A viewer's click to its first fragment while the feed runs (another viewer keeps it going).
    window_id = open_window(registry, s)
    keeper = Viewer(relay, headers, s.camera_id)
    keeper.start()
    keeper.first_s()
    warm: list[float] = []
    for _ in range(ROUNDS):
        v = Viewer(relay, headers, s.camera_id)
        v.start()
        warm.append(v.first_s())
        v.stop.set()
        v.join(30)
    lines.append(f"- a viewer's click → first fragment (feed running): {ms(warm)}, {ROUNDS} rounds")

    # The relay's and the agent's CPU with 1, 4 and 16 viewers of the one camera.
    relay_pid, agent_pid = relay.process.pid, s.agent.pid
    lines += [
        "",
        "| viewers of one camera | relay CPU % | relay CPU ms/s per viewer | agent CPU % | video kB/s per viewer |",
    ]
    lines.append("|--:|--:|--:|--:|--:|")
    viewers = [keeper]
    for n in (1, 4, 16):
        while len(viewers) < n:
            v = Viewer(relay, headers, s.camera_id)
            v.start()
            v.first_s()
            viewers.append(v)
        r0, a0, b0, t0 = (
            cpu_s(relay_pid),
            cpu_s(agent_pid),
            sum(v.bytes for v in viewers),
            time.perf_counter(),
        )
        time.sleep(SPAN_S)  # the measured span itself, not a wait for a condition
        r1, a1, b1, t1 = (
            cpu_s(relay_pid),
            cpu_s(agent_pid),
            sum(v.bytes for v in viewers),
            time.perf_counter(),
        )
        span = t1 - t0
        relay_pct, agent_pct = (r1 - r0) / span * 100, (a1 - a0) / span * 100
        lines.append(
            f"| {n} | {relay_pct:.1f} | {(r1 - r0) / span * 1000 / n:.1f} | {agent_pct:.1f} |"
            f" {(b1 - b0) / span / 1000 / n:.1f} |"
        )
    for v in viewers:
        v.stop.set()
    for v in viewers:
        v.join(30)
    close_window(registry, s, window_id)

    # Streams: 4 cameras (each its own agent and feed), one viewer each.
    sites = [s] + [site() for _ in range(3)]
    windows = [(x, open_window(registry, x)) for x in sites]
    viewers = []
    for x in sites:
        v = Viewer(relay, investigator(auth, x.agency), x.camera_id)
        v.start()
        v.first_s()
        viewers.append(v)
    r0, t0 = cpu_s(relay_pid), time.perf_counter()
    a0 = sum(cpu_s(x.agent.pid) for x in sites)
    time.sleep(SPAN_S)  # the measured span
    r1, t1 = cpu_s(relay_pid), time.perf_counter()
    a1 = sum(cpu_s(x.agent.pid) for x in sites)
    per_stream = (r1 - r0) / (t1 - t0) / len(sites)
    lines.append("")
    lines.append(
        f"- {len(sites)} cameras at once, one viewer each: relay {per_stream * 1000:.1f} ms of CPU per second per"
        f" stream → about {1 / per_stream:,.0f} such streams per core (this camera's bitrate); agents"
        f" {(a1 - a0) / (t1 - t0) / len(sites) * 1000:.1f} ms/s per stream"
    )
    for v in viewers:
        v.stop.set()
    for v in viewers:
        v.join(30)
    for x, w in windows:
        close_window(registry, x, w)
    lines.append(f"- machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print("\n".join(lines))
