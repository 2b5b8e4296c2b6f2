"""The coverage map: how many registered, shared cameras each hexagonal cell holds, per agency program.

`GET /v1/coverage` is public (no token): one program's cells at 1 km or 5 km, only those holding at least the
program's `coverage_min_cameras` (k, never below 5), each count rounded down to a multiple of 5.
`GET /v1/coverage/agency` is the agency admin's: the exact counts at 250 m, 1 km or 5 km inside the agency's own
jurisdiction, and the cells of the jurisdiction holding none (where to recruit), audited like every agency read.
`GET /v1/tiles/coverage/{z}/{x}/{y}.mvt` and `GET /v1/tiles/coverage.json`: the public cells as vector tiles (as
the camera tiles of tiles.py, drawn by `ST_AsMVT`) and their TileJSON.

The cells are PostGIS `ST_HexagonGrid` hexagons of the global equal-area grid EPSG:6933 (origin 0,0; `size_m` is
the hexagon's edge), nested: a camera's 1 km cell is the one containing its 250 m cell's centre, its 5 km cell the
one containing that 1 km cell's centre. The counts are kept per (agency, size, cell) in `registry.coverage_counts`
by triggers on the cameras (migration 0030; serialised per agency with its recounts by migration 0032), in the
writer's transaction: an answer counts exactly the committed cameras the agency sees (`registry.sees`), never a
camera already deleted, paused or unshared. A city-wide answer reads one row per cell, whatever the number of
cameras. See docs/decisions/0009-coverage-cells.md for why, and
for what the public answers reveal about one camera.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.geo_query.audit_log import audit_log
from services.geo_query.database import db
from services.geo_query.dependencies import BBox, parse_bbox
from services.geo_query.features import NO_STORE
from services.geo_query.tiles import TILEJSON_SCHEMA
from shared.audit import AuditEvent
from shared.auth import Principal, require_roles
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import GEOJSON_MEDIA_TYPE, GeoJSONResponse, JSONResponse

TAG = "coverage"
SIZES = (250, 1000, 5000)  # the hexagons' edges, metres of EPSG:6933; the grids of migration 0030
PUBLIC_MIN_SIZE_M = 1000  # a public cell covers at least 2.6 km²
PUBLIC_SIZES = tuple(s for s in SIZES if s >= PUBLIC_MIN_SIZE_M)
ROUND_TO = 5
# The public answer is the same for every caller and changes only when cameras do: caches may keep it this long.
PUBLIC_MAX_AGE_S = 60
# An agency answer lists every cell of the jurisdiction (or of the bbox within it); beyond this many, ask for a
# larger size or a bbox.
MAX_CELLS = 20_000
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"

router = APIRouter(prefix="/v1/coverage", tags=[TAG])

# A hexagon (i, j) of size $2, as GeoJSON in lon/lat.
_HEXAGON = "ST_SetSRID(ST_Hexagon($2::float8, {i}, {j}), 6933)"
_GEOJSON = "ST_AsGeoJSON(ST_Transform(" + _HEXAGON + ", 4326), 6)"
# The bbox ($3, GeoJSON in lon/lat, or null for everywhere) in the grid's CRS. Latitudes are clamped a hair inside
# the poles, where the equal-area projection ends.
_AREA = (
    "ST_Transform(ST_Intersection(ST_SetSRID(ST_GeomFromGeoJSON($3::text), 4326),"
    " ST_MakeEnvelope(-180, -89.9, 180, 89.9, 4326)), 6933)"
)

PUBLIC_SQL = f"""
SELECT a.coverage_min_cameras AS k,
       coalesce(jsonb_agg(jsonb_build_array(c.i, c.j, c.cameras, {_GEOJSON.format(i="c.i", j="c.j")})
                          ORDER BY c.i, c.j) FILTER (WHERE c.i IS NOT NULL), '[]')::text AS cells
  FROM registry.agencies a
  LEFT JOIN registry.coverage_counts c
    ON c.agency_id = a.id AND c.size_m = $2 AND c.cameras >= a.coverage_min_cameras
   AND ($3::text IS NULL OR ST_Intersects({_HEXAGON.format(i="c.i", j="c.j")}, {_AREA}))
 WHERE a.slug = $1
 GROUP BY a.id
"""  # noqa: S608  (no caller text: the values are bound)

# The jurisdiction (within the bbox, if any) in lon/lat, and the area in m² the grid is laid over: the envelopes of
# its parts (the grid is equal-area), so a program of scattered towns is not gridded across the land between them.
AGENCY_AREA_SQL = f"""
SELECT (SELECT coalesce(sum(ST_Area(ST_Envelope(d.geom))), 0) FROM ST_Dump(g) d) AS area_m2,
       ST_AsGeoJSON(ST_Transform(g, 4326), 6) AS area
  FROM (SELECT CASE WHEN $3::text IS NULL THEN ST_Transform(a.jurisdiction, 6933)
                    ELSE ST_Intersection(ST_Transform(a.jurisdiction, 6933), {_AREA}) END AS g
          FROM registry.agencies a WHERE a.id = $1 AND $2::integer > 0) s
"""  # noqa: S608

# Every cell meeting the jurisdiction (within the bbox), with its count or 0; and any counted cell beyond it (a
# camera near the boundary counted in a coarser cell whose hexagon lies outside, by the nesting rule).
AGENCY_SQL = f"""
WITH area AS (
    SELECT CASE WHEN $3::text IS NULL THEN ST_Transform(a.jurisdiction, 6933)
                ELSE ST_Intersection(ST_Transform(a.jurisdiction, 6933), {_AREA}) END AS g
      FROM registry.agencies a WHERE a.id = $1
), grid AS (
    SELECT DISTINCT h.i, h.j
      FROM area, ST_Dump(area.g) part, ST_HexagonGrid($2::float8, part.geom) h
     WHERE ST_Intersects(h.geom, part.geom)
), counted AS (
    SELECT c.i, c.j, c.cameras FROM registry.coverage_counts c
     WHERE c.agency_id = $1 AND c.size_m = $2 AND c.cameras > 0
       AND ($3::text IS NULL OR ST_Intersects({_HEXAGON.format(i="c.i", j="c.j")}, {_AREA}))
)
SELECT coalesce(jsonb_agg(jsonb_build_array(x.i, x.j, x.cameras, {_GEOJSON.format(i="x.i", j="x.j")})
                          ORDER BY x.i, x.j), '[]')::text
  FROM (SELECT coalesce(g.i, c.i) AS i, coalesce(g.j, c.j) AS j, coalesce(c.cameras, 0) AS cameras
          FROM grid g FULL JOIN counted c ON c.i = g.i AND c.j = g.j) x
"""  # noqa: S608


async def agency_cells(conn: Any, agency_id: Any, size_m: int, area: str | None) -> str:
    """AGENCY_SQL's answer (a JSON array of [i, j, count, polygon]). The planner prices ST_HexagonGrid as a
    million-row function and would JIT-compile a statement that runs in milliseconds (240 ms of a 260 ms answer)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL jit = off")
        return str(await conn.fetchval(AGENCY_SQL, agency_id, size_m, area))


def hexagon_area_m2(size_m: int) -> float:
    return 3 * 3**0.5 / 2 * size_m**2


def _bbox(bbox: str | None) -> BBox | None:
    return parse_bbox(bbox, None) if bbox is not None else None


def _collection(size_m: int, cells: list[list[Any]], members: dict[str, Any], public: bool) -> bytes:
    """The cells (i, j, count, GeoJSON polygon) as a FeatureCollection; a public answer's counts rounded down."""
    features = [
        {
            "type": "Feature",
            "id": f"{size_m}/{i}/{j}",
            "geometry": orjson.Fragment(geom),
            "properties": {
                "size_m": size_m,
                "i": i,
                "j": j,
                "cameras": n // ROUND_TO * ROUND_TO if public else n,
            },
        }
        for i, j, n, geom in cells
    ]
    return orjson.dumps({"type": "FeatureCollection", "size_m": size_m, **members, "features": features})


AgencySize = Annotated[
    int,
    Query(
        description="The hexagons' edge in metres (equal-area grid EPSG:6933)",
        examples=[1000],
        json_schema_extra={"enum": list(SIZES)},
    ),
]
PublicSize = Annotated[
    int,
    Query(
        description=f"The hexagons' edge in metres (equal-area grid EPSG:6933); at least {PUBLIC_MIN_SIZE_M} m",
        examples=[1000],
        json_schema_extra={"enum": list(PUBLIC_SIZES)},
    ),
]


def _size(size: int, allowed: tuple[int, ...]) -> int:
    if size not in allowed:
        why = f" (a public cell is at least {PUBLIC_MIN_SIZE_M} m)" if allowed != SIZES else ""
        raise invalid("/query/size", f"size must be one of {', '.join(map(str, allowed))}{why}")
    return size


BBoxQuery = Annotated[
    str | None,
    Query(
        description="Only the cells meeting this box: west,south,east,north in degrees (lon/lat)",
        examples=["-87.95,43.0,-87.88,43.08"],
    ),
]

_FEATURE_EXAMPLE: dict[str, Any] = {
    "type": "Feature",
    "id": "1000/-4544/3061",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [
                [-87.916534, 43.03211],
                [-87.911353, 43.019776],
                [-87.90099, 43.019776],
                [-87.895809, 43.03211],
                [-87.90099, 43.044436],
                [-87.911353, 43.044436],
                [-87.916534, 43.03211],
            ]
        ],
    },
    "properties": {"size_m": 1000, "i": -4544, "j": 3061, "cameras": 15},
}
_COLLECTION_SCHEMA = {
    "type": "object",
    "required": ["type", "size_m", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "size_m": {"type": "integer"},
        "agency": {"type": "string"},
        "min_cameras": {"type": "integer"},
        "rounded_to": {"type": "integer"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": {"type": "string", "enum": ["Feature"]},
                    "id": {"type": "string"},
                    "geometry": {"type": "object"},
                    "properties": {
                        "type": "object",
                        "required": ["size_m", "i", "j", "cameras"],
                        "properties": {
                            "size_m": {"type": "integer"},
                            "i": {"type": "integer"},
                            "j": {"type": "integer"},
                            "cameras": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
    },
}


def _ok(example: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {GEOJSON_MEDIA_TYPE: {"schema": _COLLECTION_SCHEMA, "example": example}},
            "description": description,
        }
    }


@router.get(
    "",
    summary="Public coverage map of an agency program: cameras per hexagonal cell, privacy-safe",
    description=(
        "The cells (hexagons of edge `size` metres on the equal-area grid EPSG:6933) in which the program's"
        " registered cameras shared with the agency lie, as a GeoJSON FeatureCollection. Only cells holding at"
        " least the program's `min_cameras` (k, at least 5) appear, and each count is rounded down to a multiple"
        f" of {ROUND_TO}; cells are at least {PUBLIC_MIN_SIZE_M} m. No token needed; not audited (no one's data"
        f" is read). The answer may be cached for {PUBLIC_MAX_AGE_S} s."
    ),
    response_class=GeoJSONResponse,
    responses={
        **_ok(
            {
                "type": "FeatureCollection",
                "agency": "milwaukee-pd",
                "size_m": 1000,
                "min_cameras": 5,
                "rounded_to": ROUND_TO,
                "features": [_FEATURE_EXAMPLE],
            },
            "The cells with at least k cameras, counts rounded down to a multiple of 5",
        ),
        **problem_responses(400, 404, 503),
    },
)
async def public_coverage(
    agency: Annotated[
        str, Query(pattern=SLUG_PATTERN, description="The agency program's slug", examples=["milwaukee-pd"])
    ],
    size: PublicSize = 1000,
    bbox: BBoxQuery = None,
) -> Response:
    size_m = _size(size, PUBLIC_SIZES)
    box = _bbox(bbox)
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(PUBLIC_SQL, agency, size_m, box.geojson() if box else None)
    if row is None:
        raise Problem(404, f"There is no agency program {agency!r}.")
    members = {"agency": agency, "min_cameras": row["k"], "rounded_to": ROUND_TO}
    body = _collection(size_m, orjson.loads(row["cells"]), members, public=True)
    return GeoJSONResponse(body, headers={"Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_S}"})


AgencyAdmin = Annotated[Principal, require_roles("agency_admin")]


@router.get(
    "/agency",
    summary="The agency's own coverage map: exact counts per cell, and the cells with none",
    description=(
        "For the agency admin: every cell of the agency's jurisdiction (within `bbox`, if given) with the exact"
        " number of registered cameras shared with the agency in it, 0 included (where to recruit), as a GeoJSON"
        f" FeatureCollection. At most {MAX_CELLS} cells: choose a larger size or a bbox. Audited."
    ),
    response_class=GeoJSONResponse,
    responses={
        **_ok(
            {
                "type": "FeatureCollection",
                "agency": "milwaukee-pd",
                "size_m": 1000,
                "features": [
                    _FEATURE_EXAMPLE | {"properties": _FEATURE_EXAMPLE["properties"] | {"cameras": 17}}
                ],
            },
            "Every cell of the jurisdiction, with its exact count",
        ),
        **problem_responses(400, 401, 403, 503),
    },
)
async def agency_coverage(
    principal: AgencyAdmin, size: AgencySize = 1000, bbox: BBoxQuery = None
) -> Response:
    size_m = _size(size, SIZES)
    box = _bbox(bbox)
    area = box.geojson() if box else None
    slug = principal.agency
    assert slug is not None
    async with pooled(db.read) as conn:
        agency_id = await conn.fetchval("SELECT id FROM registry.agencies WHERE slug = $1", slug)
        if agency_id is None:
            raise Problem(403, f"The token's agency {slug!r} is not registered with Canvass.")
        extent = await conn.fetchrow(AGENCY_AREA_SQL, agency_id, size_m, area)
        if extent["area_m2"] / hexagon_area_m2(size_m) > MAX_CELLS:
            raise invalid(
                "/query/size",
                f"the area holds more than {MAX_CELLS} cells of {size_m} m: choose a larger size or a bbox",
            )
        cells = orjson.loads(await agency_cells(conn, agency_id, size_m, area))
    await audit_log.append(
        AuditEvent(
            service="geo_query",
            actor=principal.sub,
            actor_role="agency_admin",
            agency=slug,
            action="coverage.read",
            area_geojson=extent["area"] if box else None,
            details={"size_m": size_m, "cells": len(cells), "empty": sum(1 for c in cells if c[2] == 0)},
        )
    )
    body = _collection(size_m, cells, {"agency": slug}, public=False)
    return GeoJSONResponse(body, headers=NO_STORE)


# ------------------------------------------------------------------------------------------------ as tiles

TILE_LAYER = "coverage"
TILE_MIN_ZOOM, TILE_MAX_ZOOM = 6, 16
TILE_FIELDS = {
    "cameras": "Number: the cell's cameras, rounded down to a multiple of 5 (only cells with at least k)",
    "size_m": "Number: the hexagon's edge in metres (5000 below zoom 12, 1000 from zoom 12)",
    "i": "Number: the cell's column in the grid",
    "j": "Number: the cell's row in the grid",
}

# The public cells of program $4 meeting tile z/x/y, at size $5, drawn in the tile by PostGIS. Only the columns and
# rows whose hexagons can reach the tile are read, by the primary key (agency, size, i, j): a hexagon of column i
# spans 1.5·size·i ± size in x, of row j sqrt(3)·size·(j + 0 or ½) ± sqrt(3)/2·size in y, and the range is taken
# from the tile's envelope drawn in the grid's CRS with its edges' curve (segmentized), so it holds every cell the
# exact test below keeps. Without it every counted cell of the program was built and tested for each tile.
TILE_SQL = f"""
WITH t AS (SELECT ST_TileEnvelope($1, $2, $3) AS env),
a AS (SELECT id, coverage_min_cameras AS k FROM registry.agencies WHERE slug = $4),
g AS (SELECT ST_Transform(ST_Segmentize(t.env, (ST_XMax(t.env) - ST_XMin(t.env)) / 16), 6933) AS e FROM t),
r AS (
    SELECT floor((ST_XMin(e) - $5) / (1.5 * $5))::integer AS i0, ceil((ST_XMax(e) + $5) / (1.5 * $5))::integer AS i1,
           floor(ST_YMin(e) / (sqrt(3) * $5))::integer - 1 AS j0, ceil(ST_YMax(e) / (sqrt(3) * $5))::integer + 1 AS j1
      FROM g
),
q AS (
    SELECT ST_AsMVTGeom(ST_Transform({_HEXAGON.format(i="c.i", j="c.j").replace("$2", "$5")}, 3857), t.env,
                        4096, 64, true) AS geom,
           c.cameras / {ROUND_TO} * {ROUND_TO} AS cameras, $5::integer AS size_m, c.i, c.j
      FROM registry.coverage_counts c, a, t, r
     WHERE c.agency_id = a.id AND c.size_m = $5 AND c.i BETWEEN r.i0 AND r.i1 AND c.j BETWEEN r.j0 AND r.j1
       AND c.cameras >= a.k
       AND ST_Intersects({_HEXAGON.format(i="c.i", j="c.j").replace("$2", "$5")}, ST_Transform(t.env, 6933))
)
SELECT (SELECT id FROM a) IS NOT NULL AS known, (SELECT ST_AsMVT(q, '{TILE_LAYER}', 4096, 'geom') FROM q) AS tile
"""  # noqa: S608

TILE_BOUNDS_SQL = (
    "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)"
    " FROM (SELECT ST_Envelope(jurisdiction) AS b FROM registry.agencies WHERE slug = $1) s"
)


def tile_size_m(z: int) -> int:
    """The cells a tile of zoom z shows: 5 km ones while a tile spans tens of kilometres, 1 km ones closer in."""
    return 5000 if z < 12 else PUBLIC_MIN_SIZE_M


tiles_router = APIRouter(prefix="/v1/tiles", tags=[TAG])
AgencySlug = Annotated[
    str, Query(pattern=SLUG_PATTERN, description="The agency program's slug", examples=["milwaukee-pd"])
]


@tiles_router.get(
    "/coverage/{z}/{x}/{y}.mvt",
    summary="Public coverage cells of an agency program as a vector tile",
    description=(
        f"The public coverage map's cells (as `GET /v1/coverage`: at least k cameras, counts rounded down to"
        f" {ROUND_TO}) meeting tile z/x/y of the Web Mercator grid (XYZ), as a Mapbox Vector Tile: layer"
        f" `{TILE_LAYER}`, polygons with the attributes of the TileJSON document's `vector_layers`; 5 km cells"
        f" below zoom 12, 1 km cells from zoom 12. Zoom {TILE_MIN_ZOOM} to {TILE_MAX_ZOOM}. No token; not audited."
    ),
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/vnd.mapbox-vector-tile": {
                    "schema": {"type": "string", "format": "binary"},
                    "examples": {
                        "empty": {"summary": "A tile with no public cell: an empty body", "value": ""}
                    },
                }
            },
            "description": "The tile",
        },
        **problem_responses(400, 404, 422, 503),
    },
)
async def coverage_tile(
    agency: AgencySlug,
    z: Annotated[int, Path(ge=TILE_MIN_ZOOM, le=TILE_MAX_ZOOM, description="Zoom level", examples=[12])],
    x: Annotated[int, Path(ge=0, description="Tile column (x), 0 to 2^z − 1", examples=[1047])],
    y: Annotated[int, Path(ge=0, description="Tile row (y, from the north), 0 to 2^z − 1", examples=[1493])],
) -> Response:
    n = 1 << z
    if x >= n or y >= n:
        raise Problem(404, f"There is no tile {z}/{x}/{y}: at zoom {z}, x and y run from 0 to {n - 1}.")
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(TILE_SQL, z, x, y, agency, tile_size_m(z))
    if not row["known"]:
        raise Problem(404, f"There is no agency program {agency!r}.")
    return Response(
        content=row["tile"] or b"",
        media_type="application/vnd.mapbox-vector-tile",
        headers={"Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_S}"},
    )


@tiles_router.get(
    "/coverage.json",
    summary="The TileJSON document of a program's public coverage tiles",
    description=(
        "TileJSON 3.0.0 for one program's public coverage tiles: the tile URL template (with the program's slug),"
        f" the zoom range, the bounds of its jurisdiction, and the `{TILE_LAYER}` layer's fields. No token."
    ),
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": TILEJSON_SCHEMA,
                    "example": {
                        "tilejson": "3.0.0",
                        "name": "Public coverage of milwaukee-pd",
                        "scheme": "xyz",
                        "tiles": [
                            "https://canvass.example/v1/tiles/coverage/{z}/{x}/{y}.mvt?agency=milwaukee-pd"
                        ],
                        "minzoom": TILE_MIN_ZOOM,
                        "maxzoom": TILE_MAX_ZOOM,
                        "bounds": [-88.07, 42.92, -87.86, 43.19],
                        "vector_layers": [
                            {
                                "id": TILE_LAYER,
                                "fields": TILE_FIELDS,
                                "minzoom": TILE_MIN_ZOOM,
                                "maxzoom": TILE_MAX_ZOOM,
                            }
                        ],
                    },
                }
            },
            "description": "The TileJSON document",
        },
        **problem_responses(400, 404, 503),
    },
)
async def coverage_tilejson(request: Request, agency: AgencySlug) -> JSONResponse:
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(TILE_BOUNDS_SQL, agency)
    if row is None:
        raise Problem(404, f"There is no agency program {agency!r}.")
    base = str(request.base_url).rstrip("/")
    doc = {
        "tilejson": "3.0.0",
        "name": f"Public coverage of {agency}",
        "scheme": "xyz",
        "tiles": [f"{base}/v1/tiles/coverage/{{z}}/{{x}}/{{y}}.mvt?agency={agency}"],
        "minzoom": TILE_MIN_ZOOM,
        "maxzoom": TILE_MAX_ZOOM,
        "bounds": [round(float(v), 6) for v in row],
        "vector_layers": [
            {"id": TILE_LAYER, "fields": TILE_FIELDS, "minzoom": TILE_MIN_ZOOM, "maxzoom": TILE_MAX_ZOOM}
        ],
    }
    return JSONResponse(doc, headers={"Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_S}"})
