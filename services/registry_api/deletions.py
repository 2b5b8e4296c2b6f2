"""The feed of deleted registrations, for the other Canvass services only (role 'service'): requests_api reads it to
erase what an owner wrote in its footage requests once the owner deleted the registration.

A deletion is the registration's random id and when it was deleted, nothing else (`registry.deletions`, written in
the transaction that deletes the registration). The feed is read after a cursor, in `seq` order; a reader keeps
`next_after` and asks from there next time.

No deletion is ever shown after one with a higher `seq`: a deletion's `seq` is taken when its transaction writes
the row, and transactions may commit in another order than they took their numbers. So a page is read under a
SHARE lock on the table, which waits for every deleting transaction in flight to end (and holds new ones back for
the few milliseconds of the read): every number taken before the read then belongs to a committed deletion or to
none, and every deletion after it gets a higher one. A reader that moves its cursor to `next_after` skips none.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.registry_api.database import SessionDep
from services.registry_api.dependencies import NoStore, ServiceCaller
from services.registry_api.repository.registrations import FeedBusy, deletions_after
from services.registry_api.shapes import iso
from shared.errors import Problem, problem_responses

router = APIRouter(tags=["registrations"])
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

EXAMPLE: dict[str, Any] = {
    "deletions": [
        {
            "seq": 41,
            "registration_id": "0b7c4c1e-5d7a-4f0e-9a51-3f1f0c2d9e84",
            "deleted_at": "2026-11-20T22:14:05.120Z",
        },
        {
            "seq": 42,
            "registration_id": "6f2a9d33-1c4b-4e8f-8d0a-7b5e2c1f4a90",
            "deleted_at": "2026-11-20T22:31:47.003Z",
        },
    ],
    "next_after": 42,
}


class Deletion(BaseModel):
    seq: int = Field(ge=1, description="The deletion's position in the feed", examples=[42])
    registration_id: uuid.UUID = Field(description="The deleted registration's id")
    deleted_at: datetime = Field(description="When its owner deleted it")


class DeletionPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    deletions: list[Deletion] = Field(
        description="In `seq` order; fewer than `limit` when the feed is exhausted"
    )
    next_after: int = Field(
        ge=0,
        description="The cursor for the next page: the last `seq` shown, or `after` itself when none was",
        examples=[42],
    )


@router.get(
    "/v1/deleted-registrations",
    summary="Registrations deleted by their owners, after a cursor (Canvass services only)",
    response_model=DeletionPage,
    dependencies=[NoStore],
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE}}},
        **problem_responses(401, 403, 503),
    },
    description=(
        "The deletions after `after` (0 for the first), in `seq` order, at most `limit`. Ask again with "
        "`after=next_after` until a page holds fewer than `limit`. No deletion is ever shown after one with a "
        "higher `seq`, so a reader that keeps `next_after` misses none."
    ),
)
async def deleted_registrations(
    principal: ServiceCaller,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="The last `seq` already read (0: none)")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="At most this many deletions")
    ] = DEFAULT_LIMIT,
) -> Any:
    # SHARE conflicts with the ROW EXCLUSIVE lock a deleting transaction holds from its insert to its end (see
    # the module's docstring); the service's statement timeout bounds the wait (a 503).
    # A reader never waits long for the lock (nor holds deletions back long): past 2 s it is told to come back.
    try:
        rows = await deletions_after(session, after, limit)
    except FeedBusy as exc:
        raise Problem(
            503,
            "Deletions are being written; ask again in a moment.",
            kind="unavailable",
            headers={"Retry-After": "1"},
        ) from exc
    await session.rollback()
    return {
        "deletions": [
            {
                "seq": r["seq"],
                "registration_id": str(r["registration_id"]),
                "deleted_at": iso(r["deleted_at"]),
            }
            for r in rows
        ],
        "next_after": rows[-1]["seq"] if rows else after,
    }
