"""How much of the CPU other work took while a phase was measured: the machine's busy time (/proc/stat) less the
bench's own (this process and the children it waited for, the servers it started, and the PostgreSQL backends
serving its databases). Two cores are shared with whatever else runs here, so every phase reports this beside its
figures."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def _own_jiffies(server_pids: set[int], databases: tuple[str, ...]) -> int:
    total = 0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if pid == me:
                # utime, stime, and the children this process waited for (wrk runs, stopped servers)
                total += sum(int(v) for v in fields[11:15])
                continue
            if pid in server_pids or int(fields[1]) in server_pids:
                total += int(fields[11]) + int(fields[12])
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if cmd.startswith("postgres: ") and any(f" {db} " in cmd for db in databases):
                total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError):
            continue
    return total


def cpu_jiffies(server_pids: set[int], databases: tuple[str, ...]) -> tuple[int, int]:
    """CPU time (user + system, in clock ticks) of the processes `server_pids` (this process when empty: the raw
    driver runs here) and of the PostgreSQL backends serving `databases`: the cost of a request in each, which
    other work on the machine moves far less than requests/s."""
    server = database = 0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            # A server's worker processes (uvicorn --workers N) count as the server.
            if pid in server_pids or int(fields[1]) in server_pids or (not server_pids and pid == me):
                server += int(fields[11]) + int(fields[12])
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if cmd.startswith("postgres: ") and any(f" {db} " in cmd for db in databases):
                database += int(fields[11]) + int(fields[12])
        except (OSError, ValueError):
            continue
    return server, database


def cpu_per_request(
    start: tuple[int, int], end: tuple[int, int], requests: int
) -> tuple[float, float] | None:
    """(server, database) CPU µs per request between two `cpu_jiffies` readings."""
    if requests <= 0:
        return None
    return tuple((b - a) * 1e6 / HZ / requests for a, b in zip(start, end, strict=True))  # type: ignore[return-value]


@dataclass
class Snapshot:
    at: float
    busy: int
    own: int


def snapshot(server_pids: set[int], databases: tuple[str, ...]) -> Snapshot:
    return Snapshot(time.monotonic(), _busy_jiffies(), _own_jiffies(server_pids, databases))


def other_share(start: Snapshot, end: Snapshot) -> float:
    """The share of all cores that other work used between two snapshots (0 = the machine was ours)."""
    wall = end.at - start.at
    if wall <= 0:
        return 0.0
    other = (end.busy - start.busy) - (end.own - start.own)
    return max(0.0, other / HZ / (wall * (os.cpu_count() or 1)))
