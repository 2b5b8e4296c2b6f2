"""The camera searches: within a radius of a point, the nearest K, in a bbox, inside a polygon. Each is scoped to the
caller's agency, filtered the same way, answered as a GeoJSON FeatureCollection and audited."""

from __future__ import annotations

import math
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.geo_query.dependencies import (
    MAX_K,
    MAX_RADIUS_M,
    Caller,
    CaseReference,
    CurrentCaller,
    CursorQuery,
    OptionalPoint,
    QueryFilters,
    QueryPoint,
    RequiredPoint,
    distance_cursor,
    id_cursor,
    parse_bbox,
)
from services.geo_query.features import NO_STORE, collection, self_url
from services.geo_query.routing import LeanRoute
from services.geo_query.schemas import AreaSearch, CameraCollection
from services.geo_query.service import Search, fetch_page, now_rfc3339
from shared.errors import invalid, problem_responses
from shared.geojson import GEOJSON_MEDIA_TYPE, GeoJSONResponse, geodesic_area_m2
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, LimitQuery, clamp_limit

TAG = "cameras"
router = APIRouter(prefix="/v1/cameras", tags=[TAG], route_class=LeanRoute)
_ERRORS = problem_responses(400, 401, 403, 422, 503)
_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON_MEDIA_TYPE: {}}, "description": "The cameras, as a GeoJSON FeatureCollection"}
}
CountQuery = Annotated[
    bool,
    Query(description="Also count every matching camera (`numberMatched`); one page is counted for free"),
]


def max_radius(caller: Caller) -> float:
    return min(caller.agency.max_search_radius_m, MAX_RADIUS_M)


def _check_facing(filters: Any, point: QueryPoint | None) -> None:
    if filters.facing and point is None:
        raise invalid("/query/facing", "needs a point: the incident location the cameras should face")


@router.get(
    "/radius",
    summary="Cameras within a radius of a point, nearest first",
    description=(
        "Cameras within `radius_m` metres (geodesic, WGS84) of the point, ordered by distance, each with"
        " `distance_m` and `bearing_deg` from the point. The point is `lon`/`lat`, or `x`/`y` in `crs` (an EPSG"
        " code or OGC URI, e.g. a CAD's State Plane CRS). The radius is capped by the agency's"
        " `max_search_radius_m`. Pages follow the `next` link (a keyset cursor on distance)."
    ),
    response_model=CameraCollection,
    response_class=GeoJSONResponse,
    responses={**_OK, **_ERRORS},
)
async def cameras_within_radius(
    request: Request,
    caller: CurrentCaller,
    point: RequiredPoint,
    filters: QueryFilters,
    reference: CaseReference,
    radius_m: Annotated[
        float, Query(gt=0, allow_inf_nan=False, description="Search radius in metres", examples=[300])
    ],
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
    count: CountQuery = False,
) -> Response:
    cap = max_radius(caller)
    if radius_m > cap:
        raise invalid(
            "/query/radius_m",
            f"the agency's maximum search radius is {cap:g} m",
            code="less_than_equal",
            params={"le": cap},
        )
    _check_facing(filters, point)
    search = Search(caller, "search.radius", filters, reference, point=point, order="distance")
    search.details["radius_m"] = radius_m
    search.within(radius_m)
    return await collection(
        request,
        search,
        clamp_limit(limit, DEFAULT_LIMIT, MAX_LIMIT),
        "distance",
        key=distance_cursor(cursor),
        paged_from=cursor,
        count=count,
    )


@router.get(
    "/nearest",
    summary="The K nearest cameras to a point",
    description=(
        "The `k` cameras nearest to the point in true geodesic order (WGS84), optionally no farther than"
        " `max_distance_m`, each with `distance_m` and `bearing_deg`. The point is `lon`/`lat` or `x`/`y` in `crs`."
        " The spatial index finds K candidates; their farthest geodesic distance bounds an exact geodesic search."
    ),
    response_model=CameraCollection,
    response_class=GeoJSONResponse,
    responses={**_OK, **_ERRORS},
)
async def nearest_cameras(
    request: Request,
    caller: CurrentCaller,
    point: RequiredPoint,
    filters: QueryFilters,
    reference: CaseReference,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many cameras", examples=[10])] = 10,
    max_distance_m: Annotated[
        float | None,
        Query(
            gt=0, allow_inf_nan=False, description="Only cameras at most this far (metres)", examples=[1000]
        ),
    ] = None,
) -> Response:
    if max_distance_m is not None and max_distance_m > MAX_RADIUS_M:
        raise invalid(
            "/query/max_distance_m",
            f"at most {MAX_RADIUS_M:g} m",
            code="less_than_equal",
            params={"le": MAX_RADIUS_M},
        )
    search = Search(caller, "search.nearest", filters, reference, point=point, order="distance")
    search.details.update(k=k, max_distance_m=max_distance_m)
    if max_distance_m is not None:
        search.within(max_distance_m)
    search.nearest(k)
    page = await fetch_page(search, k, "distance")
    return GeoJSONResponse(_body(request, page.body, page.returned), headers=NO_STORE)


def _body(request: Request, features: str, returned: int) -> str:
    tail = {
        "numberReturned": returned,
        "numberMatched": returned,
        "timeStamp": now_rfc3339(),
        "links": [{"href": self_url(request), "rel": "self", "type": GEOJSON_MEDIA_TYPE}],
    }
    return '{"type":"FeatureCollection","features":[' + features + "]," + orjson.dumps(tail).decode()[1:]


@router.get(
    "/bbox",
    summary="Cameras in a bounding box",
    description=(
        "Cameras inside `bbox` (west,south,east,north in WGS84, or in `bbox-crs`). A bbox whose west is greater"
        " than its east crosses the antimeridian and is searched as two boxes. Ordered by id; pages follow the"
        " `next`/`prev` links (keyset cursors). With `point`, each camera carries its distance and bearing from it"
        " and `facing` can be used."
    ),
    response_model=CameraCollection,
    response_class=GeoJSONResponse,
    responses={**_OK, **_ERRORS},
)
async def cameras_in_bbox(
    request: Request,
    caller: CurrentCaller,
    filters: QueryFilters,
    reference: CaseReference,
    point: OptionalPoint,
    bbox: Annotated[
        str,
        Query(
            description="west,south,east,north (4 numbers; 6 with heights)",
            examples=["-73.99,40.745,-73.98,40.752"],
        ),
    ],
    bbox_crs: Annotated[
        str | None,
        Query(
            alias="bbox-crs", description="The CRS of bbox (EPSG code or OGC URI); WGS84 lon/lat by default"
        ),
    ] = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
    count: CountQuery = False,
) -> Response:
    box = parse_bbox(bbox, bbox_crs)
    _check_facing(filters, point)
    search = Search(caller, "search.bbox", filters, reference, point=point, area_geojson=box.geojson())
    search.details["bbox"] = [box.west, box.south, box.east, box.north]
    search.in_bbox(box)
    key = id_cursor(cursor)
    return await collection(
        request,
        search,
        clamp_limit(limit, DEFAULT_LIMIT, MAX_LIMIT),
        "id",
        key=key[0] if key else None,
        backwards=bool(key and key[1]),
        paged_from=cursor,
        count=count,
    )


@router.post(
    "/area",
    summary="Cameras inside a polygon",
    description=(
        "Cameras inside a GeoJSON Polygon or MultiPolygon (either winding; closed rings; no self-crossing). The"
        " area is capped at the area of a circle of the agency's `max_search_radius_m`. Ordered by id; for the next"
        " page POST the same body to the `next` link. With `point`, each camera carries its distance and bearing"
        " from it and `facing` can be used."
    ),
    response_model=CameraCollection,
    response_class=GeoJSONResponse,
    responses={**_OK, **_ERRORS},
)
async def cameras_in_area(
    request: Request,
    caller: CurrentCaller,
    body: AreaSearch,
    filters: QueryFilters,
    reference: CaseReference,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
    count: CountQuery = False,
) -> Response:
    shape = body.area.to_shapely()
    parts = list(shape.geoms) if shape.geom_type == "MultiPolygon" else [shape]
    if any(p.bounds[2] - p.bounds[0] > 180 for p in parts):
        raise invalid(
            "/body/area",
            "spans more than 180° of longitude; split an area crossing the antimeridian into a MultiPolygon",
        )
    cap = math.pi * max_radius(caller) ** 2
    area = geodesic_area_m2(shape)
    if area > cap:
        raise invalid(
            "/body/area", f"covers {area / 1e6:.3f} km²; the agency's maximum is {cap / 1e6:.3f} km²"
        )
    point = QueryPoint(body.point.coordinates[0], body.point.coordinates[1]) if body.point else None
    _check_facing(filters, point)
    geojson = body.area.geojson()
    search = Search(caller, "search.area", filters, reference, point=point, area_geojson=geojson)
    search.details["area_m2"] = round(area, 1)
    search.in_area(geojson)
    key = id_cursor(cursor)
    return await collection(
        request,
        search,
        clamp_limit(limit, DEFAULT_LIMIT, MAX_LIMIT),
        "id",
        key=key[0] if key else None,
        backwards=bool(key and key[1]),
        paged_from=cursor,
        count=count,
    )
