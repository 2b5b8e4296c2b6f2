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


@dataclass(frozen=True)
class CpuReading:
    """CPU time (user + system, clock ticks) of each process of a server (the processes `server_pids` and their
    workers; this process when empty: the raw driver runs here) and of each PostgreSQL backend serving the
    bench's databases, by pid: a cost per request that other work on the machine moves far less than requests/s."""

    server: dict[int, int]
    database: dict[int, int]


def cpu_jiffies(server_pids: set[int], databases: tuple[str, ...]) -> CpuReading:
    server: dict[int, int] = {}
    database: dict[int, int] = {}
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
                server[pid] = int(fields[11]) + int(fields[12])
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if cmd.startswith("postgres: ") and any(f" {db} " in cmd for db in databases):
                database[pid] = int(fields[11]) + int(fields[12])
        except (OSError, ValueError):
            continue
    return CpuReading(server, database)


def _spent(start: dict[int, int], end: dict[int, int]) -> int:
    # A process that ended meanwhile is not counted (its last ticks are lost, never subtracted).
    return sum(v - start.get(pid, 0) for pid, v in end.items())


def cpu_per_request(start: CpuReading, end: CpuReading, requests: int) -> tuple[float, float] | None:
    """(server, database) CPU µs per request between two readings."""
    if requests <= 0:
        return None
    return (
        _spent(start.server, end.server) * 1e6 / HZ / requests,
        _spent(start.database, end.database) * 1e6 / HZ / requests,
    )


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
