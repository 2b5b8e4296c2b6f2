"""Agencies: an agency admin publishes the agency's program (slug, name, jurisdiction, policy, privacy notice);
anyone reads the name, slug, jurisdiction and privacy notice, and asks which programs cover a point (where a
resident can register)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from sqlalchemy.engine import RowMapping

from services.registry_api import notices
from services.registry_api.auditing import audit
from services.registry_api.database import SessionDep, db
from services.registry_api.dependencies import IF_MATCH_REQUIRED, AgencyAdmin, FoundingAdmin, RequiredIfMatch
from services.registry_api.repository import agencies as repo
from services.registry_api.schemas import (
    NOTICE_FIELDS,
    AgencyCollection,
    AgencyCreate,
    AgencyFeature,
    AgencyPatch,
    AgencyReadFeature,
    Slug,
)
from services.registry_api.shapes import agency_feature
from shared.auth import TOKEN_OPTIONAL, OptionalPrincipal, Principal
from shared.concurrency import check_if_match, etag
from shared.errors import Problem, problem_responses
from shared.geojson import GeoJSONResponse
from shared.links import link
from shared.pagination import LimitQuery, clamp_limit, decode_cursor, encode_cursor, page_link
from shared.settings import get_settings

router = APIRouter(prefix="/v1/agencies", tags=["agencies"], default_response_class=GeoJSONResponse)

GEOJSON = "application/geo+json"
MAX_AGENCIES = 1000

# OGC API - Features' `skipGeometry`: the agencies without their jurisdictions, for a list of names (a statewide
# deployment's boundaries are megabytes a phone need not download to show them).
SkipGeometry = Annotated[
    bool,
    Query(
        alias="skipGeometry",
        description=(
            "`true`: each Feature's geometry is null (its jurisdiction is left out), for a list of names; "
            "`false` (the default): the jurisdiction is given"
        ),
    ),
]

# A jurisdiction sized for a map: an overview of a statewide deployment's programs on a phone needs a pixel's worth
# of each boundary, not its thousands of surveyed vertices. Which programs cover a point is always decided on the
# jurisdiction as stored (GET /v1/agencies/covering), never on what is sent for drawing.
SIMPLIFY_MAX_M = 100_000
Simplify = Annotated[
    int | None,
    Query(
        ge=1,
        le=SIMPLIFY_MAX_M,
        description=(
            f"Metres (1 to {SIMPLIFY_MAX_M:,}): each jurisdiction simplified for a map whose pixel is about this "
            "size — it strays about this far at most from the stored boundary, its topology is kept (no ring "
            "crosses itself or another, none vanishes), and its coordinates are given to a tenth of it or finer. "
            "Always a valid, non-empty (Multi)Polygon: one too small to simplify is given as stored. Which "
            "programs cover a point is decided on the jurisdictions as stored. Absent: the jurisdiction as "
            "stored. Has no effect with `skipGeometry=true`."
        ),
        examples=[500],
    ),
]

FEATURE_EXAMPLE = {
    "type": "Feature",
    "id": "0b9f6f3e-6d1a-4c55-8a0c-3f6f1d2b9e10",
    "geometry": {
        "type": "MultiPolygon",
        "coordinates": [
            [[[-88.07, 42.92], [-87.86, 42.92], [-87.86, 43.19], [-88.07, 43.19], [-88.07, 42.92]]]
        ],
    },
    "properties": {"slug": "milwaukee-pd", "name": "Milwaukee Police Department"},
}
COLLECTION_EXAMPLE = {
    "type": "FeatureCollection",
    "features": [FEATURE_EXAMPLE],
    "links": [],
    "numberReturned": 1,
}


def _own(principal: Principal | None, slug: str) -> bool:
    return principal is not None and principal.agency == slug


def _geo_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> GeoJSONResponse:
    return GeoJSONResponse(body, status_code=status, headers=headers)


@router.post(
    "",
    summary="Publish an agency's program: slug, name, jurisdiction, request policy and privacy notice",
    status_code=201,
    response_model=AgencyFeature,
    responses={
        201: {
            "content": {GEOJSON: {"example": FEATURE_EXAMPLE}},
            "description": "Created",
            "links": {
                "ReadAgency": link(
                    "read_agency_v1_agencies__slug__get",
                    "Read the program",
                    slug="$response.body#/properties/slug",
                ),
                "UpdateAgency": link(
                    "update_agency_v1_agencies__slug__patch",
                    "Change the program",
                    slug="$response.body#/properties/slug",
                    **{"header.If-Match": "$response.header.ETag"},
                ),
            },
        },
        **problem_responses(401, 403, 409),
    },
)
async def create_agency(body: AgencyCreate, principal: FoundingAdmin, session: SessionDep) -> Response:
    if body.slug != principal.agency:
        raise Problem(
            403,
            f"Your token is for agency '{principal.agency}'; you may create only that agency, not '{body.slug}'.",
        )
    policy = body.policy.model_dump(exclude_none=True)
    notice = body.model_dump(include=set(NOTICE_FIELDS), exclude_none=True)
    row = await repo.create_agency(
        session, body.slug, body.name, body.jurisdiction.geojson(), policy | notice
    )
    if row is None:
        raise Problem(
            409, f"The agency '{body.slug}' exists already; update it with PATCH /v1/agencies/{body.slug}."
        )
    await audit(
        session,
        "agency.create",
        actor=principal.sub,
        role="agency_admin",
        agency=body.slug,
        subject_type="agency",
        subject_id=row["id"],
    )
    await session.commit()
    return _geo_response(
        agency_feature(row, with_policy=True),
        201,
        {"ETag": etag(row["version"]), "Location": f"/v1/agencies/{body.slug}"},
    )


@router.get(
    "",
    summary="List the agencies' programs (public: name, slug, jurisdiction, privacy notice)",
    response_model=AgencyCollection,
    responses={200: {"content": {GEOJSON: {"example": COLLECTION_EXAMPLE}}}, **problem_responses(400)},
    openapi_extra=TOKEN_OPTIONAL,
)
async def list_agencies(
    request: Request,
    session: SessionDep,
    principal: OptionalPrincipal,
    limit: LimitQuery = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From a `next` link")] = None,
    skip_geometry: SkipGeometry = False,
    simplify: Simplify = None,
) -> Response:
    n = clamp_limit(limit, default=100, maximum=MAX_AGENCIES)
    after = decode_cursor(cursor, ("slug",))["slug"] if cursor else ""
    if not isinstance(after, str):
        raise Problem(400, "not a cursor this service issued")
    rows = await repo.agencies_after(session, after, n + 1, geometry=not skip_geometry, simplify_m=simplify)
    features = [agency_feature(r, with_policy=_own(principal, r["slug"])) for r in rows[:n]]
    links = []
    if len(rows) > n:
        links.append(page_link(request, "next", GEOJSON, cursor=encode_cursor({"slug": rows[n - 1]["slug"]})))
    return _geo_response(
        {"type": "FeatureCollection", "features": features, "links": links, "numberReturned": len(features)}
    )


@router.get(
    "/covering",
    summary="Which agencies' programs cover this point (where a resident can register)",
    response_model=AgencyCollection,
    responses={200: {"content": {GEOJSON: {"example": COLLECTION_EXAMPLE}}}},
)
async def covering(
    session: SessionDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude (WGS84)", examples=[-87.9065])],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude (WGS84)", examples=[43.0389])],
    skip_geometry: SkipGeometry = False,
    simplify: Simplify = None,
) -> Response:
    rows = await repo.agencies_covering(
        session, lon, lat, MAX_AGENCIES, geometry=not skip_geometry, simplify_m=simplify
    )
    features = [agency_feature(r, with_policy=False) for r in rows]
    return _geo_response({"type": "FeatureCollection", "features": features, "numberReturned": len(features)})


@router.get(
    "/{slug}",
    summary="Read an agency's program (its own users also see the policy)",
    response_model=AgencyReadFeature,
    responses={200: {"content": {GEOJSON: {"example": FEATURE_EXAMPLE}}}, **problem_responses(404)},
    openapi_extra=TOKEN_OPTIONAL,
)
async def read_agency(
    slug: Slug,
    session: SessionDep,
    principal: OptionalPrincipal,
    skip_geometry: SkipGeometry = False,
    simplify: Simplify = None,
) -> Response:
    row = await repo.agency_by_slug(session, slug, geometry=not skip_geometry, simplify_m=simplify)
    if row is None:
        raise Problem(404, f"No agency '{slug}'.")
    return _geo_response(
        agency_feature(row, with_policy=_own(principal, slug)), headers={"ETag": etag(row["version"])}
    )


@router.patch(
    "/{slug}",
    summary="Update your agency's name, jurisdiction, policy or privacy notice (If-Match required)",
    description=(
        "A new jurisdiction answers how many of the program's registrations have a camera outside it that its "
        "searches would otherwise find (`registrations_outside`: its searches, contact reads and listings no "
        "longer find those cameras; a paused registration is neither counted nor told) and how "
        "many of them it newly left outside (`registrations_newly_outside`); the owners of those are told by "
        "email what they can do: move the camera, share with an agency covering it, or delete the registration."
    ),
    response_model=AgencyFeature,
    responses={
        200: {"content": {GEOJSON: {"example": FEATURE_EXAMPLE}}},
        **problem_responses(401, 403, 404, 412, 428),
    },
    openapi_extra=IF_MATCH_REQUIRED,
)
async def update_agency(
    slug: Slug,
    body: AgencyPatch,
    principal: AgencyAdmin,
    session: SessionDep,
    background: BackgroundTasks,
    if_match: RequiredIfMatch,
) -> Response:
    if principal.agency != slug:
        raise Problem(403, f"Your token is for agency '{principal.agency}'; you may update only that agency.")
    row = await repo.agency_by_slug(session, slug, lock=True)
    if row is None:
        raise Problem(404, f"No agency '{slug}'.")
    check_if_match(row["version"], if_match, required=True)
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.policy is not None:
        changes |= body.policy.model_dump(exclude_none=True)
    for k in NOTICE_FIELDS:
        if k in body.model_fields_set:  # null removes the notice
            changes[k] = getattr(body, k)
    jurisdiction = body.jurisdiction.geojson() if body.jurisdiction is not None else None
    before: set[Any] = set()
    if jurisdiction is not None:
        before = {r["id"] for r in await repo.registrations_outside(session, row["id"])}
    updated = await repo.update_agency(session, row["id"], changes, jurisdiction)
    feature = agency_feature(updated, with_policy=True)
    details: dict[str, Any] = {
        "fields": sorted(
            set(body.model_dump(exclude_none=True)) | (body.model_fields_set & set(NOTICE_FIELDS))
        )
    }
    newly: list[RowMapping] = []
    if body.jurisdiction is not None:
        outside = await repo.registrations_outside(session, row["id"])
        newly = [r for r in outside if r["id"] not in before]
        for r in newly:
            await notices.enqueue(session, r["id"], "jurisdiction.outside", *_outside_message(updated, r))
        feature["properties"] |= {
            "registrations_outside": len(outside),
            "registrations_newly_outside": len(newly),
        }
        details |= {"registrations_outside": len(outside), "registrations_newly_outside": len(newly)}
    await audit(
        session,
        "agency.update",
        actor=principal.sub,
        role="agency_admin",
        agency=slug,
        subject_type="agency",
        subject_id=row["id"],
        details=details,
    )
    await session.commit()
    if newly:
        background.add_task(notices.deliver_quietly, db.sessions)
    return _geo_response(feature, headers={"ETag": etag(updated["version"])})


def _outside_message(agency: RowMapping, reg: RowMapping) -> tuple[str, str]:
    """What the owner of a registration the new jurisdiction left outside is told, and what they can do."""
    base = (get_settings().public_base_url or "").rstrip("/")
    rid = reg["id"]
    cameras = "\n".join(
        f"  - camera {cid} at longitude {lon:.6f}, latitude {lat:.6f}"
        for cid, lon, lat in zip(reg["cameras"], reg["lons"], reg["lats"], strict=True)
    )
    lon, lat = reg["lons"][0], reg["lats"][0]
    return (
        f"{agency['name']} changed its area: some of your registered cameras are now outside it",
        f"{agency['name']} changed the area its camera program covers. These cameras of your registration "
        f"{rid} now lie outside it, so {agency['name']} no longer finds them when it looks for cameras near an "
        f"incident:\n\n{cameras}\n\n"
        "What you can do, with your registration's management credential:\n"
        f"  - If a camera's location is wrong, move it: PATCH {base}/v1/registrations/{rid}/cameras/<camera id>\n"
        "  - Share the registration with an agency whose program covers the camera: find them at "
        f"{base}/v1/agencies/covering?lon={lon:.6f}&lat={lat:.6f} and add them to share_with "
        f"(PATCH {base}/v1/registrations/{rid})\n"
        f"  - Or delete the registration and everything in it: DELETE {base}/v1/registrations/{rid}\n\n"
        "If you do nothing, the registration stays as it is; cameras inside the area are found as before.\n",
    )
