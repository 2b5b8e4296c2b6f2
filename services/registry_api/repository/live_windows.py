"""Live windows: opening, listing and closing a registration's windows, what a change of sharing or of a camera
takes out of its open windows (for good), and which open windows and cameras an agency sees."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api.schemas import LiveMode, WindowReason

# Which camera live modes may join a live window opened for each reason.
MODES_FOR: dict[WindowReason, list[LiveMode]] = {
    "alert": ["on_alert"],
    "emergency": ["on_alert", "emergency"],
}
MODES = {"alert": MODES_FOR["alert"], "emergency": MODES_FOR["emergency"]}


def streamable(c: str) -> str:
    """Whether camera row `c` can be watched: the owner registered its stream's endpoint, or an edge agent of its
    registration (not revoked) can stream it to the relay."""
    # `c` is a table alias of the caller's constant SQL.
    agents = "SELECT 1 FROM registry.edge_agents e WHERE e.revoked_at IS NULL AND e.registration_id = "
    return f"({c}.live_endpoint_enc IS NOT NULL OR EXISTS ({agents}{c}.registration_id))"


WINDOW_SQL = """
SELECT w.id, w.registration_id, w.reason, w.camera_ids, w.opened_at, w.expires_at, w.closed_at,
       ARRAY(SELECT a.slug FROM registry.agencies a WHERE a.id = ANY(w.agency_ids) ORDER BY a.slug) AS agencies,
       CASE WHEN w.closed_at IS NOT NULL THEN 'closed' WHEN w.expires_at <= now() THEN 'expired'
            ELSE 'open' END AS state
FROM registry.live_windows w
"""


async def live_cameras(session: AsyncSession, rid: uuid.UUID) -> list[RowMapping]:
    """The registration's cameras as a window's opening weighs them: their live mode, and whether they can be
    watched (`streamable`)."""
    rows = await session.execute(
        text(
            f"SELECT id, live_mode, {streamable('c')} AS streamable"  # noqa: S608 - composed from constants
            " FROM registry.cameras c WHERE registration_id = :id"
        ),
        {"id": rid},
    )
    return list(rows.mappings().all())


async def open_window(
    session: AsyncSession,
    rid: uuid.UUID,
    camera_ids: Sequence[uuid.UUID],
    agency_ids: Sequence[uuid.UUID],
    reason: str,
    duration_s: int,
) -> uuid.UUID:
    wid = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO registry.live_windows (id, registration_id, camera_ids, agency_ids, reason, expires_at)"
            " VALUES (:id, :rid, :cams, :agencies, :reason, now() + make_interval(secs => :secs))"
        ),
        {
            "id": wid,
            "rid": rid,
            "cams": list(camera_ids),
            "agencies": list(agency_ids),
            "reason": reason,
            "secs": duration_s,
        },
    )
    return wid


async def window(session: AsyncSession, wid: uuid.UUID, rid: uuid.UUID | None = None) -> RowMapping | None:
    """The window (of registration `rid`, when given), or None."""
    sql = WINDOW_SQL + " WHERE w.id = :wid" + (" AND w.registration_id = :rid" if rid is not None else "")
    return (await session.execute(text(sql), {"wid": wid, "rid": rid})).mappings().first()


async def windows_of(session: AsyncSession, rid: uuid.UUID, n: int) -> list[RowMapping]:
    """The registration's latest `n` windows, newest first."""
    rows = await session.execute(
        text(WINDOW_SQL + " WHERE w.registration_id = :id ORDER BY w.opened_at DESC LIMIT :n"),
        {"id": rid, "n": n},
    )
    return list(rows.mappings().all())


async def close_window(session: AsyncSession, rid: uuid.UUID, wid: uuid.UUID) -> bool:
    """Close the registration's window if it is open; whether it was."""
    closed = await session.execute(
        text(
            "UPDATE registry.live_windows SET closed_at = now() WHERE id = :wid AND registration_id = :rid"
            " AND closed_at IS NULL AND expires_at > now() RETURNING id"
        ),
        {"wid": wid, "rid": rid},
    )
    return closed.first() is not None


async def close_open_windows(session: AsyncSession, rid: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(
        text(
            "UPDATE registry.live_windows SET closed_at = now()"
            " WHERE registration_id = :id AND closed_at IS NULL AND expires_at > now() RETURNING id"
        ),
        {"id": rid},
    )
    return [r[0] for r in rows]


# An open window keeps only the agencies its registration is still shared with, and only the cameras whose live
# mode still allows its reason and that can still be watched (`streamable`: an endpoint, or an edge agent not
# revoked); one left with no agency or no camera closes.
# What a window loses it never gets back: a later re-share or mode change opens nothing (a new window does).
NARROW_WINDOWS_SQL = f"""
WITH narrowed AS (
    SELECT w.id,
           ARRAY(SELECT a FROM unnest(w.agency_ids) a
                 WHERE EXISTS (SELECT 1 FROM registry.registration_shares s
                               WHERE s.registration_id = w.registration_id AND s.agency_id = a)
                 ORDER BY a) AS agency_ids,
           ARRAY(SELECT c FROM unnest(w.camera_ids) c
                 WHERE EXISTS (SELECT 1 FROM registry.cameras k
                               WHERE k.id = c AND k.registration_id = w.registration_id
                                 AND {streamable("k")}
                                 AND k.live_mode = ANY(CASE w.reason WHEN 'alert' THEN CAST(:alert AS text[])
                                                       ELSE CAST(:emergency AS text[]) END))
                 ORDER BY c) AS camera_ids
    FROM registry.live_windows w
    WHERE w.registration_id = :id AND w.closed_at IS NULL AND w.expires_at > now()
    FOR UPDATE OF w
)
UPDATE registry.live_windows w
SET agency_ids = n.agency_ids, camera_ids = n.camera_ids,
    closed_at = CASE WHEN cardinality(n.agency_ids) = 0 OR cardinality(n.camera_ids) = 0 THEN now() END
FROM narrowed n
WHERE w.id = n.id AND (w.agency_ids <> n.agency_ids OR w.camera_ids <> n.camera_ids)
RETURNING w.id, w.closed_at IS NOT NULL AS closed
"""  # noqa: S608 - composed from constants; values are bound


async def narrow_open_windows(session: AsyncSession, rid: uuid.UUID) -> list[tuple[uuid.UUID, bool]]:
    """After a change of sharing or of a camera's live mode or endpoint (in the caller's transaction): each open
    window loses for good what the change took away (see NARROW_WINDOWS_SQL). The windows changed, and whether
    each closed."""
    rows = await session.execute(text(NARROW_WINDOWS_SQL), {"id": rid, **MODES})
    return [(r[0], r[1]) for r in rows]


# --- what an agency sees ---------------------------------------------------------------------------------

# The jurisdiction is read once, as a copy, rather than decompressed again for each camera (see agency_access).
ME_SQL = (
    "me AS MATERIALIZED (SELECT id, ST_SetSRID(jurisdiction, 4326) AS jurisdiction FROM registry.agencies"
    " WHERE slug = :me)"
)

# Which of window `w`'s cameras agency `me` sees: still the registration's, streamable, with a live mode allowing
# the window's reason, and seen by the agency (`registry.sees`, the visibility rule of migrations 0025 and 0029:
# the registration active and shared with it, the camera inside its jurisdiction).
CAMERA_RULE = f"""
c.id = ANY(w.camera_ids) AND c.registration_id = w.registration_id AND {streamable("c")}
AND c.live_mode = ANY(CASE w.reason WHEN 'alert' THEN CAST(:alert AS text[]) ELSE CAST(:emergency AS text[]) END)
AND registry.sees(me.id, me.jurisdiction, c.visible_to, c.geom)
"""

# Windows open to the agency, with the number of their cameras it sees: a window it would see no camera of is
# not listed at all.
VISIBLE_SQL = f"""
WITH {ME_SQL}
SELECT w.id, w.registration_id, w.reason, w.opened_at, w.expires_at, v.camera_count
FROM registry.live_windows w
JOIN me ON me.id = ANY(w.agency_ids)
CROSS JOIN LATERAL (SELECT count(*) AS camera_count FROM registry.cameras c WHERE {CAMERA_RULE}) v
WHERE w.closed_at IS NULL AND w.expires_at > now() AND v.camera_count > 0
"""  # noqa: S608 - composed from constants; values are bound

VISIBLE_CAMERAS_SQL = f"""
WITH {ME_SQL}
SELECT c.id, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.label, c.direction_deg
FROM registry.live_windows w JOIN me ON true JOIN registry.cameras c ON {CAMERA_RULE}
WHERE w.id = :wid
ORDER BY c.id
"""  # noqa: S608 - composed from constants; values are bound


async def windows_open_to(session: AsyncSession, agency: str, n: int) -> list[RowMapping]:
    """The windows open to the agency now, soonest to expire first."""
    rows = await session.execute(
        text(VISIBLE_SQL + " ORDER BY w.expires_at LIMIT :n"), {"me": agency, "n": n, **MODES}
    )
    return list(rows.mappings().all())


async def window_open_to(
    session: AsyncSession, agency: str, wid: uuid.UUID
) -> tuple[RowMapping | None, list[RowMapping]]:
    """The window if it is open to the agency now, and the cameras of it the agency sees."""
    w = (
        (await session.execute(text(VISIBLE_SQL + " AND w.id = :wid"), {"me": agency, "wid": wid, **MODES}))
        .mappings()
        .first()
    )
    if w is None:
        return None, []
    cams = await session.execute(text(VISIBLE_CAMERAS_SQL), {"me": agency, "wid": wid, **MODES})
    return w, list(cams.mappings().all())
