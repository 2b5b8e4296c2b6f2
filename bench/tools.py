"""The bench's own tools, installed outside the project's locked environment, idempotently and saying so:
Debian's `wrk` (HTTP load) and `gdal-bin` (ogr2ogr, the bulk-import anchor) with apt-get when missing, and tipg
(the peer server) in its own virtualenv under `.local/bench/tipg-venv`, pinned."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.settings import ROOT, WORK, say

TIPG_REQUIREMENTS = ("tipg==1.6.1", "uvicorn[standard]==0.54.0")
TIPG_VENV = WORK / "tipg-venv"


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{(proc.stderr or proc.stdout)[-2000:]}")


def ensure_debian_tools() -> None:
    """wrk and ogr2ogr, installed with apt-get when missing (scripts/ensure_debian.sh)."""
    if shutil.which("wrk") and shutil.which("ogr2ogr"):
        return
    say("tools: installing what is missing of wrk and gdal-bin with apt-get (once)")
    script = str(ROOT / "scripts" / "ensure_debian.sh")
    proc = subprocess.run(  # noqa: S603 - fixed argv: our own script
        ["bash", script, "wrk=wrk", "ogr2ogr=gdal-bin"],  # noqa: S607 - bash from PATH, as make runs it
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"bench: {(proc.stderr or proc.stdout).strip()[-2000:]}")


def ensure_tipg() -> Path:
    """The tipg virtualenv's Python, installing it on first use."""
    python = TIPG_VENV / "bin" / "python"
    marker = TIPG_VENV / ".bench-requirements"
    wanted = "\n".join(TIPG_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    say(
        f"tools: installing {' '.join(TIPG_REQUIREMENTS)} into {TIPG_VENV.relative_to(WORK.parent.parent)} (once)"
    )
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(TIPG_VENV)], "python -m venv")
    _run([str(python), "-m", "pip", "install", "-q", *TIPG_REQUIREMENTS], "pip install tipg")
    marker.write_text(wanted)
    return python


def ensure_bench_group() -> None:
    """The project's `bench` dependency group (pygeoapi and its PostgreSQL driver) in .venv, synced from uv.lock on
    first use; without uv the bench says pygeoapi is not installed and measures the rest."""
    if (ROOT / ".venv" / "bin" / "pygeoapi").exists():
        return
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        say("tools: uv not found: pygeoapi (the bench group) is not installed")
        return
    say("tools: installing the bench dependency group (pygeoapi) from uv.lock (once)")
    _run([uv, "sync", "--frozen", "--inexact", "--group", "bench"], "uv sync --group bench")


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, argv in (("GDAL", ["ogr2ogr", "--version"]), ("wrk", ["wrk", "-v"])):
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)  # noqa: S603
            out[name] = (proc.stdout or proc.stderr).strip().splitlines()[0].split(" Copyright")[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[name] = "?"
    return out


def tipg_version() -> str:
    """tipg's version, from its own virtualenv's metadata."""
    for dist in TIPG_VENV.glob("lib/python*/site-packages/tipg-*.dist-info"):
        return dist.name.removeprefix("tipg-").removesuffix(".dist-info")
    return "?"
