"""The raw limit: asyncpg running the query SQL straight against PostgreSQL, no HTTP, no auth, no audit.

`geo_sql(shape)` gives the statements for each query: geo_query's own, captured from its application (see
capture.py), when its route for the shape exists; otherwise the bench's SQL below, written to docs/performance.md's
fast patterns with geo_query's scoping (the agency in `visible_to`, the camera inside the jurisdiction) and its
Feature text built by PostgreSQL — so the raw row of the table is measured today and becomes geo_query's exact
SQL as soon as the route lands. The report says which SQL each row ran.

The driver holds one connection per client (the same read role and session settings as geo_query's pool) and
runs each cell for a fixed number of requests or a time bound, whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from bench.capture import Statement
from bench.http import Cell
from bench.queries import NEAREST_K, RADIUS_M, ROUTE_BUFFER_M, Query, Shape

KNN_CANDIDATES = (
    100  # planar <-> candidates re-sorted by geodesic distance (docs/performance.md, reference figures)
)
ALL = 10_000

_PROPS = (
    "'registration_id', c.registration_id, 'label', c.label, 'owner_kind', c.owner_kind,"
    " 'placement', c.placement, 'direction_deg', c.direction_deg, 'fov_deg', c.fov_deg, 'range_m', c.range_m,"
    " 'covers', c.covers, 'retention_days', c.retention_days, 'recording', c.recording,"
    " 'shares_history', c.shares_history, 'live_mode', c.live_mode"
)
_PT = "ST_SetSRID(ST_MakePoint($2, $3), 4326)"
_DIST = f"ST_Distance(c.geom::geography, {_PT}::geography)"
_SCOPE = (
    "$1::uuid = ANY(c.visible_to)"
    " AND ST_Intersects(c.geom, (SELECT a.jurisdiction FROM registry.agencies a WHERE a.id = $1::uuid))"
)


def _feature(with_distance: bool) -> str:
    props = _PROPS
    if with_distance:
        props += (
            f", 'distance_m', round(({_DIST})::numeric, 2),"
            f" 'bearing_deg', round(degrees(ST_Azimuth({_PT}::geography, c.geom::geography))::numeric, 1)"
        )
    return (
        """'{"type":"Feature","id":"' || c.id::text || '","geometry":' || ST_AsGeoJSON(c.geom, 7)"""
        f""" || ',"properties":' || json_build_object({props})::text || '}}'"""
    )


def _page(inner: str) -> str:
    """The page as one row: how many Features, and their text joined (what the service passes through)."""
    return f"SELECT count(*)::int AS n, coalesce(string_agg(f, ','), '') AS body FROM ({inner}) q"  # noqa: S608


def _box(q: Query, metres: float) -> tuple[float, float, float, float]:
    """A lon/lat box holding every point within `metres` of the query point (generous: the smallest radius of
    curvature of WGS84, plus 1 %), for the index prefilter."""
    r = metres / 6_335_439.0 * 1.01
    dlat = math.degrees(r)
    dlon = math.degrees(math.asin(math.sin(r) / math.cos(math.radians(q.lat)))) * 1.01
    return q.lon - dlon, q.lat - dlat, q.lon + dlon, q.lat + dlat


def radius_sql(agency: uuid.UUID, q: Query, limit: int) -> list[Statement]:
    """Index prefilter (`&&` an expanded box), then the exact geodesic test; nearest first."""
    inner = (
        f"SELECT {_feature(True)} AS f FROM registry.cameras c WHERE {_SCOPE}"  # noqa: S608 - constants only
        " AND c.geom && ST_MakeEnvelope($4, $5, $6, $7, 4326)"
        f" AND ST_DWithin(c.geom::geography, {_PT}::geography, $8) ORDER BY {_DIST}, c.id LIMIT $9"
    )
    return [Statement("fetchrow", _page(inner), (agency, q.lon, q.lat, *_box(q, RADIUS_M), RADIUS_M, limit))]


def nearest_sql(agency: uuid.UUID, q: Query, k: int = NEAREST_K) -> list[Statement]:
    """The top candidates by the index's planar `<->`, re-sorted by geodesic distance."""
    inner = (
        f"SELECT {_feature(True)} AS f FROM (SELECT c.* FROM registry.cameras c WHERE {_SCOPE}"  # noqa: S608
        f" ORDER BY c.geom <-> {_PT} LIMIT {KNN_CANDIDATES}) c ORDER BY {_DIST}, c.id LIMIT $4"
    )
    return [Statement("fetchrow", _page(inner), (agency, q.lon, q.lat, k))]


def polygon_sql(agency: uuid.UUID, q: Query, limit: int) -> list[Statement]:
    inner = (
        f"SELECT {_feature(False)} AS f FROM registry.cameras c WHERE {_SCOPE}"  # noqa: S608 - constants only
        " AND ST_Intersects(c.geom, ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)) ORDER BY c.id LIMIT $3"
    )
    return [Statement("fetchrow", _page(inner), (agency, json.dumps(q.hexagon), limit))]


def bbox_sql(agency: uuid.UUID, q: Query, limit: int) -> list[Statement]:
    inner = (
        f"SELECT {_feature(False)} AS f FROM registry.cameras c WHERE {_SCOPE}"  # noqa: S608 - constants only
        " AND c.geom && ST_MakeEnvelope($2, $3, $4, $5, 4326) ORDER BY c.id LIMIT $6"
    )
    return [Statement("fetchrow", _page(inner), (agency, *q.bbox, limit))]


def route_sql(agency: uuid.UUID, q: Query, limit: int) -> list[Statement]:
    """Cameras within the buffer of the path (geodesic, an index prefilter by the path's box expanded), in the
    order of their position along it (planar ST_LineLocatePoint: the raw floor, not the service's geodesic
    measure)."""
    path = "ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)"
    xs, ys = [p[0] for p in q.route], [p[1] for p in q.route]
    w, s, _, _ = _box(Query(min(xs), min(ys)), ROUTE_BUFFER_M)
    _, _, e, n = _box(Query(max(xs), max(ys)), ROUTE_BUFFER_M)
    inner = (
        f"SELECT {_feature(False)} AS f FROM registry.cameras c WHERE {_SCOPE}"  # noqa: S608 - constants only
        f" AND c.geom && ST_MakeEnvelope($3, $4, $5, $6, 4326) AND ST_DWithin(c.geom::geography, {path}::geography, $7)"
        f" ORDER BY ST_LineLocatePoint({path}, c.geom), c.id LIMIT $8"
    )
    geojson = json.dumps({"type": "LineString", "coordinates": q.route})
    return [Statement("fetchrow", _page(inner), (agency, geojson, w, s, e, n, ROUTE_BUFFER_M, limit))]


def geo_sql(shape: Shape) -> Callable[[uuid.UUID, Query], list[Statement]]:
    """The bench's own SQL for `shape` (used where geo_query's could not be captured)."""
    kind = shape.key.rstrip("0123456789").removesuffix("_cad")
    limit = shape.limit or ALL
    if kind == "nearest":
        return nearest_sql
    if kind == "radius":
        return lambda a, q: radius_sql(a, q, limit)
    if kind == "polygon":
        return lambda a, q: polygon_sql(a, q, limit)
    if kind == "bbox":
        return lambda a, q: bbox_sql(a, q, limit)
    if kind == "route":
        return lambda a, q: route_sql(a, q, limit)
    raise ValueError(shape.key)


# ------------------------------------------------------------------------------------------------------ driver


async def _init(conn: asyncpg.Connection) -> None:
    # As geo_query's pool: JSON comes back as text, passed through.
    await conn.set_type_codec("json", encoder=str, decoder=str, schema="pg_catalog")
    await conn.set_type_codec("jsonb", encoder=str, decoder=str, schema="pg_catalog")


async def connect(url: str, clients: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=clients,
        max_size=clients,
        init=_init,
        server_settings={
            "application_name": "canvass-bench-raw",
            "statement_timeout": "5000",
            "timezone": "UTC",
            "default_transaction_read_only": "on",
        },
    )
    assert pool is not None
    return pool


async def run(conn: asyncpg.Connection, statements: list[Statement]) -> Any:
    if any(s.sql.startswith("SET LOCAL ") for s in statements):
        # As geo_query runs them: the settings hold for the search's statements, in one read-only transaction.
        async with conn.transaction(readonly=True):
            return await _run(conn, statements)
    return await _run(conn, statements)


async def _run(conn: asyncpg.Connection, statements: list[Statement]) -> Any:
    result: Any = None
    for s in statements:
        if s.method == "cursor":
            rows = []
            async with conn.transaction(readonly=True):
                async for r in conn.cursor(s.sql, *s.args, prefetch=1000):
                    rows.append(r)
            result = rows
        else:
            result = await getattr(conn, s.method)(s.sql, *s.args)
    return result


def returned(result: Any) -> int | None:
    """How many Features a page held, from the last statement's result."""
    if isinstance(result, asyncpg.Record) and "n" in result.keys():
        return int(result["n"])
    if isinstance(result, list):
        return len(result)
    return None


async def run_cell(
    pool: asyncpg.Pool,
    requests: list[list[Statement]],
    clients: int,
    seconds: float,
    max_requests: int,
    cell: Cell,
) -> Cell:
    latencies: list[float] = []
    errors = 0
    next_i = 0
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        nonlocal next_i, errors
        async with pool.acquire() as conn:
            while next_i < max_requests and time.perf_counter() < deadline:
                i = next_i
                next_i += 1
                stmts = requests[(i + offset) % len(requests)]
                t = time.perf_counter()
                try:
                    await run(conn, stmts)
                except (TimeoutError, asyncpg.PostgresError):
                    errors += 1
                latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c * 37) for c in range(clients)))
    cell.seconds = time.perf_counter() - t0
    cell.requests = len(latencies)
    cell.errors = errors
    if errors:
        cell.note = f"{errors} errors"
    latencies.sort()
    if latencies:
        cell.p50, cell.p95, cell.p99 = (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 for p in (0.50, 0.95, 0.99)
        )
    return cell


async def warm(pool: asyncpg.Pool, requests: list[list[Statement]], seconds: float) -> list[int]:
    """Run each request once (bounded in time) on one connection: caches, prepared statements; the page sizes."""
    counts: list[int] = []
    deadline = time.perf_counter() + seconds
    async with pool.acquire() as conn:
        for stmts in requests:
            n = returned(await run(conn, stmts))
            if n is not None:
                counts.append(n)
            if time.perf_counter() > deadline:
                break
    return counts
