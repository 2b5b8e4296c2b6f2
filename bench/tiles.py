"""Vector tiles at scale, on the queries' data set (each layout's agency sees its 1,000,000 cameras; QUICK=1:
100,000): tiles per second at 16 clients, p50 / p99 and bytes per tile (mean / p99), per zoom, for the camera
tiles (`GET /v1/tiles/cameras/{z}/{x}/{y}.mvt`, an investigator's token, audited per burst) and the public
coverage tiles (`GET /v1/tiles/coverage/{z}/{x}/{y}.mvt?agency=…`, no token).

The tiles are what a map asks for: a view centred on a point drawn from the data (cameras are where people are,
so the views fall on the populated area), and its burst of adjacent tiles, a 1280 × 800 pixel window of 512-pixel
vector tiles (4 × 3 tiles), the centre's tile first and the rest by distance from the centre, as map libraries
queue them. Each zoom's requests are VIEWS_PER_ZOOM such bursts; wrk rotates through them (each thread from its own
offset), so every view's burst is asked again within a cell, as a user panning back and forth asks it, and the
camera tiles' audit records are those of the bursts (one per block of 4 × 4 tiles, per caller, per minute).
Bytes per tile are read from one pass over the same requests before the load, each distinct tile once (every
answer must be a 200), and counted as often as the rotation asks for the tile.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.http import Cell, HttpRequest
from bench.settings import Bench, say

ZOOMS = (12, 14, 16)
VIEW_COLS, VIEW_ROWS = 4, 3  # 512-pixel tiles in a 1280 × 800 window, with the partial ones at its edges
CLIENTS = 16
BEARER_ROLE = "investigator"

Tile = tuple[int, int, int]


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The column and row of the Web Mercator tile of zoom z (XYZ, rows from the north) holding lon/lat."""
    n = 1 << z
    lat = max(-85.05112878, min(85.05112878, lat))
    x = int((lon + 180.0) / 360.0 * n)
    r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(r)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def view_burst(lon: float, lat: float, z: int, cols: int = VIEW_COLS, rows: int = VIEW_ROWS) -> list[Tile]:
    """The tiles of a map view of `cols` × `rows` tiles centred on lon/lat at zoom z, the centre's tile first and
    the others by their distance from the view's centre (ties in row-major order), clipped to the grid."""
    n = 1 << z
    fx = (lon + 180.0) / 360.0 * n
    r = math.radians(max(-85.05112878, min(85.05112878, lat)))
    fy = (1.0 - math.asinh(math.tan(r)) / math.pi) / 2.0 * n
    x0 = math.floor(fx - cols / 2 + 0.5)
    y0 = math.floor(fy - rows / 2 + 0.5)
    cx, cy = lonlat_to_tile(lon, lat, z)
    tiles = [(x, y) for y in range(y0, y0 + rows) for x in range(x0, x0 + cols) if 0 <= x < n and 0 <= y < n]
    if (cx, cy) not in tiles:
        tiles.append((cx, cy))
    tiles.sort(key=lambda t: ((t[0], t[1]) != (cx, cy), (t[0] + 0.5 - fx) ** 2 + (t[1] + 0.5 - fy) ** 2))
    return [(z, x, y) for x, y in tiles]


def bursts(points: list[tuple[float, float]], z: int) -> list[Tile]:
    """The views' bursts one after the other: the order a map's user asks for them in."""
    return [t for lon, lat in points for t in view_burst(lon, lat, z)]


def camera_request(t: Tile) -> HttpRequest:
    return HttpRequest("GET", f"/v1/tiles/cameras/{t[0]}/{t[1]}/{t[2]}.mvt")


def coverage_request(t: Tile, agency: str) -> HttpRequest:
    return HttpRequest("GET", f"/v1/tiles/coverage/{t[0]}/{t[1]}/{t[2]}.mvt?agency={agency}")


def percentile(values: list[int] | list[float], q: float) -> float:
    """The nearest-rank percentile q (0-100) of `values` (not empty)."""
    s = sorted(values)
    return float(s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))])


@dataclass
class TileRow:
    """One measured row: a kind of tile (cameras or coverage), a layout, a zoom."""

    kind: str
    layout: str
    zoom: int
    tiles: int  # distinct requests in the rotation
    bytes_mean: float = 0.0
    bytes_p99: float = 0.0
    empty: float = 0.0  # share of the tiles with no feature (an empty body)
    cell: Cell | None = None


def table(rows: list[TileRow]) -> list[str]:
    if not rows:
        return ["tiles: not measured"]
    out = [
        f"| tiles | layout | zoom | tiles asked | tiles/s at {CLIENTS} clients | p50 / p99 ms | bytes per tile"
        " mean / p99 | empty | CPU µs per tile: geo_query / PostgreSQL | note |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        c = r.cell
        rate = f"{c.rps:,.0f}" if c and c.requests else "—"
        lat = f"{c.p50:.1f} / {c.p99:.1f}" if c and c.requests else "—"
        note = c.note if c else "not measured"
        cpu = f"{c.cpu_us[0]:,.0f} / {c.cpu_us[1]:,.0f}" if c and c.requests and c.cpu_us else "—"
        out.append(
            f"| {r.kind} | {r.layout} | {r.zoom} | {r.tiles:,} | {rate} | {lat} |"
            f" {r.bytes_mean:,.0f} / {r.bytes_p99:,.0f} | {r.empty:.0%} | {cpu} | {note} |"
        )
    return out


async def _sizes(base: str, requests: list[HttpRequest], headers: dict[str, str]) -> tuple[list[int], str]:
    """The body's size of each request (each distinct tile asked once: views overlap, most at zoom 12), or the
    first failure."""
    import httpx

    size: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for path in dict.fromkeys(r.path for r in requests):
            resp = await client.get(path, headers=headers)
            if resp.status_code != 200:
                return [], f"HTTP {resp.status_code} for {path}: {resp.text[:200]}"
            size[path] = len(resp.content)
    return [size[r.path] for r in requests], ""


def views_per_zoom(bench: Bench) -> int:
    return 10 if bench.quick else 40


async def run(bench: Bench) -> list[TileRow]:
    from bench import data
    from bench.http import run_wrk, write_script
    from bench.run import geo_query_server, measured
    from shared.auth import mint_token

    gens = await data.ensure_loaded(bench)
    t0 = time.monotonic()
    rows: list[TileRow] = []
    with geo_query_server(bench) as srv:
        for lay in data.LAYOUTS:
            points = data.query_points(gens[lay.key], views_per_zoom(bench))
            token = {"Authorization": "Bearer " + mint_token(BEARER_ROLE, lay.slug, sub="bench-tiles")}
            for kind in ("cameras", "coverage"):
                for z in ZOOMS:
                    tiles = bursts(points, z)
                    if kind == "cameras":
                        requests, headers = [camera_request(t) for t in tiles], token
                    else:
                        requests, headers = [coverage_request(t, lay.slug) for t in tiles], {}
                    row = TileRow(kind, lay.title, z, len(requests))
                    rows.append(row)
                    sizes, err = await _sizes(srv.url, requests, headers)
                    if err:
                        row.cell = Cell(f"tiles-{kind}", lay.key, f"z{z}", CLIENTS, note=err)
                        say(f"tiles: {kind} z{z} {lay.title}: {err}")
                        continue
                    row.bytes_mean = statistics.fmean(sizes)
                    row.bytes_p99 = percentile(sizes, 99)
                    row.empty = sum(1 for s in sizes if s == 0) / len(sizes)
                    script = write_script(f"tiles-{kind}-{lay.key}-{z}", requests, headers)
                    cell = Cell(f"tiles-{kind}", lay.key, f"z{z}", CLIENTS)
                    run_wrk(srv.url, script, CLIENTS, 1, Cell(cell.system, cell.layout, cell.shape, CLIENTS))
                    measured(
                        cell,
                        {srv.process.pid},
                        (bench.db_name,),
                        lambda: run_wrk(srv.url, script, CLIENTS, bench.cell_seconds, cell),  # noqa: B023
                    )
                    row.cell = cell
                    say(
                        f"tiles: {kind:8s} {lay.key:7s} z{z} {cell.rps:8,.0f} tiles/s  p50 {cell.p50:6.1f}"
                        f"  p99 {cell.p99:6.1f} ms  bytes mean {row.bytes_mean:,.0f} p99 {row.bytes_p99:,.0f}"
                        f"  empty {row.empty:.0%}  other CPU {cell.other_cpu:.0%}"
                        + (
                            f"  CPU µs/tile {cell.cpu_us[0]:,.0f} / {cell.cpu_us[1]:,.0f} (process / database)"
                            if cell.cpu_us
                            else ""
                        )
                        + (f"  {cell.note}" if cell.note else "")
                    )
            if srv.process.poll() is not None:
                raise RuntimeError(f"geo_query died:\n{srv.tail()}")
    say(f"tiles: done in {time.monotonic() - t0:.0f} s")
    return rows


def lines(rows: list[TileRow], bench: Bench) -> list[str]:
    """The printed (and saved) form: what was measured, then the table."""
    head: list[Any] = [
        f"vector tiles ({bench.cameras_per_layout:,} cameras per agency; {views_per_zoom(bench)} map views of"
        f" {VIEW_COLS} × {VIEW_ROWS} tiles per zoom; {CLIENTS} clients, {bench.cell_seconds:g} s per cell after 1 s"
        " not counted; camera tiles with an investigator's token, coverage tiles public):"
    ]
    return head + table(rows)
