"""An agency's community policy: the limits of the tips it takes (media size, types and count; how long a closed
tip is kept) and of the subscriptions to its alerts (the largest radius). An agency without a policy of its own has
the defaults; its admin sets one with PUT."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.community_api.config import config
from services.community_api.database import db
from services.community_api.media import CLEANABLE
from services.community_api.responses import json_response
from shared.audit import AuditEvent, append_asyncpg
from shared.auth import Principal, require_roles
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.headers import idempotency_key
from shared.inputs import StrictInput

router = APIRouter(prefix="/v1/agencies/{slug}/community-policy", tags=["policy"])

SlugPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="The agency's slug")]
IdempotencyKey = idempotency_key(
    "A unique value per composed alert (e.g. a UUID): a retried send by you with the same key and body, within "
    "the replay window (24 hours by default), answers as the first did and sends nothing again; another body is "
    "a 422",
    "9b1f2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
)
MediaType = Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)]


class CommunityPolicy(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tip_media_max_bytes": 26214400,
                    "tip_media_types": ["image/jpeg", "image/png", "video/mp4"],
                    "tip_max_files": 5,
                    "tip_retention_days": 365,
                    "alert_max_radius_m": 2000,
                }
            ]
        }
    )

    tip_media_max_bytes: int = Field(description="The largest media file a tip may carry, in bytes")
    tip_media_types: list[str] = Field(
        description="The media types a tip may carry (each one that can be cleaned)"
    )
    tip_max_files: int = Field(description="How many media files one tip or follow-up may carry")
    tip_retention_days: int = Field(description="How long a closed tip is kept (unless under legal hold)")
    alert_max_radius_m: int = Field(
        description="The largest radius of a pin-and-radius subscription, in metres"
    )


class CommunityPolicyInput(StrictInput):
    tip_media_max_bytes: int = Field(ge=1024, le=104_857_600)
    tip_media_types: list[MediaType] = Field(
        min_length=1, max_length=20, description="At least one (tip_max_files 0 takes no media)"
    )
    tip_max_files: int = Field(ge=0, le=10)
    tip_retention_days: int = Field(ge=1, le=3650)
    alert_max_radius_m: int = Field(ge=50, le=50_000)


DEFAULTS = CommunityPolicy(
    tip_media_max_bytes=25 * 1024 * 1024,
    tip_media_types=sorted(CLEANABLE),
    tip_max_files=5,
    tip_retention_days=365,
    alert_max_radius_m=2000,
)
POLICY_SQL = """
SELECT tip_media_max_bytes, tip_media_types, tip_max_files, tip_retention_days, alert_max_radius_m
FROM community.policies WHERE agency = $1
"""
AGENCY_SQL = "SELECT slug FROM registry.agencies WHERE slug = $1"


async def agency_exists(conn: asyncpg.Connection, slug: str) -> bool:
    return await conn.fetchval(AGENCY_SQL, slug) is not None


async def policy_of(conn: asyncpg.Connection, slug: str) -> CommunityPolicy:
    row = await conn.fetchrow(POLICY_SQL, slug)
    if row is None:
        return DEFAULTS.model_copy(
            update={"tip_media_max_bytes": min(DEFAULTS.tip_media_max_bytes, config().media_ceiling_bytes)}
        )
    return CommunityPolicy(**dict(row))


def own_agency(principal: Principal, slug: str) -> None:
    """Agency isolation: another agency's objects do not exist for the caller."""
    if principal.agency != slug:
        raise Problem(404, f"No agency {slug!r} among yours.")


@router.get(
    "",
    summary="An agency's limits for tips and alert subscriptions (public: the tip form shows them)",
    response_model=CommunityPolicy,
    responses=problem_responses(404),
)
async def read_policy(slug: SlugPath) -> Response:
    async with pooled(await db.pool()) as conn:
        if not await agency_exists(conn, slug):
            raise Problem(404, f"No agency {slug!r}.")
        policy = await policy_of(conn, slug)
    return json_response(policy.model_dump(), headers={"Cache-Control": "public, max-age=60"})


@router.put(
    "",
    summary="Set the agency's limits for tips and alert subscriptions",
    response_model=CommunityPolicy,
    responses=problem_responses(403, 404),
)
async def write_policy(
    slug: SlugPath,
    body: CommunityPolicyInput,
    principal: Annotated[Principal, require_roles("agency_admin")],
) -> Response:
    own_agency(principal, slug)
    for i, media_type in enumerate(body.tip_media_types):
        if media_type not in CLEANABLE:
            raise invalid(
                f"/body/tip_media_types/{i}",
                f"{media_type} cannot be cleaned of its metadata; choose among {', '.join(sorted(CLEANABLE))}",
            )
    if body.tip_media_max_bytes > config().media_ceiling_bytes:
        raise invalid(
            "/body/tip_media_max_bytes",
            f"this deployment takes files up to {config().media_ceiling_bytes} bytes",
        )
    types = sorted(set(body.tip_media_types))
    values: dict[str, Any] = {**body.model_dump(), "tip_media_types": types}
    async with pooled(await db.pool()) as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO community.policies
                (agency, tip_media_max_bytes, tip_media_types, tip_max_files, tip_retention_days, alert_max_radius_m)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (agency) DO UPDATE SET
                tip_media_max_bytes = EXCLUDED.tip_media_max_bytes, tip_media_types = EXCLUDED.tip_media_types,
                tip_max_files = EXCLUDED.tip_max_files, tip_retention_days = EXCLUDED.tip_retention_days,
                alert_max_radius_m = EXCLUDED.alert_max_radius_m, updated_at = now()
            """,
            slug,
            values["tip_media_max_bytes"],
            types,
            values["tip_max_files"],
            values["tip_retention_days"],
            values["alert_max_radius_m"],
        )
        await append_asyncpg(
            conn,
            AuditEvent(
                service="community_api",
                actor=principal.sub,
                actor_role="agency_admin",
                agency=slug,
                action="community_policy.updated",
                subject_type="agency",
                subject_id=slug,
                details=values,
            ),
        )
    return json_response(values)
