"""The agencies' programs: reading and writing an agency, the points of a registration against its jurisdiction,
and the registrations a new jurisdiction leaves outside it."""

from __future__ import annotations

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


def _columns(geometry: bool) -> str:
    return AGENCY_COLUMNS if geometry else AGENCY_COLUMNS_NO_GEOMETRY


JURISDICTION_SQL = "ST_Multi(ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(:jurisdiction)), 4326))"
# What an agency's program may change, besides its jurisdiction (given as GeoJSON).
CHANGEABLE = frozenset({"name", *POLICY_FIELDS, *NOTICE_FIELDS})


async def agency_by_slug(
    session: AsyncSession, slug: str, *, lock: bool = False, geometry: bool = True
) -> RowMapping | None:
    sql = f"SELECT {_columns(geometry)} FROM registry.agencies a WHERE a.slug = :slug"  # noqa: S608 - composed from constants; values are bound
    if lock:
        # Held for an update of the agency's own columns (never its keys): FOR NO KEY UPDATE, so a transaction
        # adding rows that reference the agency (a camera's coverage count, an imported registration) never waits
        # on it; one that holds the agency's coverage lock would otherwise deadlock with a jurisdiction change
        # waiting for that lock (migration 0032).
        sql += " FOR NO KEY UPDATE"
    return (await session.execute(text(sql), {"slug": slug})).mappings().first()


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
    session: AsyncSession, after: str, n: int, *, geometry: bool = True
) -> list[RowMapping]:
    """Up to `n` agencies whose slug sorts after `after`, in slug order (without their jurisdiction unless
    `geometry`)."""
    rows = await session.execute(
        text(
            f"SELECT {_columns(geometry)} FROM registry.agencies a WHERE a.slug > :after"  # noqa: S608 - composed from constants; values are bound
            " ORDER BY a.slug LIMIT :n"
        ),
        {"after": after, "n": n},
    )
    return list(rows.mappings().all())


async def agencies_covering(
    session: AsyncSession, lon: float, lat: float, n: int, *, geometry: bool = True
) -> list[RowMapping]:
    """The agencies whose jurisdiction covers the point, by name (without their jurisdiction unless
    `geometry`)."""
    rows = await session.execute(
        text(
            f"SELECT {_columns(geometry)} FROM registry.agencies a"  # noqa: S608 - composed from constants; values are bound
            " WHERE ST_Covers(a.jurisdiction, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            " ORDER BY a.name, a.slug LIMIT :n"
        ),
        {"lon": lon, "lat": lat, "n": n},
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
