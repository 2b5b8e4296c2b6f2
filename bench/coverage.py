"""The coverage map at scale, on the queries' data set (each layout's agency sees its 1,000,000 cameras; QUICK=1:
100,000): what an answer costs and what keeping the counts costs.

- The answers: the statements `GET /v1/coverage` (public, 1 km and 5 km) and `GET /v1/coverage/agency` (250 m,
  1 km, 5 km, every cell of the jurisdiction) run, as the service runs them, on geo_query's read-only role, p50 and p99 of COVERAGE_READS
  runs each. They read one row per cell of `registry.coverage_counts`, whatever the number of cameras.
- The counts: a recount of the whole agency (what a jurisdiction change runs, and what the load's COPY did in one
  statement), and a camera added one statement at a time with the triggers on and off (the write's extra cost),
  each in a transaction rolled back, so the data set is left as it was.
"""

from __future__ import annotations

import statistics
import time

import asyncpg

from bench.settings import Bench, say

COVERAGE_READS = 30
SINGLE_INSERTS = 300


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
    return f"p50 {statistics.median(s) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def run(bench: Bench) -> list[str]:
    from bench import data
    from services.geo_query.coverage import (
        AGENCY_AREA_SQL,
        MAX_CELLS,
        PUBLIC_SIZES,
        PUBLIC_SQL,
        SIZES,
        agency_cells,
        hexagon_area_m2,
    )

    await data.ensure_loaded(bench)
    lines = [f"coverage map ({bench.cameras_per_layout:,} cameras per agency):"]
    owner = await asyncpg.connect(bench.owner())
    reader = await asyncpg.connect(bench.reader())
    try:
        agencies = await owner.fetch(
            "SELECT a.id, a.slug, (SELECT count(*) FROM registry.cameras c WHERE a.id = ANY(c.visible_to)) AS n"
            " FROM registry.agencies a ORDER BY a.slug"
        )
        for a in agencies:
            lines.append(f"  {a['slug']} ({a['n']:,} cameras):")
            for size in PUBLIC_SIZES:
                samples, body = [], ""
                for _ in range(COVERAGE_READS):
                    t = time.perf_counter()
                    body = (await reader.fetchrow(PUBLIC_SQL, a["slug"], size, None))["cells"]
                    samples.append(time.perf_counter() - t)
                lines.append(f"    public {size} m: {_ms(samples)} ({len(body):,} bytes)")
            for size in SIZES:
                extent = await reader.fetchrow(AGENCY_AREA_SQL, a["id"], size, None)
                if extent["area_m2"] / hexagon_area_m2(size) > MAX_CELLS:
                    lines.append(
                        f"    agency {size} m: more than {MAX_CELLS:,} cells, refused (asks for a bbox)"
                    )
                    continue
                samples = []
                for _ in range(COVERAGE_READS):
                    t = time.perf_counter()
                    body = await agency_cells(reader, a["id"], size, None)
                    samples.append(time.perf_counter() - t)
                lines.append(f"    agency {size} m: {_ms(samples)} ({len(body):,} bytes)")
            tr = owner.transaction()
            await tr.start()
            try:
                t = time.perf_counter()
                await owner.execute("SELECT registry.coverage_recount($1)", a["id"])
                recount = time.perf_counter() - t
            finally:
                await tr.rollback()
            lines.append(f"    recount of the agency (a jurisdiction change): {recount:.1f} s")
        # A camera's write: one INSERT per camera (as a registration writes its few), triggers on and off.
        a = agencies[0]
        reg = await owner.fetchval(
            "SELECT c.registration_id FROM registry.cameras c WHERE $1::uuid = ANY(c.visible_to) LIMIT 1",
            a["id"],
        )
        per: dict[str, float] = {}
        for mode in ("on", "off"):
            tr = owner.transaction()
            await tr.start()
            try:
                if mode == "off":
                    await owner.execute("ALTER TABLE registry.cameras DISABLE TRIGGER USER")
                stmt = await owner.prepare(
                    "INSERT INTO registry.cameras (registration_id, geom, visible_to, owner_kind)"
                    " SELECT registration_id, ST_SetSRID(ST_MakePoint(ST_X(geom) + $2, ST_Y(geom)), 4326),"
                    " visible_to, owner_kind FROM registry.cameras WHERE registration_id = $1 LIMIT 1"
                )
                t = time.perf_counter()
                for i in range(SINGLE_INSERTS):
                    await stmt.fetch(reg, i * 1e-6)
                per[mode] = (time.perf_counter() - t) / SINGLE_INSERTS
            finally:
                await tr.rollback()
        lines.append(
            f"  a camera's INSERT: {per['on'] * 1000:.2f} ms with the coverage triggers,"
            f" {per['off'] * 1000:.2f} ms without (+{(per['on'] - per['off']) * 1000:.2f} ms)"
        )
    finally:
        await owner.close()
        await reader.close()
    for line in lines:
        say(line)
    return lines
