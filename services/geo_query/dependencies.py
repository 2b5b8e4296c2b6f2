"""Request dependencies of geo_query: who is asking (and for which agency), and the parsers of each query concern
(a point in any CRS, a bbox, the filters, the case reference, the page). A route reads like a sentence of them.

Roles that may search: investigator, supervisor, cad, agency_admin. An auditor reads the audit trail, not the
registry; owners, advocates and integrators work through registry_api.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query

from services.geo_query import crs as crs_mod
from services.geo_query.database import db
from shared.auth import Principal, require_roles
from shared.db import pooled
from shared.errors import Problem, invalid
from shared.pagination import decode_cursor
from shared.timestamps import Instant
from shared.vocabulary import LIVE_MODES, OWNER_KINDS, PLACEMENTS

SEARCH_ROLES = ("investigator", "supervisor", "cad", "agency_admin")
CONTACT_ROLES = ("investigator", "supervisor")
AGENCY_TTL_S = 30.0
MAX_K = 1000
MAX_RADIUS_M = 50_000.0  # absolute ceiling, whatever an agency's policy says
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,63}$")


# ------------------------------------------------------------------------------------------------ the caller


@dataclass(frozen=True)
class Agency:
    id: uuid.UUID
    slug: str
    max_search_radius_m: float


_agencies: dict[str, tuple[float, Agency]] = {}


async def agency_by_slug(slug: str) -> Agency | None:
    """The agency row, cached briefly: a policy change is seen within AGENCY_TTL_S."""
    now = time.monotonic()
    hit = _agencies.get(slug)
    if hit and hit[0] > now:
        return hit[1]
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(
            "SELECT id, slug, max_search_radius_m FROM registry.agencies WHERE slug = $1", slug
        )
    if row is None:
        _agencies.pop(slug, None)
        return None
    agency = Agency(row["id"], row["slug"], float(row["max_search_radius_m"]))
    _agencies[slug] = (now + AGENCY_TTL_S, agency)
    return agency


@dataclass(frozen=True)
class Caller:
    principal: Principal
    agency: Agency

    @property
    def role(self) -> str:
        for r in SEARCH_ROLES:
            if r in self.principal.roles:
                return r
        return sorted(self.principal.roles)[0]

    @property
    def may_see_contacts(self) -> bool:
        return self.principal.has(*CONTACT_ROLES)


async def _caller(principal: Annotated[Principal, require_roles(*SEARCH_ROLES)]) -> Caller:
    assert principal.agency is not None
    agency = await agency_by_slug(principal.agency)
    if agency is None:
        raise Problem(403, f"The token's agency {principal.agency!r} is not registered with Canvass.")
    return Caller(principal, agency)


CurrentCaller = Annotated[Caller, Depends(_caller)]


# ------------------------------------------------------------------------------------------------- the point


@dataclass(frozen=True)
class QueryPoint:
    lon: float
    lat: float
    crs: int | None = None  # the EPSG code the caller spoke, for the audit record
    given: tuple[float, float] | None = None

    def geojson(self) -> str:
        return f'{{"type":"Point","coordinates":[{self.lon!r},{self.lat!r}]}}'


def _finite(name: str, v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise invalid(f"/query/{name}", "must be a finite number")
    return v


def point_from(
    lon: float | None, lat: float | None, x: float | None, y: float | None, crs: str | None, *, required: bool
) -> QueryPoint | None:
    for name, v in (("lon", lon), ("lat", lat), ("x", x), ("y", y)):
        _finite(name, v)
    if crs is not None or x is not None or y is not None:
        if lon is not None or lat is not None:
            raise invalid("/query/lon", "give either lon/lat (WGS84) or x/y with crs, not both")
        if x is None or y is None:
            raise invalid("/query/x", "x and y are both needed with crs")
        if crs is None:
            raise invalid("/query/crs", "x/y need a crs (an EPSG code or OGC URI)")
        code = crs_mod.epsg_code(crs, "/query/crs")
        if code is None:
            lon, lat = x, y
        else:
            lon, lat = crs_mod.to_lonlat(x, y, code, "/query/x")
            return QueryPoint(lon, lat, code, (x, y))
    if lon is None or lat is None:
        if required or lon is not None or lat is not None:
            raise invalid("/query/lon" if lon is None else "/query/lat", "lon and lat are both needed")
        return None
    if not -180 <= lon <= 180:
        raise invalid("/query/lon", f"longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise invalid("/query/lat", f"latitude {lat} is outside [-90, 90]")
    return QueryPoint(lon, lat)


_LON = Query(description="Longitude of the point (WGS84)", examples=[-73.9857])
_LAT = Query(description="Latitude of the point (WGS84)", examples=[40.7484])
_X = Query(description="Easting of the point in `crs` (instead of lon/lat)", examples=[988217.0])
_Y = Query(description="Northing of the point in `crs`", examples=[211790.0])
_CRS = Query(
    description="The CRS of x/y: an EPSG code (`2263`, `EPSG:2263`) or an OGC URI"
    " (`http://www.opengis.net/def/crs/EPSG/0/2263`); transformed to WGS84 with PROJ",
    examples=["EPSG:2263"],
)


async def required_point(
    lon: Annotated[float | None, _LON] = None,
    lat: Annotated[float | None, _LAT] = None,
    x: Annotated[float | None, _X] = None,
    y: Annotated[float | None, _Y] = None,
    crs: Annotated[str | None, _CRS] = None,
) -> QueryPoint:
    p = point_from(lon, lat, x, y, crs, required=True)
    assert p is not None
    return p


RequiredPoint = Annotated[QueryPoint, Depends(required_point)]


async def optional_point(
    point: Annotated[
        str | None,
        Query(
            description="`lon,lat` of the incident: adds `distance_m`/`bearing_deg` and enables `facing`",
            examples=["-73.9857,40.7484"],
        ),
    ] = None,
) -> QueryPoint | None:
    if point is None:
        return None
    parts = point.split(",")
    if len(parts) != 2:
        raise invalid("/query/point", "give the point as lon,lat")
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError as exc:
        raise invalid("/query/point", "give the point as two numbers lon,lat") from exc
    return point_from(lon, lat, None, None, None, required=True)


OptionalPoint = Annotated[QueryPoint | None, Depends(optional_point)]


# -------------------------------------------------------------------------------------------------- the bbox


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """One box, or two when it crosses the antimeridian (west > east)."""
        if self.west <= self.east:
            return [(self.west, self.south, self.east, self.north)]
        return [(self.west, self.south, 180.0, self.north), (-180.0, self.south, self.east, self.north)]

    def geojson(self) -> str:
        polys = [
            f"[[[{w!r},{s!r}],[{e!r},{s!r}],[{e!r},{n!r}],[{w!r},{n!r}],[{w!r},{s!r}]]]"
            for w, s, e, n in self.boxes()
        ]
        return '{"type":"MultiPolygon","coordinates":[' + ",".join(polys) + "]}"


def parse_bbox(value: str, bbox_crs: str | None, *, status: int = 422) -> BBox:
    pointer = "/query/bbox"
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise invalid(pointer, "give 4 numbers west,south,east,north (or 6 with heights)", status=status)
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise invalid(pointer, "the bbox must be numbers: west,south,east,north", status=status) from exc
    if not all(math.isfinite(v) for v in nums):
        raise invalid(pointer, "the bbox must be finite numbers", status=status)
    w, s, e, n = (nums[0], nums[1], nums[3], nums[4]) if len(nums) == 6 else tuple(nums)
    code = crs_mod.epsg_code(bbox_crs, "/query/bbox-crs") if bbox_crs else None
    if code is not None:
        if w > e or s > n:
            raise invalid(pointer, "in a projected CRS the bbox is minx,miny,maxx,maxy", status=status)
        w, s, e, n = crs_mod.bounds_to_lonlat((w, s, e, n), code, pointer)
    for lon in (w, e):
        if not -180 <= lon <= 180:
            raise invalid(pointer, f"longitude {lon} is outside [-180, 180]", status=status)
    for lat in (s, n):
        if not -90 <= lat <= 90:
            raise invalid(pointer, f"latitude {lat} is outside [-90, 90]", status=status)
    if s > n:
        raise invalid(pointer, "south is greater than north", status=status)
    return BBox(w, s, e, n)


# ------------------------------------------------------------------------------------------------ the filters


def _choices(name: str, value: str | None, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise invalid(f"/query/{name}", f"{(bad or [''])[0]!r} is not one of: {', '.join(allowed)}")
    return items


@dataclass(frozen=True)
class Filters:
    owner_kind: tuple[str, ...] | None = None
    placement: tuple[str, ...] | None = None
    live_mode: tuple[str, ...] | None = None
    live: bool | None = None
    incident_at: datetime | None = None
    only_available: bool = False
    facing: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in ("owner_kind", "placement", "live_mode"):
            v = getattr(self, k)
            if v is not None:
                out[k] = list(v)
        if self.live is not None:
            out["live"] = self.live
        if self.incident_at is not None:
            out["incident_at"] = self.incident_at.isoformat().replace("+00:00", "Z")
        if self.only_available:
            out["only_available"] = True
        if self.facing:
            out["facing"] = True
        return out


async def filters(
    owner_kind: Annotated[
        str | None,
        Query(
            description=f"Comma-separated owner kinds to keep ({', '.join(OWNER_KINDS)})",
            examples=["business,school"],
        ),
    ] = None,
    placement: Annotated[
        str | None,
        Query(description="`indoor` or `outdoor` (comma-separated for both)", examples=["outdoor"]),
    ] = None,
    live: Annotated[
        bool | None,
        Query(description="true: only cameras whose owner allows live sharing (on alert or in emergencies)"),
    ] = None,
    live_mode: Annotated[
        str | None,
        Query(
            description=f"Comma-separated live-sharing modes ({', '.join(LIVE_MODES)})",
            examples=["emergency"],
        ),
    ] = None,
    incident_at: Annotated[
        Instant | None,
        Query(
            description="RFC 3339 instant of the incident: adds `footage_until` and `footage_likely_available`",
            examples=["2026-11-20T22:15:00Z"],
        ),
    ] = None,
    only_available: Annotated[
        bool,
        Query(description="With incident_at: keep only cameras whose footage of it is likely still kept"),
    ] = False,
    facing: Annotated[
        bool,
        Query(
            description="Keep only cameras whose field of view (direction ± fov/2, out to its range) contains the"
            " query point"
        ),
    ] = False,
) -> Filters:
    if incident_at is not None and incident_at > datetime.now(UTC) + timedelta(minutes=5):
        raise invalid("/query/incident_at", "the incident is in the future", code="in_future")
    if only_available and incident_at is None:
        raise invalid("/query/only_available", "needs incident_at")
    return Filters(
        owner_kind=_choices("owner_kind", owner_kind, OWNER_KINDS),
        placement=_choices("placement", placement, PLACEMENTS),
        live_mode=_choices("live_mode", live_mode, LIVE_MODES),
        live=live,
        incident_at=incident_at,
        only_available=only_available,
        facing=facing,
    )


QueryFilters = Annotated[Filters, Depends(filters)]


# ------------------------------------------------------------------------------------ the case, the page


@dataclass(frozen=True)
class Reference:
    case_number: str | None = None
    cad_incident: str | None = None
    contacts: bool = True

    @property
    def audit_value(self) -> str | None:
        return self.case_number or (f"CAD {self.cad_incident}" if self.cad_incident else None)


def _reference(name: str, v: str | None) -> str | None:
    if v is not None and not _REFERENCE.match(v):
        raise invalid(
            f"/query/{name}", "1-64 letters, digits, spaces or . _ : / # -, starting with a letter or digit"
        )
    return v


async def reference(
    case_number: Annotated[
        str | None,
        Query(
            description="The case this search is for (audited). Investigators and supervisors who give it see the"
            " owners' contact details",
            examples=["2026-004512"],
            json_schema_extra={"pattern": _REFERENCE.pattern},
        ),
    ] = None,
    cad_incident: Annotated[
        str | None,
        Query(
            description="The CAD incident number this search is for (audited)",
            examples=["F261120-0042"],
            json_schema_extra={"pattern": _REFERENCE.pattern},
        ),
    ] = None,
    contacts: Annotated[
        bool,
        Query(
            description="false: leave the owners' contact details out even where the role and case number would"
            " show them (a caller that only needs ids should say so: every disclosure is audited)"
        ),
    ] = True,
) -> Reference:
    return Reference(
        _reference("case_number", case_number), _reference("cad_incident", cad_incident), contacts
    )


CaseReference = Annotated[Reference, Depends(reference)]


def distance_cursor(cursor: str | None) -> tuple[float, uuid.UUID] | None:
    if cursor is None:
        return None
    data = decode_cursor(cursor, ("d", "id"), numeric=("d",))
    try:
        d, cid = float(data["d"]), uuid.UUID(str(data["id"]))
    except (TypeError, ValueError) as exc:
        raise invalid(
            "/query/cursor", "not a cursor this service issued", status=400, code="cursor_invalid"
        ) from exc
    if not math.isfinite(d) or d < 0:
        raise invalid("/query/cursor", "not a cursor this service issued", status=400, code="cursor_invalid")
    return d, cid


def id_cursor(cursor: str | None, *, status: int = 400) -> tuple[uuid.UUID, bool] | None:
    """(id, backwards): a page after the id, or (backwards) the page before it."""
    if cursor is None:
        return None
    data = decode_cursor(cursor, ("id",), flags=("prev",))
    try:
        return uuid.UUID(str(data["id"])), bool(data.get("prev", False))
    except (TypeError, ValueError) as exc:
        raise invalid(
            "/query/cursor", "not a cursor this service issued", status=status, code="cursor_invalid"
        ) from exc


CursorQuery = Annotated[
    str | None, Query(description="Opaque cursor from a `next`/`prev` link", max_length=400)
]
