"""The cameras as Mapbox Vector Tiles: `GET /v1/tiles/cameras/{z}/{x}/{y}.mvt`, made by PostGIS (`ST_AsMVT`,
`ST_AsMVTGeom`) from the cameras the caller may see (the same scoping as every search, `registry.sees`: the
caller's agency among the camera's `visible_to`, the camera inside the agency's jurisdiction), and its TileJSON
document.

A map asks for tiles in bursts (a dozen at each pan or zoom), so one audit record stands for a burst: the record of
a *block* — the 4 × 4 tiles of one tile two zoom levels up — is appended, before any of its tiles is answered, by
the first tile of the block the caller asks for; the block's other tiles asked by the same caller (same agency,
subject and case) within BURST_S seconds are answered under it. The record's area is the whole block, so a place
search of the trail finds it wherever in the block a camera was seen. Concurrent tiles of a new block wait for its
one record; if the database refuses it, each of them fails (503) and the next tile of the block tries again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from services.geo_query.audit_log import audit_log
from services.geo_query.database import db
from services.geo_query.dependencies import CaseReference, CurrentCaller
from services.geo_query.service import sees
from shared.audit import AuditEvent
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.settings import get_settings

TAG = "tiles"
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# Below zoom 9 a tile spans a whole region (a city's program is a few tiles at 9); the map clusters there.
MIN_ZOOM, MAX_ZOOM = 9, 22
EXTENT, BUFFER = 4096, 64
BURST_S = 60.0
BURST_LEVELS = 2  # a block is the 2**BURST_LEVELS × 2**BURST_LEVELS tiles of one tile that many levels up
MAX_BURSTS = 10_000  # per process, oldest forgotten first
LAYER = "cameras"
FIELDS = {
    "id": "String: the camera's id",
    "owner_kind": "String: residential, business, school, place_of_worship, nonprofit or government",
    "placement": "String: outdoor or indoor",
    "live_mode": "String: never, on_alert or emergency (when the owner shares the live stream: Level 2 windows)",
    "direction_deg": "Number: the direction the camera faces, degrees clockwise from north (absent: unknown)",
    "fov_deg": "Number: its horizontal field of view in degrees",
    "range_m": "Number: how far it sees, in metres",
    "cameras": (
        "Number: how many cameras the point stands for: 1 from zoom 13; below it, the cameras of one owner kind,"
        " placement and live mode within the same 8 pixels, drawn at one point"
        " at their mean position with the id of one of them (direction, field of view and range only when it stands for one)"
    ),
}

router = APIRouter(prefix="/v1/tiles", tags=[TAG])

# Below this zoom a point stands for the cameras of one kind within a few pixels: a dense metro's zoom-12 tile held
# tens of thousands of cameras (2.7 MB for 60,000; 3 MB on average and up to 13 MB in the bench's dense metro), far
# more dots than a 256-pixel tile can show apart. Grouped by owner kind, placement and live mode, the map's filters
# still apply to what is drawn. At zoom 13 grouping saved under a tenth of the bytes for twice the database's time.
GROUP_BELOW_ZOOM = 13


def group_units(z: int) -> int:
    """The grid, in tile units, whose cells' cameras of one kind become one point: 0 (none) from GROUP_BELOW_ZOOM,
    8 pixels of a 256-pixel tile below it (the map's dots there are 4 pixels wide)."""
    return 0 if z >= GROUP_BELOW_ZOOM else EXTENT // 256 * 8


# One statement: the tile's envelope (and its buffer) in Web Mercator, the cameras the agency may see inside it
# found through the GiST index on their lon/lat, clipped and encoded by PostGIS. $4 is the agency's id.
_CAMERAS = f"""
WITH t AS (
    SELECT ST_TileEnvelope($1, $2, $3) AS env,
           ST_Transform(ST_TileEnvelope($1, $2, $3, margin => {BUFFER / EXTENT}), 4326) AS search
), c AS (
    SELECT ST_AsMVTGeom(ST_Transform(c.geom, 3857), t.env, {EXTENT}, {BUFFER}, true) AS geom,
           c.id::text AS id, c.owner_kind, c.placement, c.live_mode,
           c.direction_deg, c.fov_deg, c.range_m
      FROM registry.cameras c, t
     WHERE c.geom && t.search
       AND {sees("$4::uuid")}
)"""  # noqa: S608  (no caller text: the numbers are bound)
_ENCODE = f"SELECT ST_AsMVT(q, '{LAYER}', {EXTENT}, 'geom') FROM q"  # noqa: S608  (constants)
TILE_SQL = f"""{_CAMERAS}, q AS (SELECT c.*, 1 AS cameras FROM c)
{_ENCODE}
"""  # noqa: S608
# $5: group_units(z). Cells are floor(position / $5): the tile's edges are cells' edges, so a group lies wholly in
# the tile or wholly in its buffer, and a camera is counted by exactly one tile. The point is the mean position of
# its cameras (no lattice on the map); the id the smallest of theirs.
GROUPED_TILE_SQL = f"""{_CAMERAS}, g AS (
    SELECT c.*, ST_X(c.geom) AS px, ST_Y(c.geom) AS py,
           floor(ST_X(c.geom) / $5::float8) AS gx, floor(ST_Y(c.geom) / $5::float8) AS gy
      FROM c WHERE c.geom IS NOT NULL
), q AS (
    SELECT ST_MakePoint(floor(avg(g.px)), floor(avg(g.py))) AS geom, min(g.id) AS id,
           g.owner_kind, g.placement, g.live_mode,
           CASE WHEN count(*) = 1 THEN min(g.direction_deg) END AS direction_deg,
           CASE WHEN count(*) = 1 THEN min(g.fov_deg) END AS fov_deg,
           CASE WHEN count(*) = 1 THEN min(g.range_m) END AS range_m,
           count(*)::integer AS cameras
      FROM g
     GROUP BY g.gx, g.gy, g.owner_kind, g.placement, g.live_mode
)
{_ENCODE}
"""  # noqa: S608

BOUNDS_SQL = (
    "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)"
    " FROM (SELECT ST_Envelope(jurisdiction) AS b FROM registry.agencies WHERE id = $1::uuid) s"
)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """west, south, east, north (degrees) of tile z/x/y of the Web Mercator grid."""
    n = 2.0**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def envelope_geojson(west: float, south: float, east: float, north: float) -> str:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return '{"type":"Polygon","coordinates":[' + repr(ring).replace(" ", "") + "]}"


class Bursts:
    """Which blocks' records this process has appended lately, per caller: the record (a future, while it is being
    appended) and when it stops covering new tiles."""

    def __init__(self) -> None:
        self._records: OrderedDict[tuple[Any, ...], tuple[float, asyncio.Future[None]]] = OrderedDict()

    async def covered(self, key: tuple[Any, ...], append: Any) -> None:
        """Returns once a committed record covers `key`'s block: an earlier one of the burst, or one appended now
        by calling `append()`. Raises what the append raised."""
        now = time.monotonic()
        held = self._records.get(key)
        if held is not None and held[0] > now and not (held[1].done() and held[1].exception() is not None):
            await asyncio.shield(held[1])
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._records[key] = (now + BURST_S, fut)
        self._records.move_to_end(key)
        while len(self._records) > MAX_BURSTS:
            self._records.popitem(last=False)
        try:
            await append()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: a burst nobody else waits on does not warn
            raise
        fut.set_result(None)

    def clear(self) -> None:
        self._records.clear()


bursts = Bursts()


def _tile(z: int, x: int, y: int) -> None:
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise invalid("/path/z", f"tiles are served from zoom {MIN_ZOOM} to {MAX_ZOOM}")
    n = 1 << z
    # A column or row beyond the grid names no tile (as a tile server answers it): not found, not invalid.
    if x >= n or y >= n:
        raise Problem(404, f"There is no tile {z}/{x}/{y}: at zoom {z}, x and y run from 0 to {n - 1}.")


Zoom = Annotated[int, Path(description="Zoom level", ge=MIN_ZOOM, le=MAX_ZOOM, examples=[14])]
Column = Annotated[int, Path(description="Tile column (x), 0 to 2^z − 1", ge=0, examples=[4823])]
Row = Annotated[int, Path(description="Tile row (y, from the north), 0 to 2^z − 1", ge=0, examples=[6160])]


@router.get(
    "/cameras/{z}/{x}/{y}.mvt",
    summary="A vector tile of the cameras shared with the agency",
    description=(
        "The cameras shared with the caller's agency inside its jurisdiction that fall in tile z/x/y of the Web"
        f" Mercator grid (XYZ scheme), as a Mapbox Vector Tile: layer `{LAYER}`, extent {EXTENT}, points with the"
        " attributes of the TileJSON document's `vector_layers`: one point per camera from zoom"
        f" {GROUP_BELOW_ZOOM}; below it one point per owner kind, placement and live mode within a few pixels,"
        " with the number of cameras it stands for (`cameras`). Empty when no camera falls in the tile. Audited"
        f" like every search, one record per burst: the first tile a caller asks for in a block of"
        f" {2**BURST_LEVELS}×{2**BURST_LEVELS} tiles appends a record whose area is the block, and the block's"
        f" other tiles asked for by the same caller and case within {BURST_S:g} s are answered under it."
    ),
    response_class=Response,
    responses={
        200: {
            "content": {
                MVT_MEDIA_TYPE: {
                    "schema": {"type": "string", "format": "binary"},
                    "examples": {
                        "empty": {"summary": "A tile with no camera in it: an empty body", "value": ""}
                    },
                }
            },
            "description": "The tile",
        },
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def camera_tile(
    caller: CurrentCaller, reference: CaseReference, z: Zoom, x: Column, y: Row
) -> Response:
    _tile(z, x, y)
    shift = BURST_LEVELS
    block = (z - shift, x >> shift, y >> shift)
    p = caller.principal
    key = (caller.agency.slug, p.sub, reference.audit_value, *block)

    async def append() -> None:
        west, south, east, north = tile_bounds(*block)
        await audit_log.append(
            AuditEvent(
                service="geo_query",
                actor=p.sub,
                actor_role=caller.role,
                agency=caller.agency.slug,
                action="search.tiles",
                case_number=reference.audit_value,
                area_geojson=envelope_geojson(west, south, east, north),
                details={
                    "zoom": z,
                    "block": list(block),
                    "tiles": f"the {2**shift}x{2**shift} tiles at zoom {z} of tile {block[0]}/{block[1]}/{block[2]}",
                    "burst_s": BURST_S,
                    **({"cad_incident": reference.cad_incident} if reference.cad_incident else {}),
                },
            )
        )

    await bursts.covered(key, append)
    async with pooled(db.read) as conn:
        units = group_units(z)
        if units:
            tile: bytes = await conn.fetchval(GROUPED_TILE_SQL, z, x, y, caller.agency.id, units)
        else:
            tile = await conn.fetchval(TILE_SQL, z, x, y, caller.agency.id)
    return Response(
        content=tile or b"", media_type=MVT_MEDIA_TYPE, headers={"Cache-Control": "private, no-store"}
    )


# The TileJSON 3.0.0 document's schema, as every TileJSON operation of the service answers it.
TILEJSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tilejson", "tiles", "minzoom", "maxzoom", "vector_layers"],
    "properties": {
        "tilejson": {"type": "string", "enum": ["3.0.0"]},
        "name": {"type": "string"},
        "scheme": {"type": "string", "enum": ["xyz"]},
        "tiles": {"type": "array", "items": {"type": "string"}},
        "minzoom": {"type": "integer"},
        "maxzoom": {"type": "integer"},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "vector_layers": {"type": "array", "items": {"type": "object"}},
    },
}


@router.get(
    "/cameras.json",
    summary="The TileJSON document of the camera tiles",
    description=(
        "TileJSON 3.0.0 for the caller's agency: the tile URL template, the zoom range, the bounds of the agency's"
        f" jurisdiction, and the `{LAYER}` layer's fields."
    ),
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": TILEJSON_SCHEMA,
                    "example": {
                        "tilejson": "3.0.0",
                        "name": "Cameras shared with milwaukee-pd",
                        "scheme": "xyz",
                        "tiles": ["https://canvass.example/v1/tiles/cameras/{z}/{x}/{y}.mvt"],
                        "minzoom": MIN_ZOOM,
                        "maxzoom": MAX_ZOOM,
                        "bounds": [-88.07, 42.92, -87.86, 43.19],
                        "vector_layers": [
                            {"id": LAYER, "fields": FIELDS, "minzoom": MIN_ZOOM, "maxzoom": MAX_ZOOM}
                        ],
                    },
                }
            },
            "description": "The TileJSON document",
        },
        **problem_responses(401, 403, 503),
    },
)
async def camera_tilejson(caller: CurrentCaller) -> dict[str, Any]:
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(BOUNDS_SQL, caller.agency.id)
    base = get_settings().public_base  # never the request's Host, which a client may forge
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": f"Cameras shared with {caller.agency.slug}",
        "scheme": "xyz",
        "tiles": [f"{base}/v1/tiles/cameras/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "vector_layers": [{"id": LAYER, "fields": FIELDS, "minzoom": MIN_ZOOM, "maxzoom": MAX_ZOOM}],
    }
    if row is not None and row[0] is not None:
        doc["bounds"] = [round(float(v), 6) for v in row]
    return doc
