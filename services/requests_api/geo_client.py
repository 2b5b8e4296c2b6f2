"""Which registered cameras a request covers, asked of geo_query over HTTP through its published contract
(`openapi/geo_query.json`; a test checks the operations, parameters and response fields named here against it).

The investigator's own bearer token and the case number are forwarded, so geo_query scopes the search to what
the investigator may see and audits it under the case. Only pseudonymous ids are kept from the answer
(registration id, camera id) with `footage_until`, the distance and the retention: contact details geo_query may
include are dropped here, never stored.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pyproj import Geod

from services.requests_api.upstream import bad_gateway, client, problem_detail, timeout, unreachable
from shared.errors import Problem
from shared.settings import get_settings

SERVICE = "geo_query"
PAGE = 1000
MAX_PAGES = 10
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    params: tuple[str, ...]
    response_schema: str


RADIUS = Operation(
    "get",
    "/v1/cameras/radius",
    ("lon", "lat", "radius_m", "incident_at", "case_number", "contacts", "limit", "cursor"),
    "CameraCollection",
)
AREA = Operation(
    "post",
    "/v1/cameras/area",
    ("incident_at", "case_number", "contacts", "limit", "cursor"),
    "CameraCollection",
)
ROUTE = Operation(
    "post",
    "/v1/cameras/route",
    ("case_number", "contacts", "limit", "cursor"),
    "RouteCollection",
)
ITEM = Operation(
    "get",
    "/v1/ogc/collections/{collection_id}/items/{feature_id}",
    ("collection_id", "feature_id", "case_number", "contacts"),
    "CameraFeature",
)
OPERATIONS = (RADIUS, AREA, ROUTE, ITEM)
# What this client reads from each camera Feature's properties, and from a FeatureCollection.
FEATURE_PROPERTIES = ("registration_id", "footage_until", "distance_m", "retention_days", "shares_history")
COLLECTION_FIELDS = ("features", "links")
AREA_BODY_FIELDS = ("area", "point")
# What a route search sends (the request's route as the caller gave it) and reads besides each camera's above.
ROUTE_BODY_FIELDS = ("path", "crs", "buffer_m", "times", "start", "speed", "margin_s")
ROUTE_FEATURE_PROPERTIES = ("window",)
ROUTE_SUMMARY_FIELDS = ("area", "starts_at", "ends_at")


@dataclass
class Camera:
    id: uuid.UUID
    registration_id: uuid.UUID
    footage_until: datetime | None
    distance_m: float | None
    retention_days: int | None
    # False where the owner registered the camera as not willing to share recorded footage: never asked for it.
    shares_history: bool = True
    lon: float | None = None
    lat: float | None = None
    # Along a route: the minutes of footage this camera is asked for (when the path passed it ± the margin).
    window: tuple[datetime, datetime] | None = None

    def out(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "camera_id": str(self.id),
            "footage_until": iso(self.footage_until),
            "distance_m": None if self.distance_m is None else round(self.distance_m, 1),
            "retention_days": self.retention_days,
        }
        if self.window is not None:
            out["window"] = {"start": iso(self.window[0]), "end": iso(self.window[1])}
        return out


@dataclass
class TargetDraft:
    registration_id: uuid.UUID
    cameras: list[Camera] = field(default_factory=list)

    @property
    def footage_until(self) -> datetime | None:
        known = [c.footage_until for c in self.cameras if c.footage_until is not None]
        return min(known) if known else None

    @property
    def distance_m(self) -> float | None:
        known = [c.distance_m for c in self.cameras if c.distance_m is not None]
        return min(known) if known else None

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """Along a route: the span of its cameras' windows, the only minutes the owner is asked for."""
        return window_of([c.window for c in self.cameras])


def window_of(windows: list[tuple[datetime, datetime] | None]) -> tuple[datetime, datetime] | None:
    known = [w for w in windows if w is not None]
    return (min(w[0] for w in known), max(w[1] for w in known)) if known else None


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _url(path: str) -> str:
    return get_settings().geo_query_url.rstrip("/") + path


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _camera(feature: dict[str, Any]) -> Camera:
    props = feature["properties"]
    coords = (feature.get("geometry") or {}).get("coordinates") or [None, None]
    return Camera(
        id=uuid.UUID(str(feature["id"])),
        registration_id=uuid.UUID(str(props["registration_id"])),
        footage_until=parse_time(props.get("footage_until")),
        distance_m=props.get("distance_m"),
        retention_days=props.get("retention_days"),
        shares_history=_strict_bool(props["shares_history"]),
        lon=coords[0],
        lat=coords[1],
        window=_window(props.get("window")),
    )


def _window(value: Any) -> tuple[datetime, datetime] | None:
    if value is None:
        return None
    start, end = parse_time(value["start"]), parse_time(value["end"])
    if start is None or end is None or end < start:
        raise ValueError("not a window")
    return start, end


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("shares_history is not a boolean")
    return value


def willing(cameras: list[Camera]) -> list[Camera]:
    """The cameras whose owners share recorded footage: the only ones a footage request may ask about."""
    return [c for c in cameras if c.shares_history]


def _next_cursor(body: dict[str, Any]) -> str | None:
    for link in body.get("links") or []:
        if link.get("rel") == "next":
            values = parse_qs(urlsplit(link.get("href", "")).query).get("cursor")
            return values[0] if values else None
    return None


async def _call(method: str, path: str, authorization: str, **kwargs: Any) -> httpx.Response:
    t = get_settings().geo_query_timeout_s
    try:
        # httpx's timeouts bound each phase; this bounds the whole exchange, so a trickling answer cannot hang us.
        async with asyncio.timeout(t):
            r = await client().request(
                method,
                _url(path),
                headers={"Authorization": authorization, "Accept": "application/geo+json"},
                timeout=timeout(),
                **kwargs,
            )
    except TimeoutError as exc:
        raise unreachable(SERVICE, httpx.ReadTimeout("deadline")) from exc
    except httpx.HTTPError as exc:
        raise unreachable(SERVICE, exc) from exc
    if r.status_code in (400, 422):
        raise Problem(422, f"{SERVICE} refused the search: {problem_detail(r)}", kind="validation")
    if r.status_code in (401, 403):
        raise Problem(403, f"{SERVICE} refused the search: {problem_detail(r)}")
    return r


def _features(r: httpx.Response) -> dict[str, Any]:
    if r.status_code != 200:
        raise bad_gateway(SERVICE, r)
    try:
        body = r.json()
        assert isinstance(body, dict) and isinstance(body.get("features"), list)
        return body
    except (ValueError, AssertionError) as exc:
        raise Problem(502, f"{SERVICE} answered with something other than a FeatureCollection.") from exc


async def cameras_in(
    authorization: str,
    case_number: str,
    incident_at: datetime,
    point: tuple[float, float],
    *,
    radius_m: float | None = None,
    area_geojson: dict[str, Any] | None = None,
) -> list[Camera]:
    """Every camera the caller may see within the radius of the point, or inside the area."""
    # Owners are told through registry_api, so the search needs no contact details: asking for none keeps
    # geo_query from decrypting (and auditing a disclosure of) every owner's contact for nothing.
    base: dict[str, Any] = {
        "incident_at": iso(incident_at),
        "case_number": case_number,
        "contacts": "false",
        "limit": PAGE,
    }
    cameras: list[Camera] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = dict(base, **({"cursor": cursor} if cursor else {}))
        if radius_m is not None:
            params.update(lon=point[0], lat=point[1], radius_m=radius_m)
            r = await _call(RADIUS.method, RADIUS.path, authorization, params=params)
        else:
            body = {"area": area_geojson, "point": {"type": "Point", "coordinates": list(point)}}
            r = await _call(AREA.method, AREA.path, authorization, params=params, json=body)
        page = _features(r)
        try:
            cameras.extend(_camera(f) for f in page["features"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Problem(502, f"{SERVICE} answered with a camera this service cannot read.") from exc
        cursor = _next_cursor(page)
        if cursor is None:
            return cameras
    raise Problem(
        422,
        f"The area holds more than {PAGE * MAX_PAGES} cameras; narrow it.",
        kind="validation",
    )


@dataclass
class RouteAnswer:
    cameras: list[Camera]
    area: dict[str, Any]  # the path's buffer, a Polygon or MultiPolygon
    starts_at: datetime
    ends_at: datetime


async def cameras_along(authorization: str, case_number: str, route: dict[str, Any]) -> RouteAnswer:
    """Every camera the caller may see along the route, each with its own footage window."""
    base: dict[str, Any] = {"case_number": case_number, "contacts": "false", "limit": PAGE}
    body = {k: route[k] for k in ROUTE_BODY_FIELDS if route.get(k) is not None}
    cameras: list[Camera] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = dict(base, **({"cursor": cursor} if cursor else {}))
        page = _features(await _call(ROUTE.method, ROUTE.path, authorization, params=params, json=body))
        try:
            cameras.extend(_camera(f) for f in page["features"])
            summary = page["route"]
            start, end = parse_time(summary["starts_at"]), parse_time(summary["ends_at"])
            assert start is not None and end is not None and isinstance(summary["area"], dict)
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise Problem(502, f"{SERVICE} answered with a route this service cannot read.") from exc
        cursor = _next_cursor(page)
        if cursor is None:
            return RouteAnswer(cameras, summary["area"], start, end)
    raise Problem(
        422,
        f"The route passes more than {PAGE * MAX_PAGES} cameras; narrow its buffer.",
        kind="validation",
    )


async def cameras_by_id(
    authorization: str,
    case_number: str,
    incident_at: datetime,
    point: tuple[float, float],
    ids: list[uuid.UUID],
) -> list[Camera]:
    """The named cameras (each must be one the caller may see); footage_until from each camera's retention."""

    async def one(cid: uuid.UUID) -> Camera:
        path = ITEM.path.format(collection_id="cameras", feature_id=cid)
        r = await _call(
            ITEM.method, path, authorization, params={"case_number": case_number, "contacts": "false"}
        )
        if r.status_code == 404:
            raise Problem(
                422,
                f"/body/camera_ids: camera {cid} is not one your agency may see",
                kind="validation",
                title="Request validation failed",
            )
        if r.status_code != 200:
            raise bad_gateway(SERVICE, r)
        try:
            cam = _camera(r.json())
        except (KeyError, TypeError, ValueError) as exc:
            raise Problem(502, f"{SERVICE} answered with a camera this service cannot read.") from exc
        if cam.retention_days is not None:
            cam.footage_until = incident_at + timedelta(days=cam.retention_days)
        if cam.lon is not None and cam.lat is not None:
            cam.distance_m = float(_GEOD.inv(point[0], point[1], cam.lon, cam.lat)[2])
        return cam

    return list(await asyncio.gather(*(one(c) for c in ids)))


def group_by_owner(cameras: list[Camera]) -> list[TargetDraft]:
    """One target per owner, their cameras most urgent first; targets ordered the same way (the footage that
    will be overwritten soonest first, then the nearest)."""
    far = datetime.max.replace(tzinfo=None)

    def urgency(c: Camera) -> tuple[Any, ...]:
        until = c.footage_until.replace(tzinfo=None) if c.footage_until else far
        return (until, c.distance_m if c.distance_m is not None else float("inf"), str(c.id))

    owners: dict[uuid.UUID, TargetDraft] = {}
    for c in sorted(cameras, key=urgency):
        owners.setdefault(c.registration_id, TargetDraft(c.registration_id)).cameras.append(c)
    return sorted(owners.values(), key=lambda t: urgency(t.cameras[0]))
