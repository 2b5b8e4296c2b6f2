"""The servers the bench starts (geo_query, registry_api, tipg): one uvicorn worker each, on a free loopback port,
logging to `.local/bench/logs/`. Each is a context manager, so it is stopped however the bench ends."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.settings import LOGS, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float | None:
        """The process's peak resident memory so far (VmHWM), in MB."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text()[-chars:]
        except OSError:
            return ""


@contextmanager
def uvicorn(
    name: str,
    python: Path,
    app: str,
    env: dict[str, str],
    ready_path: str,
    *,
    cwd: Path = ROOT,
    timeout: float = 60.0,
    workers: int = 1,
    port: int | None = None,
) -> Iterator[Server]:
    port = port or free_port()
    log = LOGS / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv: our own interpreter and app
            [
                str(python),
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=cwd,
            env={**{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, port, proc, log)
    try:
        _wait_ready(server, ready_path, timeout)
        yield server
    finally:
        server.stop()


def _wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start-up:\n{server.tail()}")
        try:
            r = httpx.get(server.url + path, timeout=2)
            if r.status_code == 200:
                return
            last = f"{path}: HTTP {r.status_code} {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = f"{path}: {exc}"
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready in {timeout:.0f} s ({last}):\n{server.tail()}")
