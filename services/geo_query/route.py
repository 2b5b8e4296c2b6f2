"""The route canvass: `POST /v1/cameras/route` — the cameras within a buffer of a path of travel, in the order the
path passes them, each with the time it passed and so the minutes of footage to ask for.

The path is a GeoJSON LineString or MultiLineString (WGS84 lon/lat, or a projected `crs` such as a CAD's State
Plane), timed either by an instant at each vertex or by a start instant and a speed. How the answer is computed:

- Candidates: PostgreSQL finds the cameras the caller's agency sees (`registry.sees`, the visibility rule) inside a
  corridor polygon (the path buffered a little wider than asked) through the spatial index, piece by piece of the
  corridor (so an index lookup's box hugs the path), with the same filters as every search.
- Nearest point, distance, measure: in a transverse Mercator projection centred on the path (PROJ through pyproj;
  conformal, its scale within 1e-5 of true over the 50 km a route may span), shapely finds each camera's nearest
  point on the path and its distance, and cameras farther than the buffer are dropped. The position along the
  path (`along_m`) is measured on cumulative geodesic (WGS84) segment lengths: the geodesic length of the
  segments before the nearest one plus the nearest point's fraction of its segment times that segment's geodesic
  length. Projecting in the database (`ST_Transform` to a per-route projection) builds a PROJ object per call,
  milliseconds each, hence here.
- Time: interpolated linearly on the measure between the vertices' instants (given, or start + measure / speed).
  The footage window is that time ± `margin_s`; `footage_until` is the window's start plus the camera's retention
  (the first of those minutes the owner's recorder overwrites).

Decisions: a path may cross or double back on itself (a suspect circling a block is a route): a camera is placed
at its nearest point, the earliest one when two are equally near. A MultiLineString's parts are travelled in
order; the gap from one part's end to the next part's start is not part of the path (no cameras are looked for
along it, its length is not measured) and, with a speed, takes no time — give `times` when it did. A path across
the antimeridian is refused (search each side). `facing` keeps the cameras whose field of view (direction ± fov/2,
out to their range) reaches the path, the route's form of the point searches' rule; each camera also carries the
direction of travel at its nearest point (`travel_bearing_deg`).
"""

from __future__ import annotations

import bisect
import math
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import shapely
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema
from pyproj import Proj

from services.geo_query import crs as crs_mod
from services.geo_query.cameras import TAG, max_radius
from services.geo_query.dependencies import (
    CaseReference,
    CurrentCaller,
    CursorQuery,
    QueryFilters,
    distance_cursor,
)
from services.geo_query.features import HEAD, NO_STORE, collection_tail
from services.geo_query.schemas import EXAMPLE_FEATURE, CameraProperties, Link
from services.geo_query.service import Search, fetch_with_contacts
from shared.errors import invalid, problem_responses
from shared.geojson import (
    GEOJSON_MEDIA_TYPE,
    OUT_POSITION_SCHEMA,
    WGS84,
    AreaGeometry,
    GeoJSONResponse,
    PointGeometry,
)
from shared.inputs import StrictInput
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, LimitQuery, clamp_limit
from shared.settings import get_settings
from shared.timestamps import Instant

router = APIRouter(prefix="/v1/cameras", tags=[TAG])

MAX_VERTICES = 5000
MAX_CANDIDATES = (
    50_000  # cameras in the corridor one route may weigh; more: narrow the buffer or split the route
)
SPEEDS = {"walking": 1.4, "driving": 13.9}  # metres per second: a brisk walk; 50 km/h
MAX_SPEED = 100.0  # m/s
DEFAULT_MARGIN_S, MAX_MARGIN_S = 120, 3600
CORRIDOR_SLACK = 1.001  # the prefilter's corridor is this much (plus a metre) wider than the buffer
CORRIDOR_PIECE_VERTICES = (
    16  # the prefilter looks cameras up piece by piece of the corridor, this many vertices each
)
WEDGE_STEPS = 16
EARLIEST = 0.0  # 1970-01-01: the times of a path lie between it and now (no footage is older, or yet to come)
FUTURE_SLACK_S = 300.0  # clocks differ


def _coordinates(value: Any) -> Any:
    """Positions as lists of 2 or 3 finite numbers; their range is checked once the CRS is known."""
    if not isinstance(value, list):
        raise ValueError("coordinates are an array of positions")
    for pos in value:
        if not isinstance(pos, list) or not 2 <= len(pos) <= 3:
            raise ValueError("a position is an array of two or three numbers: [x, y(, z)]")
        for v in pos:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise ValueError("coordinates must be finite numbers (no NaN or Infinity)")
    return value


_LINE_SCHEMA: dict[str, Any] = {"type": "array", "items": OUT_POSITION_SCHEMA, "minItems": 2}
LineCoordinates = Annotated[list[list[float]], BeforeValidator(_coordinates), WithJsonSchema(_LINE_SCHEMA)]


def _parts(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("a MultiLineString has at least one line")
    for part in value:
        _coordinates(part)
    return value


class LineString(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["LineString"]
    coordinates: LineCoordinates


class MultiLineString(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["MultiLineString"]
    coordinates: Annotated[
        list[list[list[float]]],
        BeforeValidator(_parts),
        WithJsonSchema({"type": "array", "items": _LINE_SCHEMA, "minItems": 1}),
    ]


Speed = (
    Literal["walking", "driving"] | Annotated[float, Strict(), Field(gt=0, le=MAX_SPEED, allow_inf_nan=False)]
)

ROUTE_EXAMPLE: dict[str, Any] = {
    "path": {
        "type": "LineString",
        "coordinates": [[-73.9857, 40.7484], [-73.9819, 40.7532], [-73.9772, 40.7513]],
    },
    "buffer_m": 60,
    "start": "2026-11-20T22:15:00Z",
    "speed": "driving",
    "margin_s": 120,
}


class RouteSearch(StrictInput):
    """A path of travel, how far either side of it to look, and when it was travelled."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ROUTE_EXAMPLE]})

    path: LineString | MultiLineString = Field(
        discriminator="type",
        description="The path in the order it was travelled: lon/lat (WGS84), or x/y in `crs`. A MultiLineString's"
        " parts are travelled one after the other; the gaps between them are not searched and, with a speed,"
        " take no time",
    )
    crs: str | None = Field(
        None,
        description="The CRS of the path's coordinates: an EPSG code (`2263`, `EPSG:2263`) or an OGC URI;"
        " WGS84 lon/lat by default",
        examples=["EPSG:2263"],
    )
    buffer_m: float = Field(
        gt=0,
        allow_inf_nan=False,
        description="How far either side of the path to look, in metres; capped by the agency's"
        " `max_search_radius_m`",
        examples=[60],
    )
    times: list[Instant] | None = Field(
        None,
        max_length=MAX_VERTICES,
        description="An RFC 3339 instant at each vertex (a MultiLineString's vertices in order), strictly"
        " increasing. Either this or `start` and `speed`",
    )
    start: Instant | None = Field(None, description="When the path's first vertex was passed (with `speed`)")
    speed: Speed | None = Field(
        None,
        description="`walking` (1.4 m/s), `driving` (13.9 m/s, 50 km/h) or metres per second (with `start`)",
    )
    margin_s: int = Field(
        DEFAULT_MARGIN_S,
        ge=0,
        le=MAX_MARGIN_S,
        description="The footage window is `passes_at` ± this many seconds",
    )


class Window(BaseModel):
    start: datetime
    end: datetime


class RouteCameraProperties(CameraProperties):
    distance_m: float | None = Field(None, description="Distance from the path (its nearest point), metres")
    along_m: float = Field(description="Position of that nearest point along the path (geodesic metres)")
    passes_at: datetime = Field(description="When the path passed its nearest point (interpolated)")
    window: Window = Field(description="The footage to ask for: passes_at ± margin_s")
    travel_bearing_deg: float = Field(
        description="Direction of travel at the nearest point, clockwise from north"
    )
    footage_until: str | None = Field(
        None,
        description="window.start + retention_days (RFC 3339): when the window's first minute is overwritten",
    )
    footage_likely_available: bool | None = Field(None, description="Whether now < footage_until")


class RouteCameraFeature(BaseModel):
    type: Literal["Feature"]
    id: uuid.UUID
    geometry: PointGeometry
    properties: RouteCameraProperties


class RouteSummary(BaseModel):
    length_m: float = Field(description="Geodesic length of the path (gaps between parts not counted)")
    area: AreaGeometry = Field(description="The path's buffer: the area searched (lon/lat)")
    starts_at: datetime
    ends_at: datetime


_EXAMPLE_ROUTE_FEATURE = {
    **EXAMPLE_FEATURE,
    "properties": {
        **{k: v for k, v in EXAMPLE_FEATURE["properties"].items() if k != "bearing_deg"},
        "distance_m": 12.4,
        "along_m": 388.1,
        "passes_at": "2026-11-20T22:15:28Z",
        "window": {"start": "2026-11-20T22:13:28Z", "end": "2026-11-20T22:17:28Z"},
        "travel_bearing_deg": 32.5,
        "footage_until": "2026-12-04T22:13:28Z",
        "footage_likely_available": True,
    },
}


class RouteCollection(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "FeatureCollection",
                    "features": [_EXAMPLE_ROUTE_FEATURE],
                    "route": {
                        "length_m": 975.3,
                        "area": {
                            "type": "Polygon",
                            "coordinates": [
                                [
                                    [-73.9857, 40.7479],
                                    [-73.9772, 40.7508],
                                    [-73.9772, 40.7518],
                                    [-73.9862, 40.7489],
                                    [-73.9857, 40.7479],
                                ]
                            ],
                        },
                        "starts_at": "2026-11-20T22:15:00Z",
                        "ends_at": "2026-11-20T22:16:10Z",
                    },
                    "numberReturned": 1,
                    "numberMatched": 1,
                    "timeStamp": "2026-11-21T10:00:00Z",
                    "links": [
                        {
                            "href": "https://canvass.example/v1/cameras/route",
                            "rel": "self",
                            "type": "application/geo+json",
                        }
                    ],
                }
            ]
        }
    )

    type: Literal["FeatureCollection"]
    features: list[RouteCameraFeature]
    route: RouteSummary
    numberReturned: int
    numberMatched: int
    timeStamp: str
    links: list[Link]


# ------------------------------------------------------------------------------------------------ the path


@dataclass
class Passes:
    """Where and when the path passes each of a set of points (arrays, one entry per point)."""

    distance: np.ndarray  # metres from the path
    along: np.ndarray  # geodesic metres along the path
    at: np.ndarray  # epoch seconds
    bearing: np.ndarray  # direction of travel, degrees clockwise from north


@dataclass
class Route:
    """A validated, timed path: its parts in lon/lat, each vertex's geodesic measure and instant."""

    parts: list[list[tuple[float, float]]]
    measures: list[np.ndarray]  # per part: the geodesic measure of each vertex (gaps not counted)
    times: list[np.ndarray]  # per part: the epoch seconds of each vertex
    bearings: list[np.ndarray]  # per part: each segment's geodesic azimuth at its start
    length_m: float
    crs: int | None

    def __post_init__(self) -> None:
        lons = [lon for part in self.parts for lon, _ in part]
        lats = [lat for part in self.parts for _, lat in part]
        lon0, lat0 = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
        self.proj = Proj(
            # +over: longitudes come back unwrapped, so a buffer reaching the antimeridian shows as beyond ±180
            f"+proj=tmerc +lat_0={lat0!r} +lon_0={lon0!r} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +over"
        )
        self.lines = []
        self.planar = []  # per part: the planar measure of each vertex in the projection
        for part in self.parts:
            x, y = self.proj(np.array([p[0] for p in part]), np.array([p[1] for p in part]))
            self.lines.append(shapely.linestrings(x, y))
            self.planar.append(np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))]))
        self.multi = shapely.multilinestrings(self.lines)

    def geojson(self) -> str:
        if len(self.parts) == 1:
            return orjson.dumps({"type": "LineString", "coordinates": self.parts[0]}).decode()
        return orjson.dumps({"type": "MultiLineString", "coordinates": self.parts}).decode()

    def buffered(self, metres: float) -> str:
        """The path buffered by `metres` (in the projection), in lon/lat, as GeoJSON."""
        poly = shapely.buffer(self.multi, metres, quad_segs=8)
        poly = shapely.segmentize(poly, max(metres, 50.0))

        def back(xy: np.ndarray) -> np.ndarray:
            lon, lat = self.proj(xy[:, 0], xy[:, 1], inverse=True)
            return np.column_stack([lon, lat])

        area = shapely.transform(poly, back)
        west, _, east, _ = area.bounds
        if west < -180 or east > 180:
            raise invalid(
                "/body/path", "comes within its buffer of the antimeridian: search each side of it separately"
            )
        if not shapely.is_valid(area):  # near a pole a projected buffer need not stay simple in lon/lat
            area = shapely.make_valid(area)
        return shapely.to_geojson(area)  # type: ignore[no-any-return]

    def corridor(self, buffer_m: float) -> str:
        """A little wider than the buffer: the index prefilter, and the area the audit record names."""
        return self.buffered(buffer_m * CORRIDOR_SLACK + 1.0)

    @property
    def starts_at(self) -> float:
        return float(self.times[0][0])

    @property
    def ends_at(self) -> float:
        return float(self.times[-1][-1])

    def passes(self, lon: np.ndarray, lat: np.ndarray) -> Passes:
        """Each point's nearest point on the path: its distance, measure, instant and direction of travel."""
        n = len(lon)
        x, y = self.proj(lon, lat)
        points = shapely.points(x, y)
        best = np.full(n, np.inf)
        out = Passes(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))
        for i, line in enumerate(self.lines):
            d = shapely.distance(line, points)
            closer = d < best  # strictly: an equally near later part does not displace an earlier one
            if not closer.any():
                continue
            best = np.where(closer, d, best)
            f = shapely.line_locate_point(line, points[closer])
            cum = self.planar[i]
            k = np.clip(np.searchsorted(cum, f, side="right") - 1, 0, len(cum) - 2)
            seg = cum[k + 1] - cum[k]
            frac = np.where(seg > 0, (f - cum[k]) / np.where(seg > 0, seg, 1.0), 0.0).clip(0.0, 1.0)
            m, t = self.measures[i], self.times[i]
            out.along[closer] = m[k] + frac * (m[k + 1] - m[k])
            out.at[closer] = t[k] + frac * (t[k + 1] - t[k])
            out.bearing[closer] = self.bearings[i][k]
        out.distance = best
        return out

    def seen_by(
        self, lon: np.ndarray, lat: np.ndarray, direction: np.ndarray, fov: np.ndarray, rng: np.ndarray
    ) -> np.ndarray:
        """Whether each camera's field of view (direction ± fov/2, out to its range, geodesic) reaches the path."""
        n = len(lon)
        if n == 0:
            return np.zeros(0, dtype=bool)
        steps = np.linspace(-0.5, 0.5, WEDGE_STEPS + 1)
        full = fov >= 360
        az = direction[:, None] + np.where(full, 360.0, fov)[:, None] * steps[None, :]
        arc_lon, arc_lat, _ = WGS84.fwd(
            np.repeat(lon, WEDGE_STEPS + 1),
            np.repeat(lat, WEDGE_STEPS + 1),
            az.ravel(),
            np.repeat(rng, WEDGE_STEPS + 1),
        )
        ax, ay = self.proj(np.asarray(arc_lon), np.asarray(arc_lat))
        cx, cy = self.proj(lon, lat)
        arcs = np.stack([np.asarray(ax).reshape(n, -1), np.asarray(ay).reshape(n, -1)], axis=-1)
        apex = np.stack([cx, cy], axis=-1)[:, None, :]
        seen = np.zeros(n, dtype=bool)
        # A full circle is the arc's ring; a wedge runs from the camera along the arc and back. All the rings of
        # one kind have as many vertices: built and tested together.
        if full.any():
            seen[full] = shapely.intersects(shapely.polygons(arcs[full]), self.multi)
        wedge = ~full
        if wedge.any():
            rings = np.concatenate([apex[wedge], arcs[wedge], apex[wedge]], axis=1)
            seen[wedge] = shapely.intersects(shapely.polygons(rings), self.multi)
        return seen


def _lonlat(coords: list[list[float]], code: int | None, pointer: str) -> list[tuple[float, float]]:
    out = []
    for j, pos in enumerate(coords):
        where = f"{pointer}/{j}"
        if code is not None:
            out.append(crs_mod.to_lonlat(float(pos[0]), float(pos[1]), code, where))
            continue
        lon, lat = float(pos[0]), float(pos[1])
        if not -180 <= lon <= 180:
            raise invalid(
                where, f"longitude {lon} is outside [-180, 180] (positions are [longitude, latitude])"
            )
        if not -90 <= lat <= 90:
            raise invalid(where, f"latitude {lat} is outside [-90, 90] (positions are [longitude, latitude])")
        out.append((lon, lat))
    return out


def parse_route(body: RouteSearch, *, max_length_m: float) -> Route:
    """The route a body describes, or the problem with it (422, each pointing at the member at fault)."""
    code = crs_mod.epsg_code(body.crs, "/body/crs") if body.crs is not None else None
    given = [body.path.coordinates] if isinstance(body.path, LineString) else body.path.coordinates
    pointers = (
        ["/body/path/coordinates"]
        if isinstance(body.path, LineString)
        else [f"/body/path/coordinates/{i}" for i in range(len(given))]
    )
    if sum(len(p) for p in given) > MAX_VERTICES:
        raise invalid("/body/path/coordinates", f"more than {MAX_VERTICES} vertices")
    parts = [_lonlat(p, code, ptr) for p, ptr in zip(given, pointers, strict=True)]
    lons = [lon for part in parts for lon, _ in part]
    if lons and max(lons) - min(lons) > 180:
        raise invalid(
            "/body/path", "crosses the antimeridian: search the route on each side of it separately"
        )
    measures, bearings = [], []
    offset = 0.0
    for part, ptr in zip(parts, pointers, strict=True):
        if len(set(part)) < 2:
            raise invalid(ptr, "a path needs at least 2 distinct points")
        lon, lat = np.array([p[0] for p in part]), np.array([p[1] for p in part])
        az, _, dist = WGS84.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
        dist = np.asarray(dist, dtype=float)
        measures.append(offset + np.concatenate([[0.0], np.cumsum(dist)]))
        bearings.append(np.mod(np.asarray(az, dtype=float), 360.0))
        offset = float(measures[-1][-1])
    if offset <= 0:
        raise invalid("/body/path", "the path has no length")
    if offset > max_length_m:
        raise invalid(
            "/body/path", f"is {offset / 1000:.3f} km long; a route is at most {max_length_m / 1000:g} km"
        )
    times = _times(body, parts, measures)
    if float(times[0][0]) < EARLIEST:
        raise invalid(
            "/body/times" if body.times is not None else "/body/start", "the path's times begin before 1970"
        )
    if float(times[-1][-1]) > datetime.now(UTC).timestamp() + FUTURE_SLACK_S:
        raise invalid(
            "/body/times" if body.times is not None else "/body/start", "the path's times run into the future"
        )
    return Route(parts, measures, times, bearings, offset, code)


def _times(
    body: RouteSearch, parts: list[list[tuple[float, float]]], measures: list[np.ndarray]
) -> list[np.ndarray]:
    if body.times is not None:
        if body.start is not None or body.speed is not None:
            raise invalid("/body/times", "give either times, or start and speed, not both")
        n = sum(len(p) for p in parts)
        if len(body.times) != n:
            raise invalid(
                "/body/times", f"{len(body.times)} times for {n} vertices: give one time per vertex"
            )
        secs = [t.timestamp() for t in body.times]
        for i in range(1, n):
            if secs[i] <= secs[i - 1]:
                raise invalid(f"/body/times/{i}", "times must be strictly increasing along the path")
        out, i = [], 0
        for p in parts:
            out.append(np.array(secs[i : i + len(p)]))
            i += len(p)
        return out
    if body.start is None or body.speed is None:
        raise invalid(
            "/body/start" if body.start is None else "/body/speed",
            "time the path: give times (one per vertex), or start and speed",
        )
    speed = SPEEDS[body.speed] if isinstance(body.speed, str) else float(body.speed)
    t0 = body.start.timestamp()
    return [t0 + m / speed for m in measures]


# ---------------------------------------------------------------------------------------------- the search


@dataclass
class RouteScope(Search):
    """A Search scoped by the visibility rule (`registry.sees`) and filtered as every search; `facing` is judged
    here against the path (`Route.seen_by`), not against a query point."""

    def __post_init__(self) -> None:
        s = self.sql
        agency = s.p(self.caller.agency.id, "uuid")
        s.where.append(
            f"registry.sees({agency}, (SELECT ST_SetSRID(a.jurisdiction, 4326) FROM registry.agencies a"  # noqa: S608
            f" WHERE a.id = {agency}), c.visible_to, c.geom)"
        )
        facing = self.filters.facing
        self.filters = replace(self.filters, facing=False)
        self._filters()
        self.filters = replace(self.filters, facing=facing)


def _rfc3339(epochs: np.ndarray) -> list[str]:
    """RFC 3339 instants (UTC, whole seconds) of epoch seconds."""
    return [
        t + "Z" for t in np.datetime_as_string(np.asarray(epochs, dtype=np.int64).astype("datetime64[s]"))
    ]


@router.post(
    "/route",
    summary="Cameras along a route of travel, in the order it passes them, each with its footage window",
    description=(
        "Cameras within `buffer_m` of a path (GeoJSON LineString or MultiLineString in lon/lat, or in `crs`),"
        " ordered by the position along the path of their nearest point (`along_m`, geodesic metres), each with"
        " `distance_m` from the path, `passes_at` (when the path passed that point, interpolated between the"
        " vertices' `times`, or from `start` and `speed`), the footage `window` to ask for (`passes_at` ±"
        " `margin_s`) and `footage_until`. A path may cross itself; a camera is placed at its nearest point."
        " `facing` keeps cameras whose field of view reaches the path. The buffer is capped by the agency's"
        " `max_search_radius_m` and the path's length by policy. For the next page POST the same body to the"
        " `next` link."
    ),
    response_model=RouteCollection,
    response_class=GeoJSONResponse,
    responses={
        200: {"content": {GEOJSON_MEDIA_TYPE: {}}, "description": "The cameras along the route, in order"},
        **problem_responses(400, 401, 403, 422, 503),
    },
)
async def cameras_along_route(
    request: Request,
    caller: CurrentCaller,
    body: RouteSearch,
    filters: QueryFilters,
    reference: CaseReference,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> Response:
    if filters.incident_at is not None:
        raise invalid("/query/incident_at", "a route's times say when: leave incident_at out")
    cap = max_radius(caller)
    if body.buffer_m > cap:
        raise invalid(
            "/body/buffer_m",
            f"the agency's maximum search radius is {cap:g} m",
            code="less_than_equal",
            params={"le": cap},
        )
    key = distance_cursor(cursor)
    route = parse_route(body, max_length_m=get_settings().geo_route_max_length_m)
    corridor = route.corridor(body.buffer_m)
    search = RouteScope(caller, "search.route", filters, reference, area_geojson=corridor)
    search.details.update(
        path=orjson.loads(route.geojson()),
        length_m=round(route.length_m, 1),
        buffer_m=body.buffer_m,
        margin_s=body.margin_s,
        timing="times" if body.times is not None else "speed",
    )
    if route.crs is not None:
        search.details["crs"] = f"EPSG:{route.crs}"
    s = search.sql
    search.custom_plan = True
    corridor_param = s.p(corridor)
    # The corridor in pieces, each looked up in the spatial index by its own box: the box of a whole corridor
    # along a diagonal path holds many times the cameras of the corridor, all fetched and tested. A camera on
    # the edge between two pieces meets both: one row each (DISTINCT ON), in id order (the tie-break of the
    # order along the path, below).
    query = (
        "SELECT DISTINCT ON (c.id) c.id, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.retention_days,"  # noqa: S608
        f" c.direction_deg, c.fov_deg, c.range_m"
        f" FROM ST_Subdivide(ST_SetSRID(ST_GeomFromGeoJSON({corridor_param}), 4326), {CORRIDOR_PIECE_VERTICES})"
        " AS piece (geom) JOIN registry.cameras c ON ST_Intersects(c.geom, piece.geom)"
        f" WHERE {' AND '.join(s.where)} ORDER BY c.id LIMIT {s.p(MAX_CANDIDATES + 1)}"
    )
    async with search.connection() as conn:
        rows = await conn.fetch(query, *s.params)
    s.params.pop()
    s.params.pop()
    if len(rows) > MAX_CANDIDATES:
        raise invalid(
            "/body/buffer_m", f"more than {MAX_CANDIDATES} cameras lie along the route: narrow the buffer"
        )

    lon = np.array([r["lon"] for r in rows], dtype=float)
    lat = np.array([r["lat"] for r in rows], dtype=float)
    passes = route.passes(lon, lat)
    keep = passes.distance <= body.buffer_m
    if filters.facing:
        aimed = np.array(
            [
                r["direction_deg"] is not None and r["fov_deg"] is not None and r["range_m"] is not None
                for r in rows
            ],
            dtype=bool,
        )
        keep &= aimed
        idx = np.flatnonzero(keep)
        seen = route.seen_by(
            lon[idx],
            lat[idx],
            np.array([float(rows[i]["direction_deg"]) for i in idx]),
            np.array([float(rows[i]["fov_deg"]) for i in idx]),
            np.array([float(rows[i]["range_m"]) for i in idx]),
        )
        keep[idx] = seen
    along = np.round(passes.along, 1)
    # By (along_m, id): the rows come in id order, and a stable sort by the measure keeps it among equals.
    kept_idx = np.flatnonzero(keep)
    ordered = kept_idx[np.argsort(along[kept_idx], kind="stable")].tolist()
    matched = len(ordered)
    if key is not None:
        ordered = ordered[bisect.bisect_right(ordered, key, key=lambda i: (along[i], rows[i]["id"])) :]
        search.details["cursor"] = cursor
    size = clamp_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
    page, more = ordered[:size], len(ordered) > size
    search.details["limit"] = size

    features = await _features(search, [rows[i]["id"] for i in page])
    # The page's instants in whole seconds, formatted together (one strftime per instant was a tenth of the time).
    at = np.round(passes.at[page]).astype(np.int64) if page else np.zeros(0, dtype=np.int64)
    retention = np.array([rows[i]["retention_days"] for i in page], dtype=object)
    kept = np.array([r is not None for r in retention], dtype=bool)
    until = at - body.margin_s + np.where(kept, retention, 0).astype(np.int64) * 86_400
    passes_s, start_s, end_s, until_s = (
        _rfc3339(at),
        _rfc3339(at - body.margin_s),
        _rfc3339(at + body.margin_s),
        _rfc3339(until),
    )
    now = datetime.now(UTC).timestamp()
    parts: list[str] = []
    for j, i in enumerate(page):
        f = features[rows[i]["id"]]
        f["properties"].update(
            distance_m=round(float(passes.distance[i]), 2),
            along_m=float(along[i]),
            passes_at=passes_s[j],
            window={"start": start_s[j], "end": end_s[j]},
            travel_bearing_deg=round(float(passes.bearing[i]), 1),
            footage_until=until_s[j] if kept[j] else None,
            footage_likely_available=bool(until[j] > now) if kept[j] else None,
        )
        parts.append(orjson.dumps(f).decode())
    await search.audit(len(page), {"matched": matched})

    first = (float(along[page[0]]), rows[page[0]]["id"]) if page else None
    last = (float(along[page[-1]]), rows[page[-1]]["id"]) if page else None
    summary = {
        "length_m": round(route.length_m, 1),
        "area": orjson.loads(route.buffered(body.buffer_m)),
        "starts_at": _rfc3339(np.round([route.starts_at]))[0],
        "ends_at": _rfc3339(np.round([route.ends_at]))[0],
    }
    tail = collection_tail(request, "distance", len(page), first, last, more, False, matched, [])
    body_text = HEAD + ",".join(parts) + '],"route":' + orjson.dumps(summary).decode() + "," + tail[2:]
    return GeoJSONResponse(body_text, headers=NO_STORE)


async def _features(search: Search, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The page's Features as every search builds them (in PostgreSQL; with the owners' contact details where the
    case-number rule allows), by id."""
    if not ids:
        return {}
    s = search.sql
    s.where.append(f"c.id = ANY({s.p(ids, 'uuid[]')})")
    if search.contacts:
        body = (await fetch_with_contacts(search, len(ids), "id")).body
    else:
        query = search.rows_sql(s.p(len(ids)), "id")
        async with search.connection() as conn:
            body = ",".join(r["f"] for r in await conn.fetch(query, *s.params))
    return {uuid.UUID(f["id"]): f for f in orjson.loads("[" + body + "]")}
