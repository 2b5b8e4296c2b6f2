"""OGC API – Features, Part 1 core, over the same scoped and audited searches: landing page, conformance,
collections, the `cameras` collection, its items (bbox, clamped limit, next/prev, numberReturned, timeStamp,
numberMatched when cheap) and an item by id. JSON only (`f=json`, or an Accept that takes JSON); a bearer token is
still required, which QGIS, GDAL and OWSLib can all send. Parameter errors are 400, as the standard requires.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.geo_query.database import db
from services.geo_query.dependencies import (
    CaseReference,
    CurrentCaller,
    CursorQuery,
    Filters,
    QueryFilters,
    id_cursor,
    parse_bbox,
)
from services.geo_query.features import NO_STORE, collection, public_url
from services.geo_query.schemas import (
    CameraCollection,
    CameraFeature,
    CollectionInfo,
    Collections,
    Conformance,
    LandingPage,
)
from services.geo_query.service import Search, fetch_page
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import GEOJSON_MEDIA_TYPE, GeoJSONResponse, JSONResponse

TAG = "ogc"
COLLECTION = "cameras"
OGC_DEFAULT_LIMIT = 100
OGC_MAX_LIMIT = 100_000  # above STREAM_AT the page is streamed
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
JSON = "application/json"
_JSONISH = ("application/json", "application/geo+json", "application/*", "*/*", "application/problem+json")

router = APIRouter(prefix="/v1/ogc", tags=[TAG])
_ERRORS = problem_responses(400, 401, 403, 406, 503)

FormatQuery = Annotated[
    str | None, Query(description="Output format: `json` (GeoJSON for features); the only one offered")
]


def negotiate(request: Request, f: str | None) -> None:
    if f is not None:
        if f.lower() not in ("json", "geojson", "application/json", "application/geo+json"):
            raise invalid("/query/f", "only f=json is offered", status=400)
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if not any(t in _JSONISH for t in types):
        raise Problem(406, "This API answers in JSON (application/json, application/geo+json) only.")


def _json(body: object) -> Response:
    return JSONResponse(body, headers=NO_STORE)


@router.get(
    "",
    summary="OGC API landing page",
    response_model=LandingPage,
    responses=_ERRORS,
)
async def landing_page(request: Request, caller: CurrentCaller, f: FormatQuery = None) -> Response:
    negotiate(request, f)
    return _json(
        {
            "title": "Canvass camera registry",
            "description": f"Registered community cameras shared with {caller.agency.slug}, as OGC API – Features.",
            "links": [
                {
                    "href": public_url(request, "/v1/ogc"),
                    "rel": "self",
                    "type": JSON,
                    "title": "This document",
                },
                {
                    "href": public_url(request, "/openapi.json"),
                    "rel": "service-desc",
                    "type": OPENAPI_TYPE,
                    "title": "The API definition",
                },
                {
                    "href": public_url(request, "/docs"),
                    "rel": "service-doc",
                    "type": "text/html",
                    "title": "Docs",
                },
                {
                    "href": public_url(request, "/v1/ogc/conformance"),
                    "rel": "conformance",
                    "type": JSON,
                    "title": "Conformance classes",
                },
                {
                    "href": public_url(request, "/v1/ogc/collections"),
                    "rel": "data",
                    "type": JSON,
                    "title": "Collections",
                },
            ],
        }
    )


# OWSLib and others join relative paths onto the landing page URL, which they are often given with a slash.
router.add_api_route("/", landing_page, methods=["GET"], include_in_schema=False)


@router.get(
    "/conformance", summary="OGC API conformance classes", response_model=Conformance, responses=_ERRORS
)
async def conformance(request: Request, caller: CurrentCaller, f: FormatQuery = None) -> Response:
    negotiate(request, f)
    return _json({"conformsTo": CONFORMANCE})


async def _collection_info(request: Request, caller_agency_id: uuid.UUID) -> dict[str, object]:
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM"
            " (SELECT ST_Envelope(jurisdiction)::box2d AS b FROM registry.agencies WHERE id = $1) s",
            caller_agency_id,
        )
    base = f"/v1/ogc/collections/{COLLECTION}"
    info: dict[str, object] = {
        "id": COLLECTION,
        "title": "Registered cameras",
        "description": "Community cameras in the agency's jurisdiction whose owners share them with the agency.",
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            {"href": public_url(request, base), "rel": "self", "type": JSON, "title": "This collection"},
            {
                "href": public_url(request, base + "/items"),
                "rel": "items",
                "type": GEOJSON_MEDIA_TYPE,
                "title": "Items",
            },
        ],
    }
    if row is not None and row[0] is not None:
        info["extent"] = {"spatial": {"bbox": [[float(v) for v in row]], "crs": CRS84}}
    return info


@router.get(
    "/collections", summary="The collections (one: cameras)", response_model=Collections, responses=_ERRORS
)
async def collections(request: Request, caller: CurrentCaller, f: FormatQuery = None) -> Response:
    negotiate(request, f)
    info = await _collection_info(request, caller.agency.id)
    return _json(
        {
            "links": [{"href": public_url(request, "/v1/ogc/collections"), "rel": "self", "type": JSON}],
            "collections": [info],
        }
    )


def _known_collection(collection_id: str) -> None:
    if collection_id != COLLECTION:
        raise Problem(404, f"There is no collection {collection_id!r}; the one collection is {COLLECTION!r}.")


@router.get(
    "/collections/{collection_id}",
    summary="The cameras collection",
    response_model=CollectionInfo,
    responses=problem_responses(400, 401, 403, 404, 406, 503),
)
async def collection_info(
    request: Request, caller: CurrentCaller, collection_id: str, f: FormatQuery = None
) -> Response:
    negotiate(request, f)
    _known_collection(collection_id)
    return _json(await _collection_info(request, caller.agency.id))


@router.get(
    "/collections/{collection_id}/items",
    summary="Cameras of the collection (OGC items)",
    description=(
        "The cameras the agency may see, ordered by id, optionally inside `bbox` (west > east crosses the"
        f" antimeridian). `limit` defaults to {OGC_DEFAULT_LIMIT} and is clamped to {OGC_MAX_LIMIT:,}; large pages"
        " are streamed. The camera filters of the search API apply here too."
    ),
    response_model=CameraCollection,
    response_class=GeoJSONResponse,
    responses={
        200: {"content": {GEOJSON_MEDIA_TYPE: {}}, "description": "A GeoJSON FeatureCollection"},
        **problem_responses(400, 401, 403, 404, 406, 503),
    },
)
async def items(
    request: Request,
    caller: CurrentCaller,
    collection_id: str,
    filters: QueryFilters,
    reference: CaseReference,
    bbox: Annotated[
        str | None,
        Query(description="west,south,east,north in WGS84 (CRS84)", examples=["-74.0,40.7,-73.9,40.8"]),
    ] = None,
    limit: Annotated[
        str | None, Query(description=f"1 to {OGC_MAX_LIMIT:,}; larger values are clamped")
    ] = None,
    cursor: CursorQuery = None,
    f: FormatQuery = None,
) -> Response:
    negotiate(request, f)
    _known_collection(collection_id)
    if filters.facing:
        raise invalid("/query/facing", "needs a point; use the /v1/cameras searches", status=400)
    n = OGC_DEFAULT_LIMIT
    if limit is not None:
        try:
            n = int(limit)
        except ValueError as exc:
            raise invalid("/query/limit", "must be a whole number", status=400) from exc
        if n < 1:
            raise invalid("/query/limit", "must be at least 1", status=400)
        n = min(n, OGC_MAX_LIMIT)
    box = parse_bbox(bbox, None, status=400) if bbox is not None else None
    search = Search(caller, "ogc.items", filters, reference, area_geojson=box.geojson() if box else None)
    if box is not None:
        search.details["bbox"] = [box.west, box.south, box.east, box.north]
        search.in_bbox(box)
    key = id_cursor(cursor)
    return await collection(
        request,
        search,
        n,
        "id",
        key=key[0] if key else None,
        backwards=bool(key and key[1]),
        paged_from=cursor,
        extra_links=[
            {
                "href": public_url(request, f"/v1/ogc/collections/{COLLECTION}"),
                "rel": "collection",
                "type": JSON,
            }
        ],
    )


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One camera (OGC item)",
    response_model=CameraFeature,
    response_class=GeoJSONResponse,
    responses={
        200: {"content": {GEOJSON_MEDIA_TYPE: {}}, "description": "A GeoJSON Feature"},
        **problem_responses(400, 401, 403, 404, 406, 503),
    },
)
async def item(
    request: Request,
    caller: CurrentCaller,
    reference: CaseReference,
    collection_id: str,
    feature_id: str,
    f: FormatQuery = None,
) -> Response:
    negotiate(request, f)
    _known_collection(collection_id)
    try:
        camera_id = uuid.UUID(feature_id)
    except ValueError as exc:
        raise Problem(404, f"There is no camera {feature_id!r} you may see.") from exc
    search = Search(caller, "ogc.item", Filters(), reference, subject=("camera", str(camera_id)))
    search.sql.where.append(f"c.id = {search.sql.p(camera_id, 'uuid')}")
    page = await fetch_page(search, 1, "id")
    await search.audit(page.returned)
    if not page.returned:
        raise Problem(404, f"There is no camera {feature_id!r} you may see.")
    links = [
        {
            "href": public_url(request, f"/v1/ogc/collections/{COLLECTION}/items/{camera_id}"),
            "rel": "self",
            "type": GEOJSON_MEDIA_TYPE,
        },
        {"href": public_url(request, f"/v1/ogc/collections/{COLLECTION}"), "rel": "collection", "type": JSON},
    ]
    # The Feature text ends with its closing brace: the links join it there, unparsed.
    feature = page.body[:-1] + ',"links":' + orjson.dumps(links).decode() + "}"
    return GeoJSONResponse(feature, headers=NO_STORE)
