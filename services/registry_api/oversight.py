"""Oversight: auditors read, search and export their agency's audit trail, and owners see which agencies accessed
their registration.

An auditor (role `auditor`) sees the records of their own agency only, filtered by time, actor, action, case,
target (a registration or camera id) and place; a place is answered from `audit.event_places` (the records' own
areas, its GiST index) and from the cameras the records name, or whose registration they name (`audit.event_refs`),
where they stand now in the registry if the agency may still see them; a target from `audit.event_refs`. Both
side tables are filled by the database from what is appended (migrations 0022, 0035), and neither holds where an
owner's camera or home is. Every read
of the trail is itself appended to the trail before the answer leaves.

An export carries, for each record, exactly the values its chain hash covers (the canonical text of `at`, the area
as EWKB hex, the details as PostgreSQL writes them) and its `prev_hash` and `hash`: scripts/audit_verify_export.py
recomputes every hash offline and checks the records against anchors. It is streamed from a server-side cursor, a
chunk at a time, so its memory does not grow with its length.

An owner's access report lists the agencies' accesses to their registration — a contact read, a footage request
covering their cameras, a search that listed their contact details, a view of a live window they opened — with
the agency, the day, the kind and whether a case was given; never who. Each access shows once the agency's
public disclosure delay has passed.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api.auditing import audit, audit_event, owner_actor
from services.registry_api.database import SessionDep, db
from services.registry_api.dependencies import NO_STORE, NoStore
from services.registry_api.repository.registrations import owned_registration
from shared.audit import EXPORT_COLUMNS, EXPORT_FIELDS, append_session, jsonl_line
from shared.auth import CurrentOwner, Principal, require_roles
from shared.errors import invalid, problem_responses
from shared.geojson import (
    GEOJSON_MEDIA_TYPE,
    GeoJSONResponse,
    JSONResponse,
    LineStringGeometry,
    MultiPolygonGeometry,
    PointGeometry,
    PolygonGeometry,
)
from shared.pagination import LimitQuery, clamp_limit, decode_cursor, encode_cursor, page_link
from shared.timestamps import parse_instant

router = APIRouter(tags=["oversight"], dependencies=[NoStore])

Auditor = Annotated[Principal, require_roles("auditor")]

MAX_RADIUS_M = 100_000
MAX_POLYGON_VERTICES = 2000
EXPORT_CHUNK = 1000
EXPORT_STATEMENT_TIMEOUT_MS = 120_000
JSONL_MEDIA_TYPE = "application/jsonl"
CSV_MEDIA_TYPE = "text/csv"

SEARCH_COLUMNS = """
    e.seq, e.id, e.at, e.service, e.actor, e.actor_role, e.agency, e.action, e.subject_type, e.subject_id,
    e.case_number, ST_AsGeoJSON(e.area, 7) AS area, e.details::text AS details, encode(e.hash, 'hex') AS hash
"""

# --- the filters ------------------------------------------------------------------------------------------


@dataclass
class Place:
    """Where the records must have touched: a point and radius, a bbox or a polygon (longitude, latitude)."""

    kind: Literal["near", "bbox", "polygon"]
    box: tuple[float, float, float, float]  # west, south, east, north: what the GiST index is asked first
    geojson: str  # the place itself, as GeoJSON (written into the search's own audit record)
    point: tuple[float, float] | None = None
    radius_m: float | None = None

    def condition(self, p: dict[str, Any], geom: str) -> str:
        """The SQL condition on the geometry column `geom`: the box (`&&`, its GiST index), then the exact test."""
        p.update(west=self.box[0], south=self.box[1], east=self.box[2], north=self.box[3])
        box = f"{geom} && ST_MakeEnvelope(:west, :south, :east, :north, 4326)"
        if self.kind == "near":
            assert self.point is not None
            p.update(plon=self.point[0], plat=self.point[1], radius=self.radius_m)
            return (
                f"{box} AND ST_DWithin(geography({geom}),"
                " geography(ST_SetSRID(ST_MakePoint(:plon, :plat), 4326)), :radius)"
            )
        if self.kind == "bbox":
            return f"{box} AND ST_Intersects({geom}, ST_MakeEnvelope(:west, :south, :east, :north, 4326))"
        p["place"] = self.geojson
        return f"{box} AND ST_Intersects({geom}, ST_SetSRID(ST_GeomFromGeoJSON(:place), 4326))"


def _numbers(value: str, count: int, pointer: str, what: str) -> list[float]:
    parts = value.split(",")
    try:
        nums = [float(v) for v in parts]
    except ValueError as exc:
        raise invalid(pointer, f"give {what}") from exc
    if len(nums) != count or not all(math.isfinite(v) for v in nums):
        raise invalid(pointer, f"give {what}")
    return nums


def _lonlat(lon: float, lat: float, pointer: str) -> None:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise invalid(pointer, "longitude within [-180, 180], latitude within [-90, 90]")


def near_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box holding every point within `radius_m` of (lon, lat), with a margin (the exact test follows)."""
    dlat = radius_m * 1.01 / 110_574 + 1e-6  # a degree of latitude is at least 110 574 m
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    widest = max(abs(south), abs(north))
    cos = math.cos(math.radians(widest))
    if widest >= 89.9 or radius_m * 1.01 / (111_320 * cos) >= 180:
        return (-180.0, south, 180.0, north)
    dlon = radius_m * 1.01 / (111_320 * cos) + 1e-6
    return (max(-180.0, lon - dlon), south, min(180.0, lon + dlon), north)


def parse_place(
    near: str | None, radius_m: float | None, bbox: str | None, polygon: str | None
) -> Place | None:
    given = [n for n, v in (("near", near), ("bbox", bbox), ("polygon", polygon)) if v is not None]
    if len(given) > 1:
        raise invalid(f"/query/{given[1]}", f"give one place only: {' or '.join(given)}")
    if radius_m is not None and near is None:
        raise invalid("/query/radius_m", "a radius goes with `near`")
    if near is not None:
        lon, lat = _numbers(near, 2, "/query/near", "a point as longitude,latitude")
        _lonlat(lon, lat, "/query/near")
        if radius_m is None:
            raise invalid("/query/radius_m", "give the radius (metres) around `near`")
        point = orjson.dumps({"type": "Point", "coordinates": [lon, lat]}).decode()
        return Place("near", near_box(lon, lat, radius_m), point, (lon, lat), radius_m)
    if bbox is not None:
        w, s, e, n = _numbers(bbox, 4, "/query/bbox", "west,south,east,north")
        _lonlat(w, s, "/query/bbox")
        _lonlat(e, n, "/query/bbox")
        if w > e or s > n:
            raise invalid("/query/bbox", "west must not exceed east, nor south north")
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
        return Place("bbox", (w, s, e, n), orjson.dumps({"type": "Polygon", "coordinates": [ring]}).decode())
    if polygon is not None:
        return _polygon(polygon)
    return None


def _polygon(value: str) -> Place:
    pointer = "/query/polygon"
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise invalid(pointer, "give a GeoJSON Polygon or MultiPolygon") from exc
    if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
        raise invalid(pointer, "give a GeoJSON Polygon or MultiPolygon")
    try:
        # An altitude (a third position member, which GeoJSON allows) says nothing about where: it is dropped, as
        # PostGIS refuses to compare a 3D polygon with the trail's 2D geometries.
        geom = shapely.force_2d(shapely.geometry.shape(data))
    except Exception as exc:  # any JSON may come: shapely refuses a malformed one in many ways
        raise invalid(pointer, "not a GeoJSON Polygon or MultiPolygon") from exc
    coords = shapely.get_coordinates(geom)
    if len(coords) > MAX_POLYGON_VERTICES:
        raise invalid(pointer, f"at most {MAX_POLYGON_VERTICES} vertices")
    if geom.is_empty or not geom.is_valid or not all(math.isfinite(v) for v in coords.flat):
        raise invalid(pointer, "the polygon must be valid (closed rings, no self-intersection)")
    w, s, e, n = geom.bounds
    _lonlat(w, s, pointer)
    _lonlat(e, n, pointer)
    return Place("polygon", (w, s, e, n), orjson.dumps(shapely.geometry.mapping(geom)).decode())


def _instant(value: str | None, pointer: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise invalid(pointer, str(exc)) from exc


def _plain(value: str | None, pointer: str) -> str | None:
    if value is not None and not value.isprintable():
        raise invalid(pointer, "must be printable text", code="text_invalid")
    return value


@dataclass
class TrailFilter:
    agency: str
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    case_number: str | None = None
    target: uuid.UUID | None = None
    place: Place | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def where(self, place: bool = True) -> str:
        """The records' condition (their agency's, and the filters', the place's unless `place` is false); binds
        its values in `params`."""
        p = self.params
        p["agency"] = self.agency
        conds = ["e.agency = :agency"]
        if self.since is not None:
            conds.append("e.at >= :since")
            p["since"] = self.since
        if self.until is not None:
            conds.append("e.at < :until")
            p["until"] = self.until
        # An actor or a case number is found through its own index (agency, actor | case_number, seq), without
        # a time range too; an action alone walks the agency's records newest first.
        for name in ("actor", "action", "case_number"):
            if getattr(self, name) is not None:
                conds.append(f"e.{name} = :{name}")
                p[name] = getattr(self, name)
        if self.target is not None:
            conds.append("e.seq IN (SELECT r.seq FROM audit.event_refs r WHERE r.target = :target)")
            p["target"] = str(self.target)
        if place and self.place is not None:
            conds.append(f"e.seq IN ({self._own_areas()} UNION {self._named_cameras()})")
        return " AND ".join(conds)

    # The records touching the place: their own areas (the side index), and the records naming a camera, or its
    # registration, that stands in the place now and that the agency may still see (the visibility rule,
    # `registry.sees`). The trail never copies where an owner's camera or home is, so a deleted registration is
    # found nowhere, and one no longer shared with the agency, or moved since, cannot be located through it.

    def _own_areas(self) -> str:
        assert self.place is not None
        place = self.place.condition(self.params, "p.geom")
        return f"SELECT p.seq FROM audit.event_places p WHERE p.agency = :agency AND {place}"  # noqa: S608 - composed from constants; values are bound

    def _named_cameras(self) -> str:
        assert self.place is not None
        cams = (
            " FROM registry.cameras c JOIN registry.agencies a ON a.slug = :agency"
            " JOIN audit.event_refs r ON r.target = {key}"
            f" WHERE {self.place.condition(self.params, 'c.geom')}"
            " AND registry.sees(a.id, ST_SetSRID(a.jurisdiction, 4326), c.visible_to, c.geom)"
        )
        return (
            "SELECT r.seq"
            + cams.format(key="c.id::text")
            + " UNION SELECT r.seq"
            + cams.format(key="c.registration_id::text")
        )

    def place_probe(self) -> str:
        """The place's condition tested on one record `e` at a time: its own area looked up by its seq (an index
        probe, never the whole place's matches), or a camera it names."""
        assert self.place is not None
        place = self.place.condition(self.params, "p.geom")
        own = f"SELECT true FROM audit.event_places p WHERE p.seq = e.seq AND p.agency = :agency AND {place} LIMIT 1"  # noqa: S608 - composed from constants; values are bound
        return f"(coalesce(({own}), false) OR e.seq IN ({self._named_cameras()}))"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("since", "until"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v.isoformat().replace("+00:00", "Z")
        for name in ("actor", "action", "case_number"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.target is not None:
            out["target"] = str(self.target)
        if self.place is not None:
            out["place"] = self.place.kind
            if self.place.radius_m is not None:
                out["radius_m"] = self.place.radius_m
        return out


Text64 = Annotated[str | None, Query(min_length=1, max_length=255)]


def trail_filter(
    principal: Auditor,
    since: Annotated[
        str | None, Query(max_length=64, description="Records at or after this instant (RFC 3339)")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=64, description="Records before this instant (RFC 3339)")
    ] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=255, description="The actor's `sub`")] = None,
    action: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="The action", examples=["registration.contact.read"]),
    ] = None,
    case_number: Annotated[
        str | None, Query(min_length=1, max_length=64, description="The case number")
    ] = None,
    target: Annotated[
        uuid.UUID | None, Query(description="A registration or camera id the records touched")
    ] = None,
    near: Annotated[
        str | None,
        Query(
            max_length=100,
            description="A point `longitude,latitude`; with `radius_m`",
            examples=["-87.9,43.04"],
        ),
    ] = None,
    radius_m: Annotated[
        float | None,
        Query(gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, description="The radius around `near`, in metres"),
    ] = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="`west,south,east,north` (longitude, latitude)")
    ] = None,
    polygon: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="A GeoJSON Polygon or MultiPolygon (longitude, latitude; at most 2,000 characters, as a"
            " request line is at most 16 KiB)",
        ),
    ] = None,
) -> TrailFilter:
    """The records touching the place are those whose searched area or point, or a camera they name (or whose
    registration they name) intersects it — the camera where it stands now, if the agency may still see it:
    a deleted or unshared one is nowhere. `near` + `radius_m` (metres on the ellipsoid), `bbox`, or `polygon`:
    one of them."""
    assert principal.agency is not None
    f = TrailFilter(
        agency=principal.agency,
        since=_instant(since, "/query/since"),
        until=_instant(until, "/query/until"),
        actor=_plain(actor, "/query/actor"),
        action=_plain(action, "/query/action"),
        case_number=_plain(case_number, "/query/case_number"),
        target=target,
        place=parse_place(near, radius_m, bbox, polygon),
    )
    if f.since is not None and f.until is not None and f.until <= f.since:
        raise invalid("/query/until", "must be after `since`")
    return f


Filters = Annotated[TrailFilter, Depends(trail_filter)]


def cursor_seq(cursor: str) -> int:
    """The record a `next` link's cursor continues before (a position in the chain, so a bigint)."""
    value = decode_cursor(cursor, ("before",), numeric=("before",))["before"]
    if not isinstance(value, int) or not 1 <= value < 2**63:
        raise invalid("/query/cursor", "not a cursor this service issued", status=400, code="cursor_invalid")
    return value


def search_sql(f: TrailFilter, limit: int, before: int | None) -> str:
    """The search's statement, newest first, from `before` (a keyset); its values are in `f.params`."""
    where = f.where()
    if before is not None:
        where += " AND e.seq < :before"
        f.params["before"] = before
    f.params["n"] = limit + 1
    return f"SELECT {SEARCH_COLUMNS} FROM audit.events e WHERE {where} ORDER BY e.seq DESC LIMIT :n"  # noqa: S608 - composed from constants; values are bound


# How many of the newest records (those the other filters keep) a place search tests one by one before it asks
# the place's index for all of its matches instead.
PLACE_WALK = 20_000


def walk_sql(f: TrailFilter, limit: int, before: int | None) -> str:
    """A place search's first try: the newest `PLACE_WALK` records the other filters keep, each tested against the
    place (`place_probe`). When `limit + 1` of them match, they are the page: every record not tested is older than
    every record tested. A place holding much of the trail (a whole jurisdiction) is answered so in milliseconds,
    where collecting its matches from the GiST index costs a second per 300,000 (measured); a place with fewer
    recent matches is answered by `search_sql`."""
    where = f.where(place=False)
    if before is not None:
        where += " AND e.seq < :before"
        f.params["before"] = before
    f.params["n"] = limit + 1
    f.params["walk"] = PLACE_WALK
    newest = f"SELECT * FROM audit.events e WHERE {where} ORDER BY e.seq DESC LIMIT :walk"  # noqa: S608 - composed from constants; values are bound
    return f"SELECT {SEARCH_COLUMNS} FROM ({newest}) e WHERE {f.place_probe()} ORDER BY e.seq DESC LIMIT :n"  # noqa: S608 - composed from constants; values are bound


async def _audit_read(
    session: AsyncSession, principal: Principal, action: str, f: TrailFilter, **extra: Any
) -> None:
    event = audit_event(
        action,
        actor=principal.sub,
        role="auditor",
        agency=principal.agency,
        subject_type="audit_trail",
        details={"filters": f.describe(), **extra},
    )
    event.area_geojson = f.place.geojson if f.place is not None else None
    await append_session(session, event)


# --- the search -------------------------------------------------------------------------------------------

RECORD_EXAMPLE = {
    "type": "Feature",
    "id": "0b6f2a57-1c1e-4d7e-9a55-3e2f0f6f1a10",
    "geometry": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "properties": {
        "seq": 48213,
        "at": "2026-11-20T22:15:03.120456Z",
        "service": "geo_query",
        "actor": "det-alvarez",
        "actor_role": "investigator",
        "agency": "milwaukee-pd",
        "action": "search.nearest",
        "subject_type": "camera",
        "subject_id": "2a7d9c3e-4b1f-4e8a-9c6d-5f0e1a2b3c4d",
        "case_number": "2026-004512",
        "details": {"results": 12, "filters": {"radius_m": 300}},
        "hash": "4bb4090d1646b75daa67f992c5c3c8a37cb98307a7a0e81c7a1c92919dbf397f",
    },
}
SEARCH_EXAMPLE = {
    "type": "FeatureCollection",
    "features": [RECORD_EXAMPLE],
    "numberReturned": 1,
    "links": [
        {
            "href": "https://canvass.example.gov/v1/audit/records?near=-87.9065,43.0389&radius_m=200"
            "&cursor=eyJiZWZvcmUiOjQ4MjEzfQ",
            "rel": "next",
            "type": GEOJSON_MEDIA_TYPE,
        }
    ],
}


class TrailRecordProperties(BaseModel):
    seq: int = Field(description="The record's position in the chain")
    at: datetime
    service: str
    actor: str = Field(description="Who: a `sub`, or `owner:<registration id>` for an owner")
    actor_role: str
    agency: str | None
    action: str = Field(examples=["registration.contact.read"])
    subject_type: str | None
    subject_id: str | None
    case_number: str | None
    details: dict[str, Any]
    hash: str = Field(description="The record's chain hash (SHA-256, hex)")


RecordGeometry = Annotated[
    PointGeometry | LineStringGeometry | PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")
]


class TrailRecord(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: uuid.UUID
    geometry: RecordGeometry | None = Field(description="The searched area or point, when the record has one")
    properties: TrailRecordProperties


class TrailPage(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[TrailRecord]
    numberReturned: int
    links: list[dict[str, str]] = []


def _record(r: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": str(r["id"]),
        "geometry": orjson.Fragment(r["area"]) if r["area"] is not None else None,
        "properties": {
            "seq": r["seq"],
            "at": r["at"].isoformat().replace("+00:00", "Z"),
            "service": r["service"],
            "actor": r["actor"],
            "actor_role": r["actor_role"],
            "agency": r["agency"],
            "action": r["action"],
            "subject_type": r["subject_type"],
            "subject_id": r["subject_id"],
            "case_number": r["case_number"],
            "details": orjson.Fragment(r["details"]),
            "hash": r["hash"],
        },
    }


@router.get(
    "/v1/audit/records",
    summary="Search your agency's audit trail (auditors; this read is audited too)",
    response_model=TrailPage,
    responses={
        200: {"content": {GEOJSON_MEDIA_TYPE: {"example": SEARCH_EXAMPLE}}},
        **problem_responses(400, 401, 403),
    },
    response_class=GeoJSONResponse,
    description=(
        "Newest first, your agency's records only, each a GeoJSON Feature whose geometry is the area or point the "
        "record searched (null when none). Filters combine (AND). `next` links page on. Each call appends an "
        "`audit.search` record naming the filters."
    ),
)
async def search_records(
    request: Request,
    principal: Auditor,
    f: Filters,
    session: SessionDep,
    limit: LimitQuery = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From a `next` link")] = None,
) -> Any:
    n = clamp_limit(limit, default=100, maximum=1000)
    before = None
    if cursor:
        before = cursor_seq(cursor)
    rows: Any = None
    if f.place is not None:
        rows = (await session.execute(text(walk_sql(f, n, before)), f.params)).mappings().all()
        if len(rows) <= n:
            rows = None
    if rows is None:
        rows = (await session.execute(text(search_sql(f, n, before)), f.params)).mappings().all()
    page = rows[:n]
    await _audit_read(session, principal, "audit.search", f, results=len(page))
    await session.commit()
    links = [page_link(request, "self", GEOJSON_MEDIA_TYPE)]
    if len(rows) > n:
        links.append(
            page_link(request, "next", GEOJSON_MEDIA_TYPE, cursor=encode_cursor({"before": page[-1]["seq"]}))
        )
    body = {
        "type": "FeatureCollection",
        "features": [_record(r) for r in page],
        "numberReturned": len(page),
        "links": links,
    }
    return GeoJSONResponse(body, headers=NO_STORE)


# --- the export -------------------------------------------------------------------------------------------


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def export_lines(row: Any, fmt: str) -> str:
    if fmt == "csv":
        return _csv_line(["" if row[k] is None else row[k] for k in EXPORT_FIELDS])
    return jsonl_line(row).decode()


_EXPORT_EXAMPLE = {
    "seq": 48213,
    "id": "0b6f2a57-1c1e-4d7e-9a55-3e2f0f6f1a10",
    "at": "2026-11-20T22:15:03.120456Z",
    "service": "registry_api",
    "actor": "det-alvarez",
    "actor_role": "investigator",
    "agency": "milwaukee-pd",
    "action": "registration.contact.read",
    "subject_type": "registration",
    "subject_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "case_number": "2026-004512",
    "area": None,
    "details": "{}",
    "prev_hash": "9d2c54a1f0e3b7c86a4d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d",
    "hash": "4bb4090d1646b75daa67f992c5c3c8a37cb98307a7a0e81c7a1c92919dbf397f",
}
EXPORT_EXAMPLE_JSONL = orjson.dumps(_EXPORT_EXAMPLE).decode() + "\n"
EXPORT_EXAMPLE_CSV = _csv_line(list(EXPORT_FIELDS)) + _csv_line(
    ["" if v is None else v for v in _EXPORT_EXAMPLE.values()]
)


@router.get(
    "/v1/audit/export",
    summary="Export your agency's audit records, verifiably (auditors; this read is audited too)",
    responses={
        200: {
            "description": "The records, oldest first, each with its position and chain hash",
            "content": {
                JSONL_MEDIA_TYPE: {"schema": {"type": "string"}, "example": EXPORT_EXAMPLE_JSONL},
                CSV_MEDIA_TYPE: {"schema": {"type": "string"}, "example": EXPORT_EXAMPLE_CSV},
            },
        },
        **problem_responses(401, 403),
    },
    response_class=StreamingResponse,
    description=(
        "The search's filters, every matching record, oldest first, streamed as JSON Lines (`format=jsonl`) or "
        "CSV with a header line (`format=csv`). Each record carries exactly the values its hash covers — `at` "
        "in the chain's canonical form, `area` as EWKB hex, `details` as the text the hash was computed over — "
        "and `prev_hash` and `hash`, so `scripts/audit_verify_export.py` checks the file offline. An "
        "`audit.export` record naming the filters is appended before the first byte is sent."
    ),
)
async def export_records(
    principal: Auditor,
    f: Filters,
    session: SessionDep,
    format: Annotated[Literal["jsonl", "csv"], Query(description="JSON Lines or CSV")] = "jsonl",
) -> StreamingResponse:
    sql = text(f"SELECT {EXPORT_COLUMNS} FROM audit.events e WHERE {f.where()} ORDER BY e.seq")  # noqa: S608 - composed from constants; values are bound
    # Appended (and committed) before the first byte leaves: an export that cannot be audited does not start.
    await _audit_read(session, principal, "audit.export", f, format=format)
    await session.commit()

    async def body() -> AsyncIterator[bytes]:
        if format == "csv":
            yield _csv_line(list(EXPORT_FIELDS)).encode()
        # Its own session: the request's ends before a streamed body is sent. A server-side cursor, a chunk at a
        # time, so memory does not grow with the export.
        async with db.sessions() as s:
            # The first chunk of a filtered export may have to gather every match first (a target's or a place's,
            # over the whole trail): under the services' statement timeout it would be cut off after its 200 was
            # sent, the file silently short of its end. An export is the auditor's and audited; it gets longer.
            await s.execute(text(f"SET LOCAL statement_timeout = {EXPORT_STATEMENT_TIMEOUT_MS}"))
            result = await s.stream(sql.execution_options(yield_per=EXPORT_CHUNK), f.params)
            async for part in result.mappings().partitions(EXPORT_CHUNK):
                yield "".join(export_lines(r, format) for r in part).encode()

    media = CSV_MEDIA_TYPE if format == "csv" else JSONL_MEDIA_TYPE
    ext = "csv" if format == "csv" else "jsonl"
    return StreamingResponse(
        body(),
        media_type=media + ("; charset=utf-8" if format == "csv" else ""),
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="audit-{principal.agency}.{ext}"'},
    )


# --- the owner's access report ----------------------------------------------------------------------------

ACCESS_KINDS = {
    "registration.contact.read": "contact_viewed",
    "request.create": "footage_request",
    "live_window.view": "live_view",
}
SEARCH_KIND = "search_contact_list"

# Only the agencies' accesses, each once its agency's disclosure delay has passed; never who accessed.
ACCESS_SQL = """
SELECT e.seq, e.at, e.agency, a.name AS agency_name, e.action, e.case_number IS NOT NULL AS case_given
FROM audit.event_refs r
JOIN audit.events e ON e.seq = r.seq
JOIN registry.agencies a ON a.slug = e.agency
WHERE r.target = :rid
  AND e.at <= now() - make_interval(days => a.disclosure_delay_days)
  AND (e.action IN ('registration.contact.read', 'live_window.view')
       OR (e.action = 'request.create' AND e.subject_type = 'request')
       OR (e.service = 'geo_query' AND jsonb_typeof(e.details->'contacts_disclosed') = 'array'
           AND e.details->'contacts_disclosed' ? :rid))
  AND (CAST(:before AS bigint) IS NULL OR e.seq < CAST(:before AS bigint))
ORDER BY e.seq DESC
LIMIT :n
"""


class Access(BaseModel):
    agency: str = Field(examples=["milwaukee-pd"])
    agency_name: str = Field(examples=["Milwaukee Police Department"])
    date: str = Field(description="The day of the access (UTC), YYYY-MM-DD", examples=["2026-11-20"])
    kind: Literal["contact_viewed", "footage_request", "search_contact_list", "live_view"]
    case_given: bool = Field(description="Whether the access named a case number")


ACCESS_EXAMPLE = {
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "accesses": [
        {
            "agency": "milwaukee-pd",
            "agency_name": "Milwaukee Police Department",
            "date": "2026-11-20",
            "kind": "contact_viewed",
            "case_given": True,
        }
    ],
    "links": [],
}


class AccessReport(BaseModel):
    registration_id: uuid.UUID
    accesses: list[Access]
    links: list[dict[str, str]] = []


@router.get(
    "/v1/registrations/{registration_id}/access-report",
    summary="Which agencies accessed your registration, and when (owner credential)",
    response_model=AccessReport,
    responses={
        200: {"content": {"application/json": {"example": ACCESS_EXAMPLE}}},
        **problem_responses(400, 401, 404, 429),
    },
    description=(
        "Newest first: an agency read your contact details, included your cameras in a footage request, listed "
        "your contact details in a search's results, or viewed a live window you opened. Each access shows once "
        "the agency's disclosure delay (its public policy, 0 to 90 days) has passed. Who at the agency accessed "
        "it is never shown."
    ),
)
async def access_report(
    request: Request,
    registration_id: uuid.UUID,
    owner: CurrentOwner,
    session: SessionDep,
    limit: LimitQuery = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From a `next` link")] = None,
) -> Any:
    row = await owned_registration(session, registration_id, owner)
    n = clamp_limit(limit, default=100, maximum=500)
    before = None
    if cursor:
        before = cursor_seq(cursor)
    rid = str(row["id"])
    rows = (
        (await session.execute(text(ACCESS_SQL), {"rid": rid, "before": before, "n": n + 1})).mappings().all()
    )
    page = rows[:n]
    await audit(
        session,
        "audit.access_report.read",
        actor=owner_actor(row["id"]),
        role="owner",
        agency=None,
        subject_id=row["id"],
        details={"results": len(page)},
    )
    await session.commit()
    links = []
    if len(rows) > n:
        links.append(
            page_link(request, "next", "application/json", cursor=encode_cursor({"before": page[-1]["seq"]}))
        )
    return JSONResponse(
        {
            "registration_id": rid,
            "accesses": [
                {
                    "agency": r["agency"],
                    "agency_name": r["agency_name"],
                    "date": r["at"].astimezone(UTC).date().isoformat(),
                    "kind": ACCESS_KINDS.get(r["action"], SEARCH_KIND),
                    "case_given": r["case_given"],
                }
                for r in page
            ],
            "links": links,
        },
        headers=NO_STORE,
    )
