"""The cost curve, `make bench SCALE=N`: the same measurements at 1 million cameras and at N million, all in the
realistic many-metros layout (50 metro areas; a bigger program's metros spread wider and grow denser with the
square root of their size), so the growth from 1 to N million reads off one printed table.

For each scale, in a database of its own (`<base>_scale<N>`, created afresh, dropped after so the disk is given
back): the load (binary COPY into the registry's tables, indexes and keys rebuilt after, VACUUM ANALYZE, the way
the queries' data set is loaded) and its time; the tables' and indexes' sizes per million cameras; geo_query over
HTTP (one uvicorn worker, a token, scoping and an audit record per search) on the CAD and map query shapes at 1
and 16 clients, with the CPU per search of its process and of PostgreSQL; then registry_api's bulk import of
IMPORT_FEATURES features into that registry (a second agency's program, so the import meets a table and indexes
of the scale's size). QUICK=1 measures a tenth of each scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.http import Cell
from bench.queries import BBOX100, NEAREST, RADIUS_CAD, ROUTE, Shape
from bench.settings import Bench, say

SHAPES: tuple[Shape, ...] = (NEAREST, RADIUS_CAD, BBOX100, ROUTE)
MB = 1024 * 1024


@dataclass
class ScalePoint:
    """What one scale measured."""

    millions: float  # cameras, in millions
    cameras: int = 0
    registrations: int = 0
    load_s: float = 0.0
    copy_s: float = 0.0
    index_s: float = 0.0
    vacuum_s: float = 0.0
    rows: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # bytes, by what (see SIZE_ROWS)
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)  # (shape, clients)
    returned: dict[str, float] = field(default_factory=dict)  # shape -> mean Features per answer
    import_features: int = 0
    import_s: float = 0.0
    import_note: str = ""
    audit_records: int = 0  # appended by the searches measured
    audit_bytes: int = 0  # the audit schema's growth meanwhile (tables, their indexes and TOAST)


# What the size rows show, and the SQL of each (bytes).
SIZE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("cameras", "registry.cameras: table", "pg_table_size('registry.cameras')"),
    ("cameras_geom", "registry.cameras: GiST index on geom", "pg_relation_size('registry.ix_cameras_geom')"),
    ("cameras_indexes", "registry.cameras: all its indexes", "pg_indexes_size('registry.cameras')"),
    (
        "registrations",
        "registry.registrations with its indexes",
        "pg_total_relation_size('registry.registrations')",
    ),
    (
        "shares",
        "registry.registration_shares with its indexes",
        "pg_total_relation_size('registry.registration_shares')",
    ),
    (
        "coverage",
        "registry.coverage_counts with its indexes",
        "pg_total_relation_size('registry.coverage_counts')",
    ),
    ("database", "the whole database", "pg_database_size(current_database())"),
)


def scales(top: int) -> tuple[int, ...]:
    """The scales (millions of cameras) a `SCALE=top` run measures: 1 and top."""
    if top < 1:
        raise ValueError("SCALE is a whole number of millions of cameras, 1 or more")
    return (1,) if top == 1 else (1, top)


def import_features(bench: Bench) -> int:
    return 10_000 if bench.quick else 100_000


def _growth(a: float, b: float) -> str:
    return f"{b / a:.2f} ×" if a and b else "—"


def _cell(c: Cell | None, what: str) -> float:
    if c is None or not c.requests:
        return 0.0
    if what == "rps":
        return c.rps
    if what == "cpu_process":
        return c.cpu_us[0] if c.cpu_us else 0.0
    if what == "cpu_database":
        return c.cpu_us[1] if c.cpu_us else 0.0
    return float(getattr(c, what))


def table(points: list[ScalePoint]) -> list[str]:
    """One table, a column per scale and the growth from the first to the last: load, sizes per million cameras,
    each shape's throughput, latency and CPU per search, and the import."""
    if not points:
        return ["cost curve: not measured"]
    first, last = points[0], points[-1]
    head = "| | " + " | ".join(f"{p.millions:g} M cameras" for p in points) + " | growth |"
    rows = [head, "|---|" + "--:|" * len(points) + "--:|"]

    def row(label: str, values: list[float], fmt: str, growth: bool = True) -> None:
        cells = [format(v, fmt) if v else "—" for v in values]
        rows.append(
            f"| {label} | " + " | ".join(cells) + f" | {_growth(values[0], values[-1]) if growth else ''} |"
        )

    row("cameras", [p.cameras for p in points], ",.0f")
    row("registrations", [p.registrations for p in points], ",.0f")
    row("load: total s (generate, migrate, COPY, indexes, VACUUM)", [p.load_s for p in points], ",.0f")
    row("load: COPY s", [p.copy_s for p in points], ",.0f")
    row("load: indexes and keys s", [p.index_s for p in points], ",.0f")
    row("load: VACUUM ANALYZE s", [p.vacuum_s for p in points], ",.0f")
    row("load: rows per s of COPY", [p.rows / p.copy_s if p.copy_s else 0 for p in points], ",.0f")
    for key, label, _ in SIZE_ROWS:
        row(
            f"{label}, MB per million cameras",
            [p.sizes.get(key, 0) / MB / (p.cameras / 1e6) if p.cameras else 0 for p in points],
            ",.1f",
        )
    for shape in SHAPES:
        row(f"{shape.title}: Features per answer", [p.returned.get(shape.key, 0) for p in points], ",.0f")
        for clients in (1, 16):
            cells = [p.cells.get((shape.key, clients)) for p in points]
            row(
                f"{shape.title}, {clients} client{'s' if clients > 1 else ''}: searches/s",
                [_cell(c, "rps") for c in cells],
                ",.0f",
            )
            row(
                f"{shape.title}, {clients} client{'s' if clients > 1 else ''}: p50 ms",
                [_cell(c, "p50") for c in cells],
                ".1f",
            )
            row(
                f"{shape.title}, {clients} client{'s' if clients > 1 else ''}: p99 ms",
                [_cell(c, "p99") for c in cells],
                ".1f",
            )
        cells16 = [p.cells.get((shape.key, 16)) for p in points]
        row(
            f"{shape.title}, 16 clients: CPU µs per search, geo_query",
            [_cell(c, "cpu_process") for c in cells16],
            ",.0f",
        )
        row(
            f"{shape.title}, 16 clients: CPU µs per search, PostgreSQL",
            [_cell(c, "cpu_database") for c in cells16],
            ",.0f",
        )
    row(
        "audit trail: bytes per search record (the audit schema's growth ÷ the records the searches appended)",
        [p.audit_bytes / p.audit_records if p.audit_records else 0 for p in points],
        ",.0f",
    )
    row("audit trail: records appended by the searches", [p.audit_records for p in points], ",.0f")
    row(
        f"registry_api import of {last.import_features or first.import_features:,} features: features/s",
        [p.import_features / p.import_s if p.import_s else 0 for p in points],
        ",.0f",
    )
    notes = [f"{p.millions:g} M: {p.import_note}" for p in points if p.import_note]
    notes += [
        f"{p.millions:g} M, {shape}, {clients} clients: {c.note}"
        for p in points
        for (shape, clients), c in sorted(p.cells.items())
        if c.note
    ]
    return rows + ([""] + [f"- {n}" for n in notes] if notes else [])


async def _sizes(bench: Bench) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(bench.owner())
    try:
        # The module's own expressions, no caller text.
        exprs = ", ".join(f"{expr} AS {key}" for key, _, expr in SIZE_ROWS)
        sql = f"SELECT {exprs}, (SELECT count(*) FROM registry.cameras) AS n_cameras,"  # noqa: S608
        sql += " (SELECT count(*) FROM registry.registrations) AS n_registrations"
        row = await conn.fetchrow(sql)
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


AUDIT_SQL = (
    "SELECT (SELECT count(*) FROM audit.events) AS records, (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'audit'"
    " AND c.relkind IN ('r', 'm')) AS bytes"
)


async def _audit(bench: Bench) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(bench.owner())
    try:
        row = await conn.fetchrow(AUDIT_SQL)
        assert row is not None
        return int(row["records"]), int(row["bytes"])
    finally:
        await conn.close()


async def _queries(bench: Bench, point: ScalePoint, gen: Any, slug: str) -> None:
    from bench import data
    from bench.http import geo_routes, run_wrk, write_script
    from bench.queries import queries
    from bench.run import geo_query_server, measured, warm_http
    from services.geo_query.main import app
    from shared.auth import mint_token

    routes = geo_routes(app.openapi(), SHAPES)
    qs = queries(data.query_points(gen, bench.queries_per_shape))
    with geo_query_server(bench) as srv:
        for shape in SHAPES:
            route = routes[shape.key]
            if isinstance(route, str):
                point.cells[(shape.key, 16)] = Cell("geo_query", "regions", shape.key, 16, note=route)
                continue
            headers = {"Authorization": "Bearer " + mint_token(route.role, slug, sub="bench")}
            requests = [route.build(q) for q in qs]
            counts, err = await warm_http(srv.url, requests, headers, bench.warmup_seconds)
            if counts:
                point.returned[shape.key] = sum(counts) / len(counts)
            if err:
                point.cells[(shape.key, 16)] = Cell("geo_query", "regions", shape.key, 16, note=err)
                say(f"scale {point.millions:g} M: {shape.title}: {err}")
                continue
            script = write_script(f"scale-{point.millions:g}-{shape.key}", requests, headers)
            for clients in bench.clients:
                cell = Cell("geo_query", "regions", shape.key, clients)
                run_wrk(srv.url, script, clients, 1, Cell(cell.system, cell.layout, cell.shape, clients))
                measured(
                    cell,
                    {srv.process.pid},
                    (bench.db_name,),
                    lambda: run_wrk(srv.url, script, clients, bench.cell_seconds, cell),  # noqa: B023
                )
                point.cells[(shape.key, clients)] = cell
                say(
                    f"scale {point.millions:g} M: {shape.key:10s} c={clients:<2d} {cell.rps:8,.0f} req/s"
                    f"  p50 {cell.p50:6.1f}  p99 {cell.p99:6.1f} ms  other CPU {cell.other_cpu:.0%}"
                    + (f"  CPU µs/req {cell.cpu_us[0]:,.0f} / {cell.cpu_us[1]:,.0f}" if cell.cpu_us else "")
                    + (f"  {cell.note}" if cell.note else "")
                )
            if srv.process.poll() is not None:
                raise RuntimeError(f"geo_query died:\n{srv.tail()}")


async def _import(bench: Bench, point: ScalePoint) -> None:
    from bench import imports

    route = imports.registry_import_route()
    n = import_features(bench)
    point.import_features = n
    if isinstance(route, str):
        point.import_note = f"import {route}"
        return
    await imports.add_import_agency(bench, bench.db_name)
    path = imports.ensure_file(bench, n)
    r = await imports.registry_import(bench, route, path, n, 900.0, db_name=bench.db_name)
    point.import_s = r.seconds
    if r.note and not r.note.startswith("server RSS"):
        point.import_note = f"import: {r.note}"
    say(f"scale {point.millions:g} M: import of {n:,} features in {r.seconds:.1f} s {r.note}")


async def measure(bench: Bench, millions: int, keep: bool = False) -> ScalePoint:
    from bench import data

    t0 = time.monotonic()
    n = millions * (100_000 if bench.quick else 1_000_000)
    point = ScalePoint(n / 1e6)
    bench.db_override = bench.scale_db_name(millions)
    try:
        say(f"scale {point.millions:g} M: generating and loading {n:,} cameras into {bench.db_name}")
        gen = data.generate(data.REGIONS, n)
        key = {**data.dataset_key(bench), "layout": "regions", "cameras": n}
        times = await data.load(bench, [gen], key, started=t0)
        point.load_s, point.copy_s, point.index_s, point.vacuum_s, point.rows = (
            times.total_s,
            times.copy_s,
            times.index_s,
            times.vacuum_s,
            times.rows,
        )
        sizes = await _sizes(bench)
        point.cameras, point.registrations = sizes.pop("n_cameras"), sizes.pop("n_registrations")
        point.sizes = sizes
        say(
            f"scale {point.millions:g} M: cameras table {sizes['cameras'] / MB:,.0f} MB, its indexes"
            f" {sizes['cameras_indexes'] / MB:,.0f} MB, database {sizes['database'] / MB:,.0f} MB"
        )
        del gen.cam_reg  # the generated arrays are not needed past the queries' points
        records0, bytes0 = await _audit(bench)
        await _queries(bench, point, gen, data.REGIONS.slug)
        records1, bytes1 = await _audit(bench)
        point.audit_records, point.audit_bytes = records1 - records0, bytes1 - bytes0
        await _import(bench, point)
    finally:
        if not keep:
            await data.drop_database(bench, bench.db_name)
        bench.db_override = None
    say(f"scale {point.millions:g} M: done in {time.monotonic() - t0:.0f} s")
    return point


async def run(bench: Bench, top: int) -> list[str]:
    t0 = time.monotonic()
    points = [await measure(bench, m) for m in scales(top)]
    return [
        f"cost curve, SCALE={top}: many metros, one agency seeing every camera; geo_query over HTTP, 1 worker,"
        f" {bench.cell_seconds:g} s per cell after 1 s not counted; {time.monotonic() - t0:.0f} s in all:",
        "",
        *table(points),
    ]
