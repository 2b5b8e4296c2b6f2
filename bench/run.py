"""`make bench [QUICK=1]`: load (or reuse) the data set, measure raw / geo_query / tipg on the same queries and
the bulk import against ogr2ogr, registration writes, print the table and write the results file.

Order of a run: tools (installed once) → data (loaded once per seed, size and migrations) → geo_query's routes
and SQL (from its application, in process) → raw cells → geo_query over HTTP → tipg → imports → registration
writes → report.
Every server is stopped on the way out, whatever happens; every load targets 127.0.0.1 and is bounded in time
(and, for raw, in requests).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
import traceback
import uuid
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from bench.settings import RESULTS_FILE, ROOT, SEED, Bench, from_environment, say

if TYPE_CHECKING:
    from bench.servers import Server


def geo_query_server(bench: Bench) -> AbstractContextManager[Server]:
    """geo_query as the bench measures it: its own process on the bench database, with the bench's workers."""
    from bench.servers import uvicorn

    return uvicorn(
        "geo_query",
        ROOT / ".venv/bin/python",
        "services.geo_query.main:app",
        service_env(bench),
        "/readyz",
        workers=bench.workers,
    )


def service_env(bench: Bench) -> dict[str, str]:
    return {
        "CANVASS_ENV": "development",
        "DATABASE_URL": bench.app(),
        "GEO_QUERY_DATABASE_URL": bench.reader(),
        "CANVASS_LOG_LEVEL": bench.log_level,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 cameras per layout, 2 s cells")
    parser.add_argument(
        "--only",
        choices=("queries", "imports", "registrations", "portal", "community", "audit", "coverage", "tiles"),
        help="measure only the queries (raw, geo_query, tipg), the imports, the registration writes or the portal; the results"
        " file is not written",
    )
    parser.add_argument(
        "--shapes",
        help="comma-separated query shapes to measure (nearest, radius_cad, bbox100, ...); implies a partial run",
    )
    parser.add_argument(
        "--scale",
        type=int,
        help="the cost curve alone: the query shapes, the load and the import at 1 and SCALE million cameras"
        " (many metros), one table",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("CANVASS_WORKERS", "1")),
        help="geo_query's uvicorn workers (1, as `make run` runs it; `make bench CANVASS_WORKERS=2`)",
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="geo_query's CANVASS_LOG_LEVEL (INFO writes the access log)"
    )
    args = parser.parse_args()
    bench = from_environment(args.quick)
    bench.workers = args.workers
    bench.log_level = args.log_level
    bench.only = args.only
    bench.shapes = set(args.shapes.split(",")) if args.shapes else None
    bench.scale = args.scale
    # The services' code is imported in this process (SQL capture, OpenAPI discovery, tokens): point its settings
    # at the bench database before anything reads them.
    os.environ.update(service_env(bench))
    os.environ.pop("AUDIT_DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))

    from bench.tools import ensure_bench_group, ensure_debian_tools, ensure_tipg

    if bench.scale is None and bench.only not in ("community", "coverage", "tiles"):
        # these figures need neither GDAL, tipg nor the peers
        ensure_debian_tools()
        if _peers_needed(bench):
            ensure_tipg()
            ensure_bench_group()
    try:
        asyncio.run(_run(bench))
    except KeyboardInterrupt:
        say("interrupted; servers stopped")
        sys.exit(130)


def _peers_needed(bench: Bench) -> bool:
    """Whether tipg and pygeoapi have a shape to answer in this run (SHAPES=route needs neither)."""
    from bench.queries import SHAPES

    return bench.shapes is None or any(s.vs_tipg for s in SHAPES if s.key in bench.shapes)


async def _run(bench: Bench) -> None:
    from bench import data
    from bench.report import Results, machine, query_table, render

    res = Results(quick=bench.quick)
    res.machine = machine()
    if bench.scale is not None:
        await _scale(bench, res)
        return
    partial = bench.only is not None or bench.shapes is not None
    if bench.only in (None, "queries"):
        gens = await data.ensure_loaded(bench)
        await _describe(bench, res, gens)
        plan = await _geo_plan(bench, res, gens)
        if bench.shapes is not None:
            plan = [p for p in plan if p.shape.key in bench.shapes]
        await _raw(bench, res, plan)
        await _geo_http(bench, res, plan)
        await _tipg(bench, res, plan)
        await _pygeoapi(bench, res, plan)
    if bench.only in (None, "imports"):
        await _imports(bench, res)
    if bench.only in (None, "registrations"):
        await _registrations(bench, res)
    audit_lines: list[str] = []
    if bench.only in (None, "audit"):
        from bench import audit as audit_bench

        audit_lines = await audit_bench.run(bench)
    coverage_lines: list[str] = []
    if bench.only in (None, "coverage"):
        from bench import coverage as coverage_bench

        coverage_lines = await coverage_bench.run(bench)
    if bench.only in (None, "tiles"):
        from bench import tiles as tiles_bench

        res.tile_lines = tiles_bench.lines(await tiles_bench.run(bench), bench)
    portal = workspace = None
    if bench.only in (None, "portal"):
        from bench import portal as portal_bench
        from bench import workspace as workspace_bench

        portal = await portal_bench.run(bench)
        workspace = await workspace_bench.run(bench)
    community = None
    if bench.only in (None, "community"):
        from bench import community as community_bench

        community = await community_bench.run(bench)

    if partial:
        out = bench.data_dir.parent / "results-partial.md"
    else:
        out = RESULTS_FILE if not bench.quick else bench.data_dir.parent / "results-quick.md"
    text = render(res)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print()
    print("\n".join(query_table(res)))
    print()
    from bench.report import import_table, targets

    print("\n".join(import_table(res)))
    print()
    from bench.report import registration_table

    print("\n".join(registration_table(res)))
    print()
    from bench.portal import table as portal_table

    print("\n".join(portal_table(portal)))
    print()
    from bench.workspace import table as workspace_table

    print("\n".join(workspace_table(workspace)))
    print()
    from bench.community import table as community_table

    print("\n".join(community_table(community)))
    print()
    print("\n".join(audit_lines))
    print()
    print("\n".join(coverage_lines))
    print()
    print("\n".join(res.tile_lines))
    print()
    print("\n".join(targets(res)))
    print()
    say(f"done in {bench.elapsed():.0f} s; results written to {out.relative_to(ROOT)}")


# ------------------------------------------------------------------------------------------- the cost curve


async def _scale(bench: Bench, res: Any) -> None:
    """`make bench SCALE=N`: the cost curve alone, printed with the machine and written beside the results."""
    from bench import scale

    load_start = os.getloadavg()
    lines = await scale.run(bench, bench.scale or 1)
    m = res.machine
    head = [
        f"machine: {m['cpu']}, {m['memory']}; {m['date']}; load average {load_start[0]:.2f} at the start,"
        f" {os.getloadavg()[0]:.2f} at the end (cores shared with other work: see each cell's other CPU above)",
        f"command: make bench SCALE={bench.scale}{' QUICK=1' if bench.quick else ''}",
    ]
    out = bench.data_dir.parent / f"results-scale{bench.scale}{'-quick' if bench.quick else ''}.md"
    out.write_text("\n".join([*head, "", *lines]) + "\n")
    print()
    print("\n".join([*head, "", *lines]))
    print()
    say(f"done in {bench.elapsed():.0f} s; the table is written to {out.relative_to(ROOT)}")


# ------------------------------------------------------------------------------------------------- the data


async def _describe(bench: Bench, res: Any, gens: dict[str, Any]) -> None:
    import asyncpg

    from bench import data
    from bench.tools import tipg_version, versions

    conn = await asyncpg.connect(bench.owner())
    try:
        res.machine["postgresql"] = await conn.fetchval("SHOW server_version")
        res.machine["postgis"] = await conn.fetchval("SELECT postgis_lib_version()")
        res.machine["shared_buffers"] = await conn.fetchval("SHOW shared_buffers")
    finally:
        await conn.close()
    res.machine.update(versions())
    res.machine["tipg"] = tipg_version()
    desc = await data.describe(bench)
    res.dataset.update(desc)
    res.dataset.update(
        seed=SEED,
        per_layout=bench.cameras_per_layout,
        metros=len(gens["regions"].jurisdiction),
        queries=bench.queries_per_shape,
        cell_seconds=bench.cell_seconds,
        wrk_seconds=math.ceil(bench.cell_seconds),
        cell_requests=bench.cell_requests,
    )
    conn = await asyncpg.connect(bench.reader())
    try:
        for key, gen in gens.items():
            pts = data.query_points(gen, bench.queries_per_shape)
            counts = sorted(
                [
                    int(
                        await conn.fetchval(
                            "SELECT count(*) FROM registry.cameras c WHERE c.geom && ST_Expand("
                            "ST_SetSRID(ST_MakePoint($1, $2), 4326), 0.01) AND"
                            " ST_DWithin(c.geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, 500)",
                            lon,
                            lat,
                        )
                    )
                    for lon, lat in pts[:50]
                ]
            )
            res.dataset[f"within_{key}"] = f"{sum(counts) / len(counts):,.0f} / {counts[len(counts) // 2]:,}"
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------- geo_query's routes, SQL


class Planned:
    """One (layout, shape) of the plan: its queries, geo_query's requests and route (if any), the raw SQL."""

    def __init__(self, layout: Any, shape: Any, queries: list[Any], agency_id: uuid.UUID) -> None:
        self.layout = layout
        self.shape = shape
        self.queries = queries
        self.agency_id = agency_id
        self.route: Any = None
        self.requests: list[Any] = []
        self.statements: list[list[Any]] = []
        self.origin = ""


async def _geo_plan(bench: Bench, res: Any, gens: dict[str, Any]) -> list[Planned]:
    import asyncpg

    from bench import data
    from bench.http import Route, geo_routes
    from bench.queries import PLAN, SHAPES, queries
    from bench.raw import geo_sql
    from shared.auth import mint_token

    conn = await asyncpg.connect(bench.owner())
    try:
        agencies = {r["slug"]: r["id"] for r in await conn.fetch("SELECT slug, id FROM registry.agencies")}
    finally:
        await conn.close()
    plan = [
        Planned(
            layout,
            shape,
            queries(data.query_points(gens[layout.key], bench.queries_per_shape)),
            agencies[layout.slug],
        )
        for layout, shape in PLAN
    ]
    t0 = time.monotonic()
    try:
        from bench.capture import GeoQueryInProcess

        app: Any = GeoQueryInProcess()
    except Exception as exc:  # geo_query is being written; a broken import must not stop the bench
        app = None
        reason = f"not available (geo_query does not load: {type(exc).__name__}: {exc})"
        for p in plan:
            res.unavailable[("geo_query", p.layout.key, p.shape.key)] = reason
    if app is not None:
        async with app:
            routes = geo_routes(await app.openapi(), SHAPES)
            for p in plan:
                route = routes[p.shape.key]
                if not isinstance(route, Route):
                    res.unavailable[("geo_query", p.layout.key, p.shape.key)] = route
                    say(f"geo_query: {p.shape.title}: {route}")
                    continue
                headers = {"Authorization": "Bearer " + mint_token(route.role, p.layout.slug, sub="bench")}
                requests = [route.build(q) for q in p.queries]
                captured, failure = await app.capture_all(requests, headers)
                if failure:
                    res.unavailable[("geo_query", p.layout.key, p.shape.key)] = f"not available ({failure})"
                    say(f"geo_query: {p.shape.title} on {p.layout.title}: {failure}")
                    continue
                p.route, p.requests, p.statements = route, requests, captured
                p.origin = "geo_query's own, captured from its application for each request"
    for p in plan:
        if not p.statements:
            build = geo_sql(p.shape)
            p.statements = [build(p.agency_id, q) for q in p.queries]
            p.origin = "the bench's own (geo_query's route not available)"
        res.sql_origin[(p.layout.key, p.shape.key)] = p.origin
    say(
        f"geo_query: routes and SQL of {sum(1 for p in plan if p.route)} of {len(plan)} queries in {time.monotonic() - t0:.1f} s"
    )
    return plan


# ------------------------------------------------------------------------------------------------------- raw


async def _raw(bench: Bench, res: Any, plan: list[Planned]) -> None:
    from bench import raw
    from bench.contention import cpu_jiffies, cpu_per_request, other_share, snapshot
    from bench.http import Cell

    t0 = time.monotonic()
    pools = {c: await raw.connect(bench.reader(), c) for c in bench.clients}
    try:
        for p in plan:
            counts = await raw.warm(pools[1], p.statements, bench.warmup_seconds)
            if counts:
                res.returned[(p.layout.key, p.shape.key)] = sum(counts) / len(counts)
            for clients in bench.clients:
                cell = Cell("raw", p.layout.key, p.shape.key, clients)
                start, cpu0 = snapshot(set(), (bench.db_name,)), cpu_jiffies(set(), (bench.db_name,))
                await raw.run_cell(
                    pools[clients], p.statements, clients, bench.cell_seconds, bench.cell_requests, cell
                )
                cell.cpu_us = cpu_per_request(cpu0, cpu_jiffies(set(), (bench.db_name,)), cell.requests)
                cell.other_cpu = other_share(start, snapshot(set(), (bench.db_name,)))
                res.add(cell)
                _progress(cell, p)
    finally:
        for pool in pools.values():
            await pool.close()
    say(f"raw: done in {time.monotonic() - t0:.0f} s")


def _progress(cell: Any, p: Planned) -> None:
    say(
        f"{cell.system:9s} {p.layout.key:7s} {p.shape.key:10s} c={cell.clients:<2d} {cell.rps:8,.0f} req/s"
        f"  p50 {cell.p50:6.1f}  p95 {cell.p95:6.1f}  p99 {cell.p99:6.1f} ms  ({cell.requests:,} in {cell.seconds:.1f} s)"
        + f"  other CPU {cell.other_cpu:.0%}"
        + (
            f"  CPU µs/req {cell.cpu_us[0]:,.0f} / {cell.cpu_us[1]:,.0f} (process / database)"
            if cell.cpu_us
            else ""
        )
        + (f"  {cell.note}" if cell.note else "")
    )


# ------------------------------------------------------------------------------------------------------ HTTP


async def warm_http(
    base: str, requests: list[Any], headers: dict[str, str], seconds: float
) -> tuple[list[int], str]:
    """Send requests one by one for `seconds` (connections, caches, prepared statements): the number of Features
    each answer held, or the first failure."""
    import httpx
    import orjson

    counts: list[int] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for r in requests:
            h = dict(headers)
            if r.body is not None:
                h["Content-Type"] = "application/json"
            resp = await client.request(r.method, r.path, content=r.body, headers=h)
            if resp.status_code != 200:
                return counts, f"HTTP {resp.status_code}: {resp.text[:200]}"
            counts.append(len(orjson.loads(resp.content).get("features", [])))
            if time.monotonic() > deadline:
                break
    return counts, ""


def measured(cell: Any, pids: set[int], databases: tuple[str, ...], run: Any) -> Any:
    from bench.contention import cpu_jiffies, cpu_per_request, other_share, snapshot

    start, cpu0 = snapshot(pids, databases), cpu_jiffies(pids, databases)
    out = run()
    cell.cpu_us = cpu_per_request(cpu0, cpu_jiffies(pids, databases), cell.requests)
    cell.other_cpu = other_share(start, snapshot(pids, databases))
    return out


async def _geo_http(bench: Bench, res: Any, plan: list[Planned]) -> None:
    from bench.http import Cell, run_wrk, write_script
    from shared.auth import mint_token

    todo = [p for p in plan if p.route is not None]
    if not todo:
        say("geo_query: no route to measure over HTTP yet")
        return
    t0 = time.monotonic()
    with geo_query_server(bench) as srv:
        for p in todo:
            headers = {"Authorization": "Bearer " + mint_token(p.route.role, p.layout.slug, sub="bench")}
            counts, err = await warm_http(srv.url, p.requests, headers, bench.warmup_seconds)
            if counts:
                res.returned[(p.layout.key, p.shape.key)] = sum(counts) / len(counts)
            if err:
                res.unavailable[("geo_query", p.layout.key, p.shape.key)] = f"not measured ({err})"
                say(f"geo_query: {p.shape.title} on {p.layout.title}: {err}")
                continue
            script = write_script(f"geo-{p.layout.key}-{p.shape.key}", p.requests, headers)
            for clients in bench.clients:
                cell = Cell("geo_query", p.layout.key, p.shape.key, clients)
                # Warmed first at the same concurrency (not counted), so the CPU per request is the cell's own.
                run_wrk(srv.url, script, clients, 1, Cell(cell.system, cell.layout, cell.shape, clients))
                measured(
                    cell,
                    {srv.process.pid},
                    (bench.db_name,),
                    lambda: run_wrk(srv.url, script, clients, bench.cell_seconds, cell),  # noqa: B023
                )
                res.add(cell)
                _progress(cell, p)
            if srv.process.poll() is not None:
                raise RuntimeError(f"geo_query died:\n{srv.tail()}")
        peak = srv.peak_rss_mb()
        if peak is not None:
            res.server_memory["geo_query"] = peak
    say(f"geo_query: done in {time.monotonic() - t0:.0f} s")


async def _tipg(bench: Bench, res: Any, plan: list[Planned]) -> None:
    from bench.http import Cell, run_wrk, write_script
    from bench.tipg_server import COLLECTION, tipg

    todo = [p for p in plan if p.shape.vs_tipg]
    if not todo:
        return
    t0 = time.monotonic()
    from bench.http import tipg_route

    route = tipg_route(COLLECTION)
    try:
        with tipg(bench.owner()) as srv:
            for p in todo:
                requests = [route.build(q) for q in p.queries]
                _, err = await warm_http(srv.url, requests, {}, bench.warmup_seconds)
                if err:
                    res.unavailable[("tipg", p.layout.key, p.shape.key)] = f"not measured ({err})"
                    continue
                script = write_script(f"tipg-{p.layout.key}-{p.shape.key}", requests, {})
                for clients in bench.clients:
                    cell = Cell("tipg", p.layout.key, p.shape.key, clients)
                    run_wrk(srv.url, script, clients, 1, Cell(cell.system, cell.layout, cell.shape, clients))
                    measured(
                        cell,
                        {srv.process.pid},
                        (bench.db_name,),
                        lambda: run_wrk(srv.url, script, clients, bench.cell_seconds, cell),  # noqa: B023
                    )
                    res.add(cell)
                    _progress(cell, p)
            peak = srv.peak_rss_mb()
            if peak is not None:
                res.server_memory["tipg"] = peak
    except RuntimeError as exc:
        res.notes.append(f"tipg could not be started: {str(exc)[:300]}")
        say(f"tipg: could not be started: {exc}")
    say(f"tipg: done in {time.monotonic() - t0:.0f} s")


async def _pygeoapi(bench: Bench, res: Any, plan: list[Planned]) -> None:
    from bench.http import Cell, pygeoapi_route, run_wrk, write_script
    from bench.pygeoapi_server import COLLECTION, installed, pygeoapi

    todo = [p for p in plan if p.shape.vs_tipg]
    if not todo:
        return
    if not installed():
        res.notes.append("pygeoapi is not installed (`uv sync --group bench`): not measured")
        say("pygeoapi: not installed (uv sync --group bench)")
        return
    t0 = time.monotonic()
    route = pygeoapi_route(COLLECTION)
    try:
        with pygeoapi(bench.owner()) as srv:
            for p in todo:
                requests = [route.build(q) for q in p.queries]
                _, err = await warm_http(srv.url, requests, {}, bench.warmup_seconds)
                if err:
                    res.unavailable[("pygeoapi", p.layout.key, p.shape.key)] = f"not measured ({err})"
                    continue
                script = write_script(f"pygeoapi-{p.layout.key}-{p.shape.key}", requests, {})
                for clients in bench.clients:
                    cell = Cell("pygeoapi", p.layout.key, p.shape.key, clients)
                    run_wrk(srv.url, script, clients, 1, Cell(cell.system, cell.layout, cell.shape, clients))
                    measured(
                        cell,
                        {srv.process.pid},
                        (bench.db_name,),
                        lambda: run_wrk(srv.url, script, clients, bench.cell_seconds, cell),  # noqa: B023
                    )
                    res.add(cell)
                    _progress(cell, p)
            peak = srv.peak_rss_mb()
            if peak is not None:
                res.server_memory["pygeoapi"] = peak
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        res.notes.append(f"pygeoapi could not be started: {str(exc)[:300]}")
        say(f"pygeoapi: could not be started: {exc}")
    say(f"pygeoapi: done in {time.monotonic() - t0:.0f} s")


# ---------------------------------------------------------------------------------------------------- import


async def _imports(bench: Bench, res: Any) -> None:
    from bench import imports

    t0 = time.monotonic()
    await imports.prepare_import_database(bench)
    route = imports.registry_import_route()
    if isinstance(route, str):
        res.import_unavailable = route
        say(f"import: Canvass registry_api: {route}")
    timeout = 120.0 if bench.quick else 420.0
    try:
        await _import_sizes(bench, res, route, timeout)
    finally:
        await imports.drop_import_database(bench)
    say(f"import: done in {time.monotonic() - t0:.0f} s")


async def _import_sizes(bench: Bench, res: Any, route: Any, limit_s: float) -> None:
    from bench import imports

    for n in bench.import_sizes:
        path = imports.ensure_file(bench, n)
        r = await imports.ogr2ogr(bench, path, n, limit_s)
        res.imports.append(r)
        _say_import(r)
        if not isinstance(route, str):
            try:
                r = await imports.registry_import(bench, route, path, n, limit_s)
            except Exception as exc:  # the endpoint is new; report its failure, keep the bench going
                r = imports.ImportResult(
                    "Canvass registry_api", n, note=f"failed: {type(exc).__name__}: {exc}"[:300]
                )
                traceback.print_exc()
            res.imports.append(r)
            _say_import(r)


# ------------------------------------------------------------------------------------------- registrations


async def _registrations(bench: Bench, res: Any) -> None:
    from bench import registrations

    t0 = time.monotonic()
    try:
        res.registrations = await registrations.run(bench)
    except Exception as exc:  # report the failure, keep the bench going
        res.registrations = registrations.RegistrationResult(
            note=f"failed: {type(exc).__name__}: {exc}"[:300]
        )
        traceback.print_exc()
    say(f"registrations: done in {time.monotonic() - t0:.0f} s")


def _say_import(r: Any) -> None:
    mem = f", peak {r.peak_mb:,.0f} MB" if r.peak_mb is not None else ""
    if r.seconds:
        say(
            f"import: {r.tool}: {r.features:,} features in {r.seconds:.1f} s = {r.per_second:,.0f}/s{mem} {r.note}"
        )
    else:
        say(f"import: {r.tool}: {r.features:,} features: {r.note}")


if __name__ == "__main__":
    main()
