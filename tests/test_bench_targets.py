"""The performance targets live in one place, docs/performance.md, and the bench's verdicts come from it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from bench.http import Cell
from bench.queries import PLAN
from bench.report import Results, targets
from bench.targets import TARGETS_FILE, target
from bench.targets import targets as read_targets

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "geo_vs_raw_16",
    "geo_vs_raw_1",
    "geo_vs_tipg_16",
    "cad_p99_ms",
    "import_features_per_s",
    "import_peak_mb",
    "registrations_per_s",
}


def test_every_target_the_bench_checks_is_read_from_the_repository() -> None:
    assert TARGETS_FILE == ROOT / "docs" / "performance.md"
    assert set(read_targets()) == KEYS
    assert target("geo_vs_raw_16").op == "≥" and target("geo_vs_raw_16").unit == "%"


def test_the_verdicts_use_the_files_thresholds() -> None:
    layout, shape = next((lay, s) for lay, s in PLAN if s.key == "nearest")
    share = target("geo_vs_raw_16").value / 100

    def verdict(geo_rps: float) -> str:
        res = Results(quick=True)
        raw = Cell("raw", layout.key, shape.key, 16, requests=1000, seconds=1.0)
        geo = Cell("geo_query", layout.key, shape.key, 16, requests=round(geo_rps), seconds=1.0)
        res.add(raw)
        res.add(geo)
        line = next(v for v in targets(res) if shape.title in v and layout.title in v and "16 clients" in v)
        return line.rsplit("→", 1)[1].strip()

    assert verdict(1000 * share + 10) == "**met**"
    assert verdict(1000 * share - 10) == "**missed**"


def test_the_results_and_the_bench_name_no_file_outside_the_repository() -> None:
    for path in [
        ROOT / "docs" / "bench-results.md",
        ROOT / "docs" / "performance.md",
        *ROOT.glob("bench/*.py"),
    ]:
        text = path.read_text()
        assert "../shared" not in text and "PERFORMANCE.md" not in text, path


# ------------------------------------------------------------------------------------- the tiles' selection


def test_a_map_views_burst_is_its_adjacent_tiles_centre_first() -> None:
    from bench.tiles import VIEW_COLS, VIEW_ROWS, lonlat_to_tile, view_burst
    from services.geo_query.tiles import tile_bounds

    lon, lat = -87.6298, 41.8781
    for z in (12, 14, 16):
        burst = view_burst(lon, lat, z)
        cx, cy = lonlat_to_tile(lon, lat, z)
        west, south, east, north = tile_bounds(z, cx, cy)
        assert west <= lon < east and south < lat <= north  # the service's own grid holds the point there
        assert burst[0] == (z, cx, cy)
        assert len(burst) == len(set(burst)) == VIEW_COLS * VIEW_ROWS
        xs, ys = {t[1] for t in burst}, {t[2] for t in burst}
        assert xs == set(range(min(xs), min(xs) + VIEW_COLS))  # a block of adjacent columns and rows
        assert ys == set(range(min(ys), min(ys) + VIEW_ROWS))
        assert all(t[0] == z for t in burst)


def test_a_burst_at_the_grids_edge_stays_inside_the_grid() -> None:
    from bench.tiles import view_burst

    z = 12
    burst = view_burst(-179.9999, 85.0511, z)
    assert burst[0] == (z, 0, 0)
    assert all(0 <= x < 1 << z and 0 <= y < 1 << z for _, x, y in burst)
    assert len(burst) < 12  # the columns and rows past the edge are left out, not wrapped or clamped twice


def test_the_tiles_are_asked_view_after_view_over_the_populated_area() -> None:
    from bench import data
    from bench.tiles import bursts, lonlat_to_tile, view_burst

    gen = data.generate(data.REGIONS, 100_000)
    points = data.query_points(gen, 5)
    tiles = bursts(points, 14)
    assert tiles == [t for lon, lat in points for t in view_burst(lon, lat, 14)]
    # Each view is centred on a point of the data: a tile where cameras are.
    for lon, lat in points:
        x, y = lonlat_to_tile(lon, lat, 14)
        near = [
            (a, b)
            for a, b in zip(gen.cam_lon, gen.cam_lat, strict=True)
            if lonlat_to_tile(float(a), float(b), 14) == (x, y)
        ][:1]
        assert near, (lon, lat)


def test_the_bytes_per_tile_percentile_is_a_nearest_rank() -> None:
    from bench.tiles import percentile

    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 50) == 50
    assert percentile([7], 99) == 7
    assert percentile([0, 0, 1000], 99) == 1000


def test_the_tiles_table_has_a_row_per_kind_layout_and_zoom() -> None:
    from bench.tiles import TileRow, table

    cell = Cell(
        "tiles-cameras",
        "regions",
        "z14",
        16,
        requests=900,
        seconds=3.0,
        p50=10.0,
        p99=40.0,
        cpu_us=(571.2, 1429.0),
    )
    rows = [
        TileRow("cameras", "many metros", 14, 480, 18_556.4, 85_450, 0.01, cell),
        TileRow("coverage", "many metros", 14, 480, cell=Cell("t", "r", "z14", 16, note="HTTP 404")),
    ]
    out = table(rows)
    assert (
        out[2]
        == "| cameras | many metros | 14 | 480 | 300 | 10.0 / 40.0 | 18,556 / 85,450 | 1% | 571 / 1,429 |  |"
    )
    assert out[3].startswith("| coverage | many metros | 14 | 480 | — | — |") and out[3].endswith(
        "HTTP 404 |"
    )


# ------------------------------------------------------------------------------------------ the route shape


def test_the_routes_run_one_to_five_km_with_a_few_turns() -> None:
    from bench.queries import PLAN, ROUTE, ROUTE_LEG_M, Query, queries

    assert ("regions", "route") in {(lay.key, s.key) for lay, s in PLAN}
    qs = queries([(-87.6, 41.8)] * 9)
    lengths = []
    for q in qs:
        coords = q.route
        legs = len(coords) - 1
        assert legs == q.legs
        lengths.append(legs * ROUTE_LEG_M)
        # legs alternate east and north: every vertex after the second is a turn
        for i, (a, b) in enumerate(itertools.pairwise(coords)):
            assert (b[1] == a[1]) if i % 2 == 0 else (b[0] == a[0])
    assert sorted(lengths) == [1000.0 + 500 * i for i in range(9)]
    assert Query(0.0, 0.0).legs * ROUTE_LEG_M == 3000.0 and ROUTE.limit == 1000


# ---------------------------------------------------------------------------------------- the cost curve


def test_the_cost_curve_measures_one_and_the_asked_scale() -> None:
    import pytest

    from bench.scale import scales

    assert scales(10) == (1, 10)
    assert scales(3) == (1, 3)
    assert scales(1) == (1,)
    with pytest.raises(ValueError):
        scales(0)


def test_the_cost_curve_is_one_table_with_the_growth_per_million() -> None:
    from bench.scale import MB, SHAPES, ScalePoint, table

    def point(millions: int, rps16: float, p99: float) -> ScalePoint:
        p = ScalePoint(float(millions), cameras=millions * 1_000_000, registrations=millions * 625_000)
        p.load_s, p.copy_s, p.rows = 40.0 * millions, 20.0 * millions, millions * 2_250_000
        p.sizes = {
            "cameras": 240 * MB * millions,
            "database": 700 * MB * millions * (11 if millions > 1 else 10) // 10,
        }
        for s in SHAPES:
            p.cells[(s.key, 16)] = Cell(
                "geo_query",
                "regions",
                s.key,
                16,
                requests=round(rps16),
                seconds=1.0,
                p50=5.0,
                p99=p99,
                cpu_us=(450.0, 700.0),
            )
            p.cells[(s.key, 1)] = Cell(
                "geo_query", "regions", s.key, 1, requests=500, seconds=1.0, p50=1.5, p99=3.0
            )
        p.import_features, p.import_s = 100_000, 6.0 * millions**0.5
        p.audit_records, p.audit_bytes = 10_000 * millions, 26_350_000 * millions
        return p

    out = table([point(1, 1400, 16.0), point(10, 1120, 20.0)])
    assert out[0] == "| | 1 M cameras | 10 M cameras | growth |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out[2:]}
    assert rows["cameras"] == "| cameras | 1,000,000 | 10,000,000 | 10.00 × |"
    assert rows["load: total s (generate, migrate, COPY, indexes, VACUUM)"].endswith("| 40 | 400 | 10.00 × |")
    # sizes are per million cameras: a table that grows linearly reads the same at both scales
    assert rows["registry.cameras: table, MB per million cameras"].endswith("| 240.0 | 240.0 | 1.00 × |")
    assert rows["the whole database, MB per million cameras"].endswith("| 700.0 | 770.0 | 1.10 × |")
    nearest = SHAPES[0].title
    assert rows[f"{nearest}, 16 clients: searches/s"].endswith("| 1,400 | 1,120 | 0.80 × |")
    assert rows[f"{nearest}, 16 clients: p99 ms"].endswith("| 16.0 | 20.0 | 1.25 × |")
    assert rows[f"{nearest}, 16 clients: CPU µs per search, PostgreSQL"].endswith("| 700 | 700 | 1.00 × |")
    assert rows["registry_api import of 100,000 features: features/s"].endswith("| 16,667 | 5,270 | 0.32 × |")
    audit = (
        "audit trail: bytes per search record (the audit schema's growth ÷ the records the searches appended)"
    )
    assert rows[audit].endswith("| 2,635 | 2,635 | 1.00 × |")
    # what was not measured shows as a dash, never as a zero
    assert rows["registry.cameras: GiST index on geom, MB per million cameras"].endswith("| — | — | — |")


def test_the_results_file_holds_the_saved_runs_as_the_bench_renders_them() -> None:
    from bench.report import SAVED_RUNS, machine, render

    saved = SAVED_RUNS.read_text().strip()
    assert saved.startswith("## The cost curve and the vector tiles")
    assert saved in (ROOT / "docs" / "bench-results.md").read_text()
    res = Results(quick=False)
    res.machine = machine()
    assert saved in render(res)


# ------------------------------------------------------------------------------------ the raw driver's SQL


def test_the_capture_keeps_a_searchs_set_local_settings_with_its_statements() -> None:
    from bench.capture import StatementLog, current_statements

    statements: list[Any] = []
    token = current_statements.set(statements)
    try:
        log = StatementLog()
        log.add("execute", "SET LOCAL plan_cache_mode = force_custom_plan", ())
        log.add("fetch", "SELECT 1", ())  # not a search's: left out
        log.add("fetch", "SELECT id FROM registry.cameras LIMIT $1", (5,))
    finally:
        current_statements.reset(token)
    assert [s.sql for s in statements] == [
        "SET LOCAL plan_cache_mode = force_custom_plan",
        "SELECT id FROM registry.cameras LIMIT $1",
    ]


def test_the_raw_driver_runs_a_search_under_its_set_local_settings(geo_database_url: str) -> None:
    import asyncio

    import asyncpg

    from bench.capture import Statement
    from bench.raw import run

    async def main() -> tuple[str, str]:
        conn = await asyncpg.connect(geo_database_url)
        try:
            inside = await run(
                conn,
                [
                    Statement("execute", "SET LOCAL plan_cache_mode = force_custom_plan", ()),
                    Statement("fetchval", "SELECT current_setting('plan_cache_mode')", ()),
                ],
            )
            after = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
        finally:
            await conn.close()
        return inside, after

    inside, after = asyncio.run(main())
    # The setting holds for the search's statements (outside a transaction SET LOCAL would do nothing, and a
    # statement run again would get the generic plan geo_query never uses), and only for them.
    assert inside == "force_custom_plan"
    assert after == "auto"
