"""The owner's record of live viewing: each time an agency watched one of their cameras through the relay — the
agency, the camera, the window, when it started, when it ended and how long it lasted — read from what the relay
appended to the audit trail (`live_viewing.start` and `live_viewing.end`, found through `audit.event_refs` by the
registration id their details name). Never who at the agency watched: the actor is not read.

Unlike the access report, a viewing shows at once, without the agency's disclosure delay: the owner opened the
window themselves, for this purpose, and live sharing's promise is that they can see every second that was watched.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.registry_api import abuse
from services.registry_api.auditing import audit, owner_actor
from services.registry_api.database import SessionDep
from services.registry_api.dependencies import NoStore
from services.registry_api.repository.registrations import owned_registration
from services.registry_api.shapes import iso
from shared.auth import CurrentOwner
from shared.errors import problem_responses
from shared.pagination import LimitQuery, clamp_limit

router = APIRouter(
    prefix="/v1/registrations/{registration_id}/live-viewings",
    tags=["live sharing"],
    dependencies=[NoStore, abuse.RememberClient],
)

# A viewing's start and end records, paired by the viewing's id; its agency, camera and window as the relay
# recorded them (the start's, the end's details for the end). Only the relay's records, only this registration's.
VIEWINGS_SQL = """
WITH recs AS (
    SELECT e.seq, e.at, e.agency, e.action, e.subject_id, e.details
    FROM audit.event_refs r
    JOIN audit.events e ON e.seq = r.seq
    WHERE r.target = :rid
      AND e.service = 'live_relay'
      AND e.action IN ('live_viewing.start', 'live_viewing.end')
      AND e.details->>'registration_id' = :rid
),
starts AS (
    SELECT DISTINCT ON (details->>'viewing_id') details->>'viewing_id' AS viewing_id, seq, at, agency,
           subject_id AS camera_id, details->>'window_id' AS window_id
    FROM recs WHERE action = 'live_viewing.start'
    ORDER BY details->>'viewing_id', seq
),
ends AS (
    SELECT DISTINCT ON (details->>'viewing_id') details->>'viewing_id' AS viewing_id, at, details
    FROM recs WHERE action = 'live_viewing.end'
    ORDER BY details->>'viewing_id', seq
)
SELECT s.viewing_id, s.at AS started_at, s.agency, a.name AS agency_name, s.camera_id, s.window_id,
       e.at AS ended_at, e.details->>'seconds' AS seconds, e.details->>'ended_by' AS ended_by
FROM starts s
LEFT JOIN ends e ON e.viewing_id = s.viewing_id
LEFT JOIN registry.agencies a ON a.slug = s.agency
ORDER BY s.seq DESC
LIMIT :n
"""


class LiveViewing(BaseModel):
    id: uuid.UUID = Field(description="The viewing's id, as the relay's audit records name it")
    agency: str = Field(examples=["milwaukee-pd"])
    agency_name: str | None = Field(examples=["Milwaukee Police Department"])
    camera_id: uuid.UUID
    window_id: uuid.UUID = Field(description="The live window the viewing was in")
    started_at: datetime
    ended_at: datetime | None = Field(description="None while the agency is still watching")
    duration_s: float | None = Field(
        description="How long the agency watched, in seconds (None while watching)"
    )


VIEWING_EXAMPLE = {
    "id": "5f0c3a2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b",
    "agency": "milwaukee-pd",
    "agency_name": "Milwaukee Police Department",
    "camera_id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "window_id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "started_at": "2026-11-21T15:04:10Z",
    "ended_at": "2026-11-21T15:09:52Z",
    "duration_s": 342.0,
}


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


@router.get(
    "",
    summary="Each time an agency watched your cameras live: the agency, the camera, when and how long (owner "
    "credential)",
    response_model=list[LiveViewing],
    responses={
        200: {"content": {"application/json": {"example": [VIEWING_EXAMPLE]}}},
        **problem_responses(401, 404, 429),
    },
    description=(
        "Newest first, from the relay's audit records: shown at once (no disclosure delay: you opened the window). "
        "A viewing still going on has no `ended_at`. Who at the agency watched is never shown."
    ),
)
async def list_viewings(
    registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep, limit: LimitQuery = None
) -> Any:
    row = await owned_registration(session, registration_id, owner)
    n = clamp_limit(limit, default=100, maximum=500)
    rows = (await session.execute(text(VIEWINGS_SQL), {"rid": str(row["id"]), "n": n})).mappings().all()
    await audit(
        session,
        "live_viewing.list.read",
        actor=owner_actor(row["id"]),
        role="owner",
        agency=None,
        subject_id=row["id"],
        details={"results": len(rows)},
    )
    await session.commit()
    return [
        {
            "id": r["viewing_id"],
            "agency": r["agency"],
            "agency_name": r["agency_name"],
            "camera_id": r["camera_id"],
            "window_id": r["window_id"],
            "started_at": iso(r["started_at"]),
            "ended_at": iso(r["ended_at"]),
            "duration_s": _seconds(r["seconds"]),
        }
        for r in rows
    ]
