"""Agencies: an agency admin publishes the agency's program (slug, name, jurisdiction, policy, privacy notice);
anyone reads the name, slug, jurisdiction and privacy notice, and asks which programs cover a point (where a
resident can register)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from sqlalchemy import text
from sqlalchemy.engine import RowMapping

from services.registry_api import notices
from services.registry_api.database import SessionDep, db
from services.registry_api.dependencies import IF_MATCH_REQUIRED, AgencyAdmin, FoundingAdmin, RequiredIfMatch
from services.registry_api.schemas import (
    NOTICE_FIELDS,
    POLICY_FIELDS,
    AgencyCollection,
    AgencyCreate,
    AgencyFeature,
    AgencyPatch,
    Slug,
)
from services.registry_api.service import (
    AGENCY_COLUMNS,
    agency_by_slug,
    agency_feature,
    audit,
    check_if_match,
    etag,
)
from shared.auth import TOKEN_OPTIONAL, OptionalPrincipal, Principal
from shared.errors import Problem, problem_responses
from shared.geojson import GeoJSONResponse
from shared.links import link
from shared.pagination import LimitQuery, clamp_limit, decode_cursor, encode_cursor, page_link
from shared.settings import get_settings

router = APIRouter(prefix="/v1/agencies", tags=["agencies"], default_response_class=GeoJSONResponse)

GEOJSON = "application/geo+json"
MAX_AGENCIES = 1000
JURISDICTION_SQL = "ST_Multi(ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(:jurisdiction)), 4326))"

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
    cols = ", ".join(["slug", "name", "jurisdiction", *policy, *notice])
    vals = ", ".join([":slug", ":name", JURISDICTION_SQL, *(f":{k}" for k in (*policy, *notice))])
    row = (
        (
            await session.execute(
                text(
                    f"INSERT INTO registry.agencies AS a ({cols}) VALUES ({vals})"  # noqa: S608 - composed from constants; values are bound
                    f" ON CONFLICT (slug) DO NOTHING RETURNING {AGENCY_COLUMNS}"
                ),
                {
                    "slug": body.slug,
                    "name": body.name,
                    "jurisdiction": body.jurisdiction.geojson(),
                    **policy,
                    **notice,
                },
            )
        )
        .mappings()
        .first()
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
) -> Response:
    n = clamp_limit(limit, default=100, maximum=MAX_AGENCIES)
    after = decode_cursor(cursor, ("slug",))["slug"] if cursor else ""
    if not isinstance(after, str):
        raise Problem(400, "not a cursor this service issued")
    rows = (
        (
            await session.execute(
                text(
                    f"SELECT {AGENCY_COLUMNS} FROM registry.agencies a WHERE a.slug > :after"  # noqa: S608 - composed from constants; values are bound
                    " ORDER BY a.slug LIMIT :n"
                ),
                {"after": after, "n": n + 1},
            )
        )
        .mappings()
        .all()
    )
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
) -> Response:
    rows = (
        (
            await session.execute(
                text(
                    f"SELECT {AGENCY_COLUMNS} FROM registry.agencies a"  # noqa: S608 - composed from constants; values are bound
                    " WHERE ST_Covers(a.jurisdiction, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
                    " ORDER BY a.name, a.slug LIMIT :n"
                ),
                {"lon": lon, "lat": lat, "n": MAX_AGENCIES},
            )
        )
        .mappings()
        .all()
    )
    features = [agency_feature(r, with_policy=False) for r in rows]
    return _geo_response({"type": "FeatureCollection", "features": features, "numberReturned": len(features)})


@router.get(
    "/{slug}",
    summary="Read an agency's program (its own users also see the policy)",
    response_model=AgencyFeature,
    responses={200: {"content": {GEOJSON: {"example": FEATURE_EXAMPLE}}}, **problem_responses(404)},
    openapi_extra=TOKEN_OPTIONAL,
)
async def read_agency(slug: Slug, session: SessionDep, principal: OptionalPrincipal) -> Response:
    row = await agency_by_slug(session, slug)
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
    row = await agency_by_slug(session, slug, lock=True)
    if row is None:
        raise Problem(404, f"No agency '{slug}'.")
    check_if_match(row["version"], if_match, required=True)
    sets: list[str] = []
    params: dict[str, Any] = {"id": row["id"]}
    if body.name is not None:
        sets.append("name = :name")
        params["name"] = body.name
    if body.jurisdiction is not None:
        sets.append(f"jurisdiction = {JURISDICTION_SQL}")
        params["jurisdiction"] = body.jurisdiction.geojson()
    if body.policy is not None:
        for k, v in body.policy.model_dump(exclude_none=True).items():
            assert k in POLICY_FIELDS
            sets.append(f"{k} = :{k}")
            params[k] = v
    for k in NOTICE_FIELDS:
        if k in body.model_fields_set:  # null removes the notice
            sets.append(f"{k} = :{k}")
            params[k] = getattr(body, k)
    before: set[Any] = set()
    if body.jurisdiction is not None:
        before = {r["id"] for r in await _outside(session, row["id"])}
    sets += ["version = version + 1", "updated_at = now()"]
    updated = (
        (
            await session.execute(
                text(
                    f"UPDATE registry.agencies AS a SET {', '.join(sets)} WHERE a.id = :id RETURNING {AGENCY_COLUMNS}"  # noqa: S608 - composed from constants; values are bound
                ),
                params,
            )
        )
        .mappings()
        .one()
    )
    feature = agency_feature(updated, with_policy=True)
    details: dict[str, Any] = {
        "fields": sorted(
            set(body.model_dump(exclude_none=True)) | (body.model_fields_set & set(NOTICE_FIELDS))
        )
    }
    newly: list[RowMapping] = []
    if body.jurisdiction is not None:
        outside = await _outside(session, row["id"])
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


# The program's registrations with a camera its searches would find but for the jurisdiction (the visibility rule
# of service.SEEN_BY_SQL less its jurisdiction test: the camera's `visible_to` names the agency, so the
# registration is active and shared with it) that lies outside the jurisdiction: its searches, contact reads and
# listings no longer find those cameras. A paused registration is not counted, nor its owner written to: the
# agency could not see it, and a count of it would tell the agency where it is. The cameras outside, with where
# each is.
OUTSIDE_REGISTRATIONS_SQL = """
SELECT r.id, array_agg(c.id ORDER BY c.id) AS cameras, array_agg(ST_X(c.geom) ORDER BY c.id) AS lons,
       array_agg(ST_Y(c.geom) ORDER BY c.id) AS lats
FROM registry.registrations r
JOIN registry.agencies a ON a.id = r.agency_id
JOIN registry.cameras c ON c.registration_id = r.id AND a.id = ANY(c.visible_to)
    AND NOT ST_Covers(a.jurisdiction, c.geom)
WHERE r.agency_id = :agency
GROUP BY r.id
"""


async def _outside(session: Any, agency_id: Any) -> list[RowMapping]:
    return list((await session.execute(text(OUTSIDE_REGISTRATIONS_SQL), {"agency": agency_id})).mappings())


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
