"""Edge agents: the one-time enrolment codes an owner asks for, the agents enrolled with them (their credentials
only as hashes), and which of a registration's cameras are in a window open right now."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api.repository.live_windows import CAMERA_RULE, ME_SQL, MODES

# How long an enrolment code works: long enough to walk to the box and type it, short enough that a code seen on
# a screen is of no use later.
ENROLMENT_TTL_S = 15 * 60
# Agents enrolled (and not revoked) per registration: a site has an NVR or two, not dozens.
MAX_AGENTS = 10


async def add_enrolment(session: AsyncSession, rid: uuid.UUID, code_hash: bytes) -> RowMapping:
    row = await session.execute(
        text(
            "INSERT INTO registry.edge_agent_enrolments (code_hash, registration_id, expires_at)"
            " VALUES (:h, :rid, now() + make_interval(secs => :ttl)) RETURNING expires_at"
        ),
        {"h": code_hash, "rid": rid, "ttl": ENROLMENT_TTL_S},
    )
    return row.mappings().one()


async def use_enrolment(session: AsyncSession, code_hash: bytes) -> uuid.UUID | None:
    """The registration a valid, unused, unexpired code is for (the code is used up), or None."""
    rid = (
        await session.execute(
            text(
                "UPDATE registry.edge_agent_enrolments SET used_at = now()"
                " WHERE code_hash = :h AND used_at IS NULL AND expires_at > now() RETURNING registration_id"
            ),
            {"h": code_hash},
        )
    ).scalar_one_or_none()
    return rid  # type: ignore[no-any-return]


async def active_agent_count(session: AsyncSession, rid: uuid.UUID) -> int:
    n = await session.execute(
        text("SELECT count(*) FROM registry.edge_agents WHERE registration_id = :rid AND revoked_at IS NULL"),
        {"rid": rid},
    )
    return int(n.scalar_one())


async def add_agent(
    session: AsyncSession, agent_id: uuid.UUID, rid: uuid.UUID, credential_hash: bytes
) -> RowMapping:
    row = await session.execute(
        text(
            "INSERT INTO registry.edge_agents (id, registration_id, credential_hash) VALUES (:id, :rid, :h)"
            " RETURNING created_at"
        ),
        {"id": agent_id, "rid": rid, "h": credential_hash},
    )
    return row.mappings().one()


async def agent(session: AsyncSession, agent_id: uuid.UUID) -> RowMapping | None:
    """The agent, if it is not revoked, with its registration's program agency."""
    row = await session.execute(
        text(
            "SELECT e.id, e.registration_id, e.credential_hash, a.slug AS agency"
            " FROM registry.edge_agents e JOIN registry.registrations r ON r.id = e.registration_id"
            " JOIN registry.agencies a ON a.id = r.agency_id"
            " WHERE e.id = :id AND e.revoked_at IS NULL"
        ),
        {"id": agent_id},
    )
    return row.mappings().first()


async def seen(session: AsyncSession, agent_id: uuid.UUID) -> None:
    await session.execute(
        text("UPDATE registry.edge_agents SET last_seen_at = now() WHERE id = :id"), {"id": agent_id}
    )


async def agents_of(session: AsyncSession, rid: uuid.UUID) -> list[RowMapping]:
    rows = await session.execute(
        text(
            "SELECT id, created_at, last_seen_at, revoked_at FROM registry.edge_agents"
            " WHERE registration_id = :rid ORDER BY created_at, id"
        ),
        {"rid": rid},
    )
    return list(rows.mappings().all())


async def revoke(session: AsyncSession, rid: uuid.UUID, agent_id: uuid.UUID) -> bool | None:
    """Revoke the registration's agent: True when this revoked it, False when it was revoked already, None when
    the registration has no such agent."""
    row = await session.execute(
        text(
            "UPDATE registry.edge_agents SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = :id AND registration_id = :rid"
            " RETURNING revoked_at = now() AS now_revoked"
        ),
        {"id": agent_id, "rid": rid},
    )
    got = row.first()
    return None if got is None else bool(got[0])


# The window open now to agency `me` that includes camera :cid as the agency sees it (CAMERA_RULE: the window's
# camera, its live mode allowing the reason, the registration active and shared with the agency, the camera in its
# jurisdiction); of several, the one that ends last. With :wid, only that window.
CHECK_SQL = f"""
WITH {ME_SQL}
SELECT w.id, w.registration_id, w.expires_at
FROM registry.live_windows w
JOIN me ON me.id = ANY(w.agency_ids)
JOIN registry.cameras c ON c.id = :cid AND {CAMERA_RULE}
WHERE w.closed_at IS NULL AND w.expires_at > now() AND (CAST(:wid AS uuid) IS NULL OR w.id = :wid)
ORDER BY w.expires_at DESC, w.id
LIMIT 1
"""  # noqa: S608 - composed from constants; values are bound


async def window_check(
    session: AsyncSession, agency: str, camera_id: uuid.UUID, window_id: uuid.UUID | None = None
) -> RowMapping | None:
    row = await session.execute(text(CHECK_SQL), {"me": agency, "cid": camera_id, "wid": window_id, **MODES})
    return row.mappings().first()


# The registration's windows open now, each with its cameras that at least one of its agencies sees (the same
# rule as an agency's view, for any of the window's agencies): what an agent may stream, and until when.
AGENT_WINDOWS_SQL = f"""
SELECT w.id, w.expires_at,
       ARRAY(SELECT c.id FROM registry.cameras c
             WHERE EXISTS (SELECT 1 FROM registry.agencies me
                           WHERE me.id = ANY(w.agency_ids) AND {CAMERA_RULE})
             ORDER BY c.id) AS camera_ids
FROM registry.live_windows w
WHERE w.registration_id = :rid AND w.closed_at IS NULL AND w.expires_at > now()
ORDER BY w.expires_at, w.id
"""  # noqa: S608 - composed from constants; values are bound


async def agent_windows(session: AsyncSession, rid: uuid.UUID) -> list[RowMapping]:
    rows = await session.execute(text(AGENT_WINDOWS_SQL), {"rid": rid, **MODES})
    return [r for r in rows.mappings().all() if r["camera_ids"]]
