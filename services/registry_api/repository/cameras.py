"""A registration's cameras: reading them, adding, changing and removing one. A change of a camera's live mode or
endpoint narrows the open live windows (live_windows.py); the caller runs that, and `recompute_visibility`
(sharing.py) after adding cameras, in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api.schemas import CameraFields
from services.registry_api.sealing import camera_context, seal
from shared.concurrency import next_version
from shared.geojson import Point

POINT_SQL = "ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON({})), 4326)"
MAX_CAMERAS = 50

CAMERAS_SQL = """
SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, label, direction_deg, fov_deg, range_m, placement, covers,
       retention_days, recording, schedule, shares_history, live_mode, live_endpoint_enc
FROM registry.cameras WHERE registration_id = :id ORDER BY created_at, id
"""

CAMERA_COLUMNS = (
    "label",
    "direction_deg",
    "fov_deg",
    "range_m",
    "placement",
    "covers",
    "retention_days",
    "recording",
    "schedule",
    "shares_history",
    "live_mode",
)


async def cameras_of(session: AsyncSession, rid: uuid.UUID) -> list[RowMapping]:
    """The registration's cameras, in the order they were added."""
    return list((await session.execute(text(CAMERAS_SQL), {"id": rid})).mappings().all())


def camera_params(cid: uuid.UUID, camera: CameraFields, location: Point) -> dict[str, Any]:
    return {
        "id": cid,
        "geom": location.geojson(),
        "label": camera.label,
        "direction_deg": camera.direction_deg,
        "fov_deg": camera.fov_deg,
        "range_m": camera.range_m,
        "placement": camera.placement,
        "covers": camera.covers or [],
        "retention_days": camera.retention_days,
        "recording": camera.recording,
        "schedule": camera.schedule,
        "shares_history": True if camera.shares_history is None else camera.shares_history,
        "live_mode": camera.live_mode or "never",
        "live_endpoint_enc": seal(camera.live_endpoint, camera_context(cid)),
    }


async def insert_cameras(session: AsyncSession, rid: uuid.UUID, cameras: list[dict[str, Any]]) -> None:
    """Insert cameras; their visibility is set by `recompute_visibility`, which the caller runs next."""
    cols = ", ".join(CAMERA_COLUMNS)
    vals = ", ".join(f":{c}" for c in CAMERA_COLUMNS)
    await session.execute(
        text(
            "INSERT INTO registry.cameras"  # noqa: S608 - composed from constants; values are bound
            f" (id, registration_id, geom, owner_kind, live_endpoint_enc, created_at, {cols})"
            f" VALUES (:id, :rid, {POINT_SQL.format(':geom')},"
            " (SELECT owner_kind FROM registry.registrations WHERE id = :rid), :live_endpoint_enc,"
            # clock_timestamp, not now(): cameras list in the order they were given, even within one request
            " clock_timestamp(),"
            f" {vals})"
        ),
        [dict(c, rid=rid) for c in cameras],
    )


async def camera_count(session: AsyncSession, rid: uuid.UUID) -> int:
    return int(
        (
            await session.execute(
                text("SELECT count(*) FROM registry.cameras WHERE registration_id = :id"), {"id": rid}
            )
        ).scalar_one()
    )


async def has_camera(session: AsyncSession, rid: uuid.UUID, cid: uuid.UUID) -> bool:
    found = await session.execute(
        text("SELECT 1 FROM registry.cameras WHERE id = :cid AND registration_id = :rid"),
        {"cid": cid, "rid": rid},
    )
    return found.first() is not None


# What an owner may change of a camera, besides its location (GeoJSON) and live endpoint (sealed here).
CHANGEABLE = frozenset(CAMERA_COLUMNS)


async def update_camera(
    session: AsyncSession,
    cid: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    location: Point | None = None,
    live_endpoint: tuple[str | None] | None = None,
) -> None:
    """Write the changed columns of camera `cid`; `live_endpoint`, when given, is a 1-tuple of the new endpoint
    (None removes it)."""
    assert set(changes) <= CHANGEABLE
    params: dict[str, Any] = {"cid": cid, **changes}
    sets = [f"{c} = :{c}" for c in changes]
    if location is not None:
        sets.insert(0, f"geom = {POINT_SQL.format(':geom')}")
        params["geom"] = location.geojson()
    if live_endpoint is not None:
        sets.append("live_endpoint_enc = :live_endpoint_enc")
        params["live_endpoint_enc"] = seal(live_endpoint[0], camera_context(cid))
    if sets:
        sets.append("updated_at = now()")
        await session.execute(text(f"UPDATE registry.cameras SET {', '.join(sets)} WHERE id = :cid"), params)  # noqa: S608 - composed from constants; values are bound


# A camera an import created keeps its place in the integrator's list, so a re-import does not add it back; the
# registration's version moves with the removal.
REMOVE_SQL = f"""
WITH gone AS (DELETE FROM registry.cameras WHERE id = :cid RETURNING import_position)
UPDATE registry.registrations r SET {next_version("r")},
    removed_import_positions = CASE WHEN g.import_position IS NULL
        OR g.import_position = ANY(r.removed_import_positions) THEN r.removed_import_positions
        ELSE r.removed_import_positions || g.import_position END
FROM gone g WHERE r.id = :id
"""  # noqa: S608 - composed from constants; values are bound


async def remove_camera(session: AsyncSession, rid: uuid.UUID, cid: uuid.UUID) -> None:
    await session.execute(text(REMOVE_SQL), {"cid": cid, "id": rid})
