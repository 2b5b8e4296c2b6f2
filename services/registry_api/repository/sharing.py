"""Sharing: the agencies a registration is shared with, and the cameras' copy of who may see them.

The invariant geo_query relies on: `cameras.visible_to` is `registry.visible_to(status, shares)` of the camera's
registration (the agencies it is shared with while it is active, none otherwise: the owner's half of the
visibility rule, migrations 0025 and 0029), and `cameras.owner_kind` mirrors the registration's. Every write that changes
status, sharing, owner kind or cameras calls `recompute_visibility` before the transaction commits; it, and the
import's merge, run the database's `registry.sync_cameras` for that.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def recompute_visibility(session: AsyncSession, rid: uuid.UUID) -> None:
    """Restore the invariant geo_query relies on (see the module docstring), in the caller's transaction, with
    the database's `registry.sync_cameras`: the one statement every writer (this API, the import) runs."""
    await session.execute(text("SELECT registry.sync_cameras(ARRAY[CAST(:id AS uuid)])"), {"id": rid})


async def replace_shares(
    session: AsyncSession, rid: uuid.UUID, program_agency: uuid.UUID, further: Sequence[uuid.UUID]
) -> None:
    ids = sorted({program_agency, *further})
    await session.execute(
        text(
            "DELETE FROM registry.registration_shares WHERE registration_id = :id AND NOT agency_id = ANY(:ids)"
        ),
        {"id": rid, "ids": ids},
    )
    await session.execute(
        text(
            "INSERT INTO registry.registration_shares (registration_id, agency_id)"
            " SELECT :id, unnest(CAST(:ids AS uuid[])) ON CONFLICT DO NOTHING"
        ),
        {"id": rid, "ids": ids},
    )


# Whether the owner's choices show registration `:id` to the agency with slug `:agency` now (the owner's half of
# the visibility rule: active and shared with it). Read from the registration and its shares, not the cameras'
# copy: a registration keeps its consent to an agency's contact whatever its cameras are.
SHOWN_TO_SQL = """
SELECT EXISTS (
    SELECT 1 FROM registry.registrations r JOIN registry.agencies a ON a.slug = :agency
    WHERE r.id = :id AND a.id = ANY(registry.visible_to(r.status, ARRAY(
        SELECT s.agency_id FROM registry.registration_shares s WHERE s.registration_id = r.id))))
"""


async def shown_to(session: AsyncSession, rid: uuid.UUID, agency: str) -> bool:
    return bool((await session.execute(text(SHOWN_TO_SQL), {"id": rid, "agency": agency})).scalar_one())
