"""OGC API – Features over the same scoped and audited searches: Part 1 core (landing page, conformance,
collections, the `cameras` collection, its items with bbox, datetime, a clamped limit, next/prev, numberReturned,
timeStamp, numberMatched when cheap, and an item by id) and Part 3 (the collection's queryables and CQL2 text
filters, translated in services.geo_query.filtering). JSON only (`f=json`, or an Accept that takes JSON); a bearer
token is still required, which QGIS, GDAL and OWSLib can all send. Parameter errors are 400, as the standard requires.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import WithJsonSchema

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
from services.geo_query.filtering import (
    FILTER_LANGS,
    MAX_FILTER_CHARS,
    TEMPORAL_PROPERTY,
    datetime_condition,
    filter_condition,
    filter_for_trail,
    queryables_document,
)
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
    # The API description is OpenAPI 3.1, which only the 1.1 draft of Part 1 has a class for; the 1.0 standard's
    # class is for OpenAPI 3.0, which this API does not serve, so it is not claimed.
    "http://www.opengis.net/spec/ogcapi-features-1/1.1/conf/oas31",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.1"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
FORMATS = ("json", "geojson", "application/json", "application/geo+json")
_JSONISH = ("application/json", "application/geo+json", "application/*", "*/*", "application/problem+json")

PREFIX = "/v1/ogc"
router = APIRouter(prefix=PREFIX, tags=[TAG])
_ERRORS = problem_responses(400, 401, 403, 406, 503)

FormatQuery = Annotated[
    str | None,
    Query(description="Output format: JSON (GeoJSON for features), the only one offered"),
    WithJsonSchema({"type": "string", "enum": list(FORMATS)}),
]


def negotiate(request: Request, f: str | None) -> None:
    if f is not None:
        if f not in FORMATS:
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
                    "href": public_url(request, "/v1/ogc/api"),
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


def ogc_api_description(app_description: dict[str, Any], server_url: str) -> dict[str, Any]:
    """The service's OpenAPI description cut to the OGC API, its paths relative to the landing page (the server
    URL) and the collection's path parameter named `collectionId`, as the standard's own fragments name it: the
    form OGC clients read an operation's parameters in (GDAL looks up `/collections/{collectionId}/items` to learn
    the `limit` maximum and the filter languages)."""
    paths: dict[str, Any] = {}
    for path, item in app_description.get("paths", {}).items():
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            continue
        text = orjson.dumps(item).decode().replace('"collection_id"', '"collectionId"')
        paths[path.removeprefix(PREFIX).replace("{collection_id}", "{collectionId}") or "/"] = orjson.loads(
            text
        )
    return {
        **{k: v for k, v in app_description.items() if k not in ("paths", "servers")},
        "servers": [{"url": server_url}],
        "paths": paths,
    }


@router.get(
    "/api",
    summary="The OGC API's own OpenAPI description",
    description="The OGC API – Features operations of this service, as an OpenAPI 3.1 document whose paths are"
    " relative to the landing page. Served as `application/vnd.oai.openapi+json;version=3.1` to a client that"
    " asks for it, as `application/json` otherwise.",
    response_model=dict[str, Any],
    responses={
        200: {
            "content": {
                OPENAPI_TYPE: {
                    "schema": {"type": "object"},
                    "example": {
                        "openapi": "3.1.0",
                        "info": {"title": "Canvass geo query API", "version": "1.0.0"},
                        "servers": [{"url": "https://canvass.example/v1/ogc"}],
                        "paths": {"/collections/{collectionId}/items": {"get": {"summary": "Cameras"}}},
                    },
                }
            },
            "description": "An OpenAPI document",
        },
        **problem_responses(400, 406),
    },
)
async def api_description(request: Request, f: FormatQuery = None) -> Response:
    wanted = OPENAPI_TYPE in request.headers.get("accept", "").replace(" ", "")
    if not wanted:
        negotiate(request, f)
    document = ogc_api_description(request.app.openapi(), public_url(request, PREFIX))
    return Response(orjson.dumps(document), media_type=OPENAPI_TYPE if wanted else JSON, headers=NO_STORE)


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
            {
                "href": public_url(request, base + "/queryables"),
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": SCHEMA_JSON,
                "title": "The properties a filter may name",
            },
            {
                # The same link under the short relation name, which GDAL's OAPIF driver looks for.
                "href": public_url(request, base + "/queryables"),
                "rel": "queryables",
                "type": SCHEMA_JSON,
                "title": "The properties a filter may name",
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
    "/collections/{collection_id}/queryables",
    summary="The properties a filter on the collection may name (OGC API – Features Part 3)",
    description="A JSON Schema of the queryables; served as `application/schema+json` to a client that asks for it,"
    " as `application/json` otherwise.",
    response_model=dict[str, Any],
    responses={
        200: {
            "content": {
                SCHEMA_JSON: {
                    "schema": {"type": "object"},
                    "example": {
                        "$schema": "https://json-schema.org/draft/2020-12/schema",
                        "$id": "https://canvass.example/v1/ogc/collections/cameras/queryables",
                        "type": "object",
                        "properties": {"retention_days": {"type": "integer", "minimum": 0, "maximum": 3650}},
                        "additionalProperties": False,
                    },
                }
            },
            "description": "A JSON Schema",
        },
        **problem_responses(400, 401, 403, 404, 406, 503),
    },
)
async def queryables(
    request: Request, caller: CurrentCaller, collection_id: str, f: FormatQuery = None
) -> Response:
    if f is None and SCHEMA_JSON in request.headers.get("accept", ""):
        media_type = SCHEMA_JSON
    else:
        negotiate(request, f)
        media_type = JSON
    _known_collection(collection_id)
    url = public_url(request, f"/v1/ogc/collections/{COLLECTION}/queryables")
    return Response(orjson.dumps(queryables_document(url)), media_type=media_type, headers=NO_STORE)


LimitQuery = Annotated[
    str | int,
    Query(description=f"Features per page, 1 to {OGC_MAX_LIMIT:,}; larger values are clamped to the maximum"),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": OGC_MAX_LIMIT}),
]
DatetimeQuery = Annotated[
    str | None,
    Query(
        description=f"Keep the cameras whose `{TEMPORAL_PROPERTY}` (when the camera was added to the registry) is"
        " this instant or date, or lies in this interval: `start/end`, either end open (`..`). RFC 3339 instants"
        " with their offset; a date stands for its whole day (UTC); intervals include their ends",
        examples=["../2026-11-20T22:15:00Z"],
    ),
]
FilterQuery = Annotated[
    str | None,
    Query(
        description="A CQL2 text filter over the collection's queryables (see its `queryables` link): comparisons,"
        " AND/OR/NOT, IS NULL, LIKE, BETWEEN, IN, TIMESTAMP()/DATE() literals. Mix AND with OR only inside"
        " parentheses",
        examples=["owner_kind = 'business' AND retention_days >= 14"],
    ),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": MAX_FILTER_CHARS, "pattern": "^[^\\u0000]*$"}
    ),
]
FilterLangQuery = Annotated[
    str | None,
    Query(
        alias="filter-lang",
        description="The filter's language: `cql2-text` (the default; `cql-text` is taken as the same)",
    ),
    WithJsonSchema({"type": "string", "enum": list(FILTER_LANGS), "default": FILTER_LANGS[0]}),
]


@router.get(
    "/collections/{collection_id}/items",
    summary="Cameras of the collection (OGC items)",
    description=(
        "The cameras the agency may see, ordered by id, optionally inside `bbox` (west > east crosses the"
        f" antimeridian), registered at `datetime`, and matching a CQL2 `filter`. `limit` defaults to"
        f" {OGC_DEFAULT_LIMIT} and is clamped to {OGC_MAX_LIMIT:,}; large pages are streamed. The camera filters"
        " of the search API apply here too."
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
    limit: LimitQuery = OGC_DEFAULT_LIMIT,
    datetime: DatetimeQuery = None,
    filter: FilterQuery = None,
    filter_lang: FilterLangQuery = None,
    cursor: CursorQuery = None,
    f: FormatQuery = None,
) -> Response:
    negotiate(request, f)
    _known_collection(collection_id)
    if filters.facing:
        raise invalid("/query/facing", "needs a point; use the /v1/cameras searches", status=400)
    try:
        n = int(limit)
    except ValueError as exc:
        raise invalid("/query/limit", "must be a whole number", status=400) from exc
    if n < 1:
        raise invalid("/query/limit", "must be at least 1", status=400)
    n = min(n, OGC_MAX_LIMIT)
    if filter_lang is not None and filter is None:
        raise invalid("/query/filter-lang", "goes with a filter", status=400)
    box = parse_bbox(bbox, None, status=400) if bbox is not None else None
    search = Search(caller, "ogc.items", filters, reference, area_geojson=box.geojson() if box else None)
    if box is not None:
        search.details["bbox"] = [box.west, box.south, box.east, box.north]
        search.in_bbox(box)
    if datetime is not None:
        search.sql.where.append(datetime_condition(datetime, search.sql))
        search.details["datetime"] = datetime
    if filter is not None:
        search.sql.where.append(filter_condition(filter, filter_lang, search.sql))
        search.details["filter"] = filter_for_trail(filter)
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
