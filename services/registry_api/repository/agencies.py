"""The agencies' programs: reading and writing an agency, the points of a registration against its jurisdiction,
and the registrations a new jurisdiction leaves outside it."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api.schemas import NOTICE_FIELDS, POLICY_FIELDS
from shared.concurrency import NEXT_VERSION
from shared.errors import InvalidParam, Problem
from shared.geojson import Point

AGENCY_BASE_COLUMNS = """
    a.id, a.slug, a.name, a.version,
    a.max_request_area_m2, a.max_request_window_hours, a.default_request_expiry_days, a.requires_approval,
    a.evidence_retention_days, a.max_search_radius_m, a.reconfirm_after_days,
    a.privacy_notice, a.privacy_notice_url, a.disclosure_delay_days, a.coverage_min_cameras
"""
AGENCY_COLUMNS = AGENCY_BASE_COLUMNS + ", ST_AsGeoJSON(ST_ForcePolygonCCW(a.jurisdiction), 7) AS jurisdiction"
# For a list of names (skipGeometry) the jurisdiction is neither made GeoJSON nor sent: statewide, megabytes.
AGENCY_COLUMNS_NO_GEOMETRY = AGENCY_BASE_COLUMNS + ", NULL AS jurisdiction"

# For a map (simplify): the jurisdiction simplified with topology kept (no ring crosses itself or another, none
# vanishes), in ground metres: longitudes and latitudes scaled to metres at the jurisdiction's middle latitude
# (a map's pixel is as many metres east as north there; the cosine floored so a polar box still scales back),
# then snapped to a grid of a tenth of the tolerance or finer, which keeps it valid and is the precision sent.
# Whatever comes out empty or invalid (a jurisdiction smaller than the grid) is sent as stored instead: a tiny
# jurisdiction stays drawn.
METRES_PER_DEGREE = 111_320
_SIMPLIFIED = f"""
    ST_Multi(ST_CollectionExtract(ST_ReducePrecision(ST_Scale(
        ST_SimplifyPreserveTopology(ST_Scale(a.jurisdiction, k.x, {METRES_PER_DEGREE}), CAST(:simplify_m AS float8)),
        1 / k.x, 1.0 / {METRES_PER_DEGREE}), CAST(:simplify_grid AS float8)), 3))
"""
_MIDDLE_COSINE = "GREATEST(COS(RADIANS((ST_YMin(a.jurisdiction) + ST_YMax(a.jurisdiction)) / 2)), 0.01)"
_SIMPLIFIED_JURISDICTION = f"""COALESCE(
    (SELECT ST_AsGeoJSON(ST_ForcePolygonCCW(s.g), CAST(:simplify_decimals AS int))
       FROM (SELECT {_SIMPLIFIED} AS g FROM (SELECT {METRES_PER_DEGREE} * {_MIDDLE_COSINE} AS x) k) s
      WHERE NOT ST_IsEmpty(s.g) AND ST_IsValid(s.g)),
    ST_AsGeoJSON(ST_ForcePolygonCCW(a.jurisdiction), 7))"""  # noqa: S608 - composed from constants; values are bound
AGENCY_COLUMNS_SIMPLIFIED = AGENCY_BASE_COLUMNS + f", {_SIMPLIFIED_JURISDICTION} AS jurisdiction"


def simplify_decimals(simplify_m: float) -> int:
    """The decimals of a degree a jurisdiction simplified to `simplify_m` metres is sent with: a step of a tenth
    of the tolerance or finer (a degree is at most 111 km), and never more than the stored seven."""
    return max(0, min(7, math.ceil(math.log10(METRES_PER_DEGREE * 10 / simplify_m))))


def _columns(geometry: bool, simplify_m: int | None = None) -> tuple[str, dict[str, Any]]:
    """The select list of an agency (without its jurisdiction unless `geometry`; simplified to `simplify_m`
    metres if given) and the values it binds."""
    if not geometry:
        return AGENCY_COLUMNS_NO_GEOMETRY, {}
    if simplify_m is None:
        return AGENCY_COLUMNS, {}
    decimals = simplify_decimals(simplify_m)
    return AGENCY_COLUMNS_SIMPLIFIED, {
        "simplify_m": float(simplify_m),
        "simplify_grid": 10.0**-decimals,
        "simplify_decimals": decimals,
    }


JURISDICTION_SQL = "ST_Multi(ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(:jurisdiction)), 4326))"
# What an agency's program may change, besides its jurisdiction (given as GeoJSON).
CHANGEABLE = frozenset({"name", *POLICY_FIELDS, *NOTICE_FIELDS})


async def agency_by_slug(
    session: AsyncSession,
    slug: str,
    *,
    lock: bool = False,
    geometry: bool = True,
    simplify_m: int | None = None,
) -> RowMapping | None:
    columns, bound = _columns(geometry, simplify_m)
    sql = f"SELECT {columns} FROM registry.agencies a WHERE a.slug = :slug"  # noqa: S608 - composed from constants; values are bound
    if lock:
        # Held for an update of the agency's own columns (never its keys): FOR NO KEY UPDATE, so a transaction
        # adding rows that reference the agency (a camera's coverage count, an imported registration) never waits
        # on it; one that holds the agency's coverage lock would otherwise deadlock with a jurisdiction change
        # waiting for that lock (migration 0032).
        sql += " FOR NO KEY UPDATE"
    return (await session.execute(text(sql), {"slug": slug, **bound})).mappings().first()


async def agencies_by_slugs(
    session: AsyncSession, slugs: Sequence[str], pointer: str
) -> dict[str, uuid.UUID]:
    """Agency ids for slugs; a 422 naming every slug that is no agency."""
    if not slugs:
        return {}
    rows = (
        await session.execute(
            text("SELECT slug, id FROM registry.agencies WHERE slug = ANY(:slugs)"), {"slugs": list(slugs)}
        )
    ).all()
    found = {r[0]: r[1] for r in rows}
    missing = [(i, s) for i, s in enumerate(slugs) if s not in found]
    if missing:
        errors = [
            InvalidParam(pointer=f"{pointer}/{i}", reason=f"no agency '{s}'", code="unknown_agency")
            for i, s in missing
        ]
        raise Problem(
            422,
            "; ".join(f"{e.pointer}: {e.reason}" for e in errors),
            kind="validation",
            title="Request validation failed",
            errors=errors,
        )
    return found


async def create_agency(
    session: AsyncSession, slug: str, name: str, jurisdiction: str, settings: Mapping[str, Any]
) -> RowMapping | None:
    """A new agency (`jurisdiction` as GeoJSON; `settings` its policy and notice columns), or None when the slug
    is taken."""
    assert set(settings) <= CHANGEABLE
    cols = ", ".join(["slug", "name", "jurisdiction", *settings])
    vals = ", ".join([":slug", ":name", JURISDICTION_SQL, *(f":{k}" for k in settings)])
    return (
        (
            await session.execute(
                text(
                    f"INSERT INTO registry.agencies AS a ({cols}) VALUES ({vals})"  # noqa: S608 - composed from constants; values are bound
                    f" ON CONFLICT (slug) DO NOTHING RETURNING {AGENCY_COLUMNS}"
                ),
                {"slug": slug, "name": name, "jurisdiction": jurisdiction, **settings},
            )
        )
        .mappings()
        .first()
    )


async def agencies_after(
    session: AsyncSession, after: str, n: int, *, geometry: bool = True, simplify_m: int | None = None
) -> list[RowMapping]:
    """Up to `n` agencies whose slug sorts after `after`, in slug order (without their jurisdiction unless
    `geometry`; simplified to `simplify_m` metres if given)."""
    columns, bound = _columns(geometry, simplify_m)
    rows = await session.execute(
        text(
            f"SELECT {columns} FROM registry.agencies a WHERE a.slug > :after"  # noqa: S608 - composed from constants; values are bound
            " ORDER BY a.slug LIMIT :n"
        ),
        {"after": after, "n": n, **bound},
    )
    return list(rows.mappings().all())


async def agencies_covering(
    session: AsyncSession,
    lon: float,
    lat: float,
    n: int,
    *,
    geometry: bool = True,
    simplify_m: int | None = None,
) -> list[RowMapping]:
    """The agencies whose jurisdiction (as stored, whatever is sent) covers the point, by name (without their
    jurisdiction unless `geometry`; simplified to `simplify_m` metres if given)."""
    columns, bound = _columns(geometry, simplify_m)
    rows = await session.execute(
        text(
            f"SELECT {columns} FROM registry.agencies a"  # noqa: S608 - composed from constants; values are bound
            " WHERE ST_Covers(a.jurisdiction, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            " ORDER BY a.name, a.slug LIMIT :n"
        ),
        {"lon": lon, "lat": lat, "n": n, **bound},
    )
    return list(rows.mappings().all())


async def update_agency(
    session: AsyncSession, agency_id: uuid.UUID, changes: Mapping[str, Any], jurisdiction: str | None
) -> RowMapping:
    """Write the changed columns (and the new jurisdiction, as GeoJSON, if any); the agency as it now is."""
    assert set(changes) <= CHANGEABLE
    sets = [f"{k} = :{k}" for k in changes]
    if jurisdiction is not None:
        sets.append(f"jurisdiction = {JURISDICTION_SQL}")
    sets.append(NEXT_VERSION)
    return (
        (
            await session.execute(
                text(
                    f"UPDATE registry.agencies AS a SET {', '.join(sets)} WHERE a.id = :id RETURNING {AGENCY_COLUMNS}"  # noqa: S608 - composed from constants; values are bound
                ),
                {"id": agency_id, **changes, **({"jurisdiction": jurisdiction} if jurisdiction else {})},
            )
        )
        .mappings()
        .one()
    )


# The 1-based positions of the points (GeoJSON texts) outside agency `{agency}`'s jurisdiction.
OUTSIDE_SQL = (
    "SELECT ARRAY(SELECT p.i FROM unnest(CAST(:pts AS text[])) WITH ORDINALITY AS p(g, i)"
    " JOIN registry.agencies j ON j.id = {agency}"
    " WHERE NOT ST_Covers(j.jurisdiction, ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(p.g)), 4326)) ORDER BY p.i)"
)


async def check_in_jurisdiction(
    session: AsyncSession, agency: RowMapping, points: Sequence[tuple[str, Point]]
) -> None:
    """Every point must lie in the agency's jurisdiction (boundary included)."""
    if not points:
        return
    rows = (
        await session.execute(
            text(OUTSIDE_SQL.format(agency=":agency")),
            {"pts": [p.geojson() for _, p in points], "agency": agency["id"]},
        )
    ).scalar_one()
    if rows:
        raise outside_jurisdiction(agency, points, rows)


def outside_jurisdiction(
    agency: Mapping[Any, Any], points: Sequence[tuple[str, Point]], outside: Sequence[int]
) -> Problem:
    """A 422 that names the agency, the offending points and where the person can register instead."""
    errors = []
    for i in outside:
        pointer, point = points[i - 1]
        lon, lat = point.coordinates[0], point.coordinates[1]
        errors.append(
            InvalidParam(
                pointer=pointer,
                reason=(
                    f"[{lon}, {lat}] lies outside the jurisdiction of {agency['name']} ({agency['slug']}); "
                    "its program accepts only cameras inside its jurisdiction"
                ),
                code="outside_jurisdiction",
                params={"agency": agency["name"]},
            )
        )
    first = points[outside[0] - 1][1]
    return Problem(
        422,
        f"{agency['name']} ({agency['slug']}) cannot accept this registration: "
        + "; ".join(f"{e.pointer} {e.reason}" for e in errors)
        + f". Find the programs covering a point at /v1/agencies/covering?lon={first.coordinates[0]}"
        f"&lat={first.coordinates[1]}.",
        kind="outside-jurisdiction",
        title="Outside the agency's jurisdiction",
        errors=errors,
        agency=agency["slug"],
    )


# The program's registrations with a camera the owner's choices show the agency (`visible_to` names it: active
# and shared with it) that the agency does not see (`registry.sees`, the visibility rule of migrations 0025 and 0029): the
# jurisdiction leaves it outside, so the agency's searches, contact reads and listings no longer find it. A
# paused registration is not counted, nor its owner written to: the agency could not see it, and a count of it
# would tell the agency where it is. The cameras outside, with where each is.
OUTSIDE_REGISTRATIONS_SQL = """
SELECT r.id, array_agg(c.id ORDER BY c.id) AS cameras, array_agg(ST_X(c.geom) ORDER BY c.id) AS lons,
       array_agg(ST_Y(c.geom) ORDER BY c.id) AS lats
FROM registry.registrations r
JOIN registry.agencies a ON a.id = r.agency_id
JOIN registry.cameras c ON c.registration_id = r.id AND a.id = ANY(c.visible_to)
    AND NOT registry.sees(a.id, a.jurisdiction, c.visible_to, c.geom)
WHERE r.agency_id = :agency
GROUP BY r.id
"""


async def registrations_outside(session: AsyncSession, agency_id: uuid.UUID) -> list[RowMapping]:
    return list((await session.execute(text(OUTSIDE_REGISTRATIONS_SQL), {"agency": agency_id})).mappings())
