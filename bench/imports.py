"""Bulk import: one seeded GeoJSON FeatureCollection per size, loaded by GDAL's ogr2ogr into PostGIS (the anchor)
and, once registry_api has its import endpoint, by Canvass itself — features/s and peak memory of each.

Both load into a database of their own (`canvass_bench_import`, migrated afresh each run), never into the query
data set. ogr2ogr runs with its defaults for PostgreSQL (COPY, a GiST index built at the end) and `-gt 65536`,
GDAL's advice for bulk loads; its peak memory is read by `/usr/bin/time -v`. registry_api's import is discovered
from its OpenAPI (a POST operation whose path says "import"), the file is streamed to it with an integrator's
token, and its job is followed to the end; the server's peak memory is its VmHWM.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from bench.data import OWNER_KINDS, OWNER_WEIGHTS, REGIONS, generate
from bench.servers import uvicorn
from bench.settings import ROOT, SEED, Bench, say

IMPORT_SLUG = "bench-import"
TIME_TOOL = Path("/usr/bin/time").exists()  # GNU time: reports the peak memory of ogr2ogr


@dataclass
class ImportResult:
    tool: str
    features: int
    seconds: float = 0.0
    peak_mb: float | None = None
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.features / self.seconds if self.seconds else 0.0


FILE_VERSION = "2"


def _properties(n: int, i: int, kind: str, rng_vals: tuple[int, int, float, str, int, str, str]) -> str:
    """One feature's properties: an integrator's row for one registration with one camera (the flat form
    registry_api's import reads). Ids are unique across files, so every import creates all its registrations."""
    direction, fov, range_m, placement, retention, recording, live = rng_vals
    props: dict[str, Any] = {
        "external_id": f"bench-{n}-{i:07d}",
        "owner_kind": kind,
        "business_name": f"Business {i}" if kind == "business" else None,
        "contact_email": f"owner{i}@import.example.org",
        "direction_deg": direction,
        "fov_deg": fov,
        "range_m": range_m,
        "placement": placement,
        "retention_days": retention,
        "recording": recording,
        "live_mode": live,
    }
    return json.dumps(props, separators=(",", ":"))


def ensure_file(bench: Bench, n: int) -> Path:
    """The GeoJSON file of `n` features (generated once, deterministic)."""
    path = bench.data_dir / f"import-{n}.geojson"
    marker = path.with_suffix(".ok")
    if path.exists() and marker.exists() and marker.read_text() == f"{FILE_VERSION} {n}":
        return path
    t0 = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = generate(REGIONS, n, seed=SEED + 1)
    rng = np.random.default_rng([SEED, 11, n])
    kinds = rng.choice(len(OWNER_KINDS), size=n, p=OWNER_WEIGHTS).tolist()
    cols = (
        rng.integers(0, 360, n).tolist(),
        rng.choice([60, 90, 110, 180, 360], n).tolist(),
        rng.choice([15.0, 25.0, 40.0, 60.0], n).tolist(),
        rng.choice(["outdoor", "outdoor", "indoor"], n).tolist(),
        rng.choice([3, 7, 14, 30, 60], n).tolist(),
        rng.choice(["continuous", "motion"], n).tolist(),
        rng.choice(["never", "never", "on_alert", "emergency"], n).tolist(),
    )
    lon, lat = gen.cam_lon.tolist(), gen.cam_lat.tolist()
    with path.open("w") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        chunk: list[str] = []
        for i in range(n):
            vals = tuple(c[i] for c in cols)
            chunk.append(
                f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon[i]:.7f},{lat[i]:.7f}]}},'
                f'"properties":{_properties(n, i, OWNER_KINDS[kinds[i]], vals)}}}'  # type: ignore[arg-type]
            )
            if len(chunk) == 10_000:
                f.write(",\n".join(chunk))
                chunk = []
                if i + 1 < n:
                    f.write(",\n")
        if chunk:
            f.write(",\n".join(chunk))
        f.write("\n]}\n")
    marker.write_text(f"{FILE_VERSION} {n}")
    say(f"import: wrote {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t0:.1f} s")
    return path


def _pg_conninfo(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    u = urlsplit(url)
    parts = {
        "host": u.hostname or "127.0.0.1",
        "port": str(u.port or 5432),
        "dbname": u.path.lstrip("/"),
        "user": unquote(u.username or ""),
        "password": unquote(u.password or ""),
    }
    return "PG:" + " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


async def _count(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 - our own table name
    finally:
        await conn.close()


async def ogr2ogr(bench: Bench, path: Path, n: int, limit_s: float) -> ImportResult:
    result = ImportResult("GDAL ogr2ogr", n)
    table = f"ogr_cameras_{n}"
    argv = [
        "ogr2ogr",
        "-f",
        "PostgreSQL",
        _pg_conninfo(bench.owner(bench.import_db_name)),
        str(path),
        "-nln",
        table,
        "-overwrite",
        "-gt",
        "65536",
        "-lco",
        "GEOMETRY_NAME=geom",
    ]
    timed = ["/usr/bin/time", "-v", *argv] if TIME_TOOL else argv
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *timed, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        result.note = f"stopped after {limit_s:.0f} s"
        return result
    result.seconds = time.monotonic() - t0
    text = err.decode(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        result.peak_mb = int(m.group(1)) / 1024
    if proc.returncode != 0:
        result.note = f"ogr2ogr failed: {text.strip()[-300:]}"
        result.seconds = 0.0
        return result
    loaded = await _count(bench.owner(bench.import_db_name), f"public.{table}")
    if loaded != n:
        result.note = f"loaded {loaded:,} of {n:,} features"
    return result


# -------------------------------------------------------------------------------------------- registry_api's


def registry_import_route() -> tuple[str, dict[str, Any]] | str:
    """registry_api's bulk-import operation (path, operation), or why there is none."""
    try:
        from services.registry_api.main import app
    except Exception as exc:  # registry_api is being written by others; its import may fail for a while
        return f"not available (registry_api does not load: {type(exc).__name__}: {exc})"
    doc = app.openapi()
    for path, item in sorted(doc.get("paths", {}).items()):
        op = item.get("post")
        if op is not None and "import" in path and "{" not in path:
            return path, op
    return "not available (no import endpoint in registry_api's OpenAPI yet)"


async def prepare_import_database(bench: Bench) -> None:
    from bench.data import create_migrated

    await create_migrated(bench, bench.import_db_name)
    await add_import_agency(bench, bench.import_db_name)


async def add_import_agency(bench: Bench, db_name: str) -> None:
    """The importing agency's program (its jurisdiction every file's features fall in) in database `db_name`."""
    conn = await asyncpg.connect(bench.owner(db_name))
    try:
        await conn.execute(
            "INSERT INTO registry.agencies (slug, name, jurisdiction, requires_approval)"
            " VALUES ($1, 'Bench Import Agency',"
            " ST_Multi(ST_MakeEnvelope(-125, 24, -66, 50, 4326)), false)",
            IMPORT_SLUG,
        )
    finally:
        await conn.close()


async def drop_import_database(bench: Bench) -> None:
    """The loaded copies are only measured, never read again: give the disk back."""
    conn = await asyncpg.connect(bench.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{bench.import_db_name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _file_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """The file in 1 MiB chunks: the upload streams, the bench never holds the file in memory."""
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


_DONE = {"succeeded", "completed", "complete", "done", "finished", "failed", "error", "rejected", "cancelled"}


async def registry_import(
    bench: Bench,
    route: tuple[str, dict[str, Any]],
    path: Path,
    n: int,
    limit_s: float,
    *,
    db_name: str | None = None,
) -> ImportResult:
    """registry_api's import of the file at `path` into `db_name` (the import database by default)."""
    from shared.auth import mint_token

    db_name = db_name or bench.import_db_name
    result = ImportResult("Canvass registry_api", n)
    api_path, _ = route
    env = {
        "CANVASS_ENV": "development",
        "DATABASE_URL": bench.app(db_name),
        "CANVASS_LOG_LEVEL": "WARNING",
    }
    headers = {
        "Authorization": "Bearer " + mint_token("integrator", IMPORT_SLUG, sub="bench-integrator"),
        "Content-Type": "application/geo+json",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    with uvicorn(
        "registry_api", Path(ROOT / ".venv/bin/python"), "services.registry_api.main:app", env, "/readyz"
    ) as srv:
        base_rss = srv.rss_mb()
        t0 = time.monotonic()
        deadline = t0 + limit_s
        async with httpx.AsyncClient(base_url=srv.url, timeout=httpx.Timeout(limit_s)) as client:
            r = await client.post(api_path, content=_file_chunks(path), headers=headers)
            if r.status_code not in (200, 201, 202):
                result.note = f"HTTP {r.status_code}: {r.text[:200]}"
                return result
            job: dict[str, Any] = r.json() if r.content else {}
            location = r.headers.get("Location") or r.headers.get("Content-Location")
            while r.status_code == 202 or str(job.get("status", "")).lower() not in _DONE | {""}:
                if not location or time.monotonic() > deadline:
                    result.note = "job did not finish in time" if location else "202 without a Location"
                    return result
                await asyncio.sleep(0.25)
                r = await client.get(location, headers={"Authorization": headers["Authorization"]})
                job = r.json()
                if str(job.get("status", "")).lower() in _DONE:
                    break
        result.seconds = time.monotonic() - t0
        result.peak_mb = srv.peak_rss_mb()
        if base_rss is not None and result.peak_mb is not None:
            result.note = f"server RSS {base_rss:.0f} MB at start"
        status = str(job.get("status", "")).lower()
        if status in {"failed", "error", "rejected", "cancelled"}:
            result.note = f"job {status}: {json.dumps(job)[:200]}"
            result.seconds = 0.0
        else:
            written = await _count(
                bench.owner(db_name),
                f"registry.registrations WHERE external_id LIKE 'bench-{n}-%'",
            )
            if written != n:
                result.note = f"{written:,} of {n:,} registrations written; job: {json.dumps(job)[:300]}"
    return result
