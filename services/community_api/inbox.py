"""The agency's tip inbox: its investigators and supervisors (no one else, and never another agency's) read tips,
move them through triage, reply to the tipster, and put a tip under legal hold.

Triage is the table `TRANSITIONS`: an action, the states it leaves, the state it enters, and the roles that may
take it. Every view of a tip — the list, one tip, one media file — is appended to the audit trail with who looked,
as is every change. A closed tip is deleted, with its conversation and media, once the agency's retention period
has passed since it was closed, and a tip never closed once `tip_open_retention_days` have passed since its last
activity, unless it is under legal hold (`purge_expired`, run by the service's housekeeping).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.community_api.database import db
from services.community_api.policy import SlugPath, own_agency
from services.community_api.responses import json_response
from services.community_api.tips import EXAMPLE_MESSAGE, TipMessage, messages_of, store_message
from shared.audit import AuditEvent, append_asyncpg
from shared.auth import Principal, require_roles
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import GeoJSONResponse, PointGeometry
from shared.inputs import StrictInput
from shared.links import link
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/agencies/{slug}/tips", tags=["inbox"])

STATES = ("new", "reviewing", "actioned", "closed")
INBOX_ROLES = ("investigator", "supervisor")
# action -> (the states it may leave, the state it enters, the roles that may take it)
TRANSITIONS: dict[str, tuple[frozenset[str], str, frozenset[str]]] = {
    "review": (frozenset({"new"}), "reviewing", frozenset(INBOX_ROLES)),
    "action": (frozenset({"reviewing"}), "actioned", frozenset(INBOX_ROLES)),
    "close": (frozenset({"new", "reviewing", "actioned"}), "closed", frozenset(INBOX_ROLES)),
    "reopen": (frozenset({"closed"}), "reviewing", frozenset({"supervisor"})),
}
Action = Literal["review", "action", "close", "reopen"]
InboxUser = Annotated[Principal, require_roles(*INBOX_ROLES)]
Supervisor = Annotated[Principal, require_roles("supervisor")]
TipId = Annotated[uuid.UUID, Path(description="The tip's id")]


class Transition(StrictInput):
    action: Action = Field(description="review (new→reviewing), action (reviewing→actioned), close, reopen")


class Reply(StrictInput):
    message: str = Field(min_length=1, max_length=4000, description="What the tipster reads with their code")


class LegalHold(StrictInput):
    hold: bool = Field(description="true keeps the tip past its retention period until the hold is lifted")


class TipSummary(BaseModel):
    type: Literal["Feature"]
    id: uuid.UUID
    geometry: PointGeometry | None = Field(description="The tip's place (a Point), or null")
    properties: dict[str, Any]


EXAMPLE_FEATURE: dict[str, Any] = {
    "type": "Feature",
    "id": "3f1c2b7e-5d4a-4e8f-9a6b-1c2d3e4f5a6b",
    "geometry": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "properties": {"state": "new", "legal_hold": False, "created_at": "2026-12-05T21:00:00Z", "occurred_at": None,
                   "messages": 1, "media": 1},
}  # fmt: skip


class TipList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "FeatureCollection", "features": [EXAMPLE_FEATURE], "next_cursor": None}]
        }
    )

    type: Literal["FeatureCollection"]
    features: list[TipSummary]
    next_cursor: str | None = None


class TipDetail(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **EXAMPLE_FEATURE,
                    "properties": {
                        "agency": "milwaukee-pd",
                        "state": "reviewing",
                        "legal_hold": False,
                        "created_at": "2026-12-05T21:00:00Z",
                        "updated_at": "2026-12-05T21:00:00Z",
                        "closed_at": None,
                        "occurred_at": "2026-12-05T02:00:00Z",
                        "messages": [EXAMPLE_MESSAGE],
                    },
                }
            ]
        }
    )

    type: Literal["Feature"]
    id: uuid.UUID
    geometry: PointGeometry | None
    properties: dict[str, Any] = Field(
        description="agency, state, legal_hold, created_at, updated_at, closed_at, occurred_at, messages"
    )


def _audit(principal: Principal, action: str, tip_id: Any, **details: Any) -> AuditEvent:
    return AuditEvent(
        service="community_api",
        actor=principal.sub,
        actor_role=next((r for r in INBOX_ROLES if r in principal.roles), sorted(principal.roles)[0]),
        agency=principal.agency,
        action=action,
        subject_type="tip",
        subject_id=str(tip_id) if tip_id is not None else None,
        details=details,
    )


TIP_SQL = """
SELECT id, agency, state, legal_hold, created_at, updated_at, closed_at, occurred_at,
       ST_AsGeoJSON(location, 7)::text AS geometry
FROM community.tips WHERE id = $1 AND agency = $2
"""


async def _tip(
    conn: asyncpg.Connection, slug: str, tip_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(TIP_SQL + (" FOR UPDATE" if lock else ""), tip_id, slug)
    if row is None:
        raise Problem(404, f"No tip {tip_id} in this agency's inbox.")
    return row


def _feature(row: asyncpg.Record, **extra: Any) -> dict[str, Any]:
    props = {k: row[k] for k in row.keys() if k not in ("id", "geometry")}
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": orjson.loads(row["geometry"]) if row["geometry"] else None,
        "properties": {**props, **extra},
    }


@router.get(
    "",
    summary="The agency's tips, newest first, as GeoJSON (a tip with a place has a Point): each listing is audited",
    response_model=TipList,
    response_class=GeoJSONResponse,
    responses=problem_responses(403, 404),
)
async def list_tips(
    slug: SlugPath,
    principal: InboxUser,
    state: Annotated[Literal["new", "reviewing", "actioned", "closed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    own_agency(principal, slug)
    after: dict[str, Any] | None = None
    if cursor is not None:
        after = decode_cursor(cursor, ("id",), times=("at",))
        try:
            after["id"] = uuid.UUID(after["id"])
        except ValueError:
            after = None
        if after is None:
            raise invalid(
                "/query/cursor", "not a cursor this service issued", status=400, code="cursor_invalid"
            )
    rows = await (await db.pool()).fetch(
        """
        SELECT t.id, t.state, t.legal_hold, t.created_at, t.occurred_at, ST_AsGeoJSON(t.location, 7)::text AS geometry,
               (SELECT count(*) FROM community.tip_messages m WHERE m.tip_id = t.id) AS messages,
               (SELECT count(*) FROM community.tip_media d WHERE d.tip_id = t.id) AS media
        FROM community.tips t
        WHERE t.agency = $1 AND ($2::text IS NULL OR t.state = $2)
          AND ($3::timestamptz IS NULL OR (t.created_at, t.id) < ($3, $4))
        ORDER BY t.created_at DESC, t.id DESC LIMIT $5
        """,
        slug,
        state,
        after["at"] if after else None,
        after["id"] if after else None,
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    async with pooled(await db.pool()) as conn:
        await append_asyncpg(
            conn, _audit(principal, "tips.listed", None, state=state, tips=[str(r["id"]) for r in rows])
        )
    last = rows[-1] if rows and more else None
    body = {
        "type": "FeatureCollection",
        "features": [_feature(r) for r in rows],
        "next_cursor": encode_cursor({"at": last["created_at"].isoformat(), "id": str(last["id"])})
        if last
        else None,
    }
    return json_response(body, geojson=True)


@router.get(
    "/{tip_id}",
    summary="One tip with its conversation and media list (the view is audited)",
    response_model=TipDetail,
    response_class=GeoJSONResponse,
    responses=problem_responses(403, 404),
)
async def read_tip(slug: SlugPath, tip_id: TipId, principal: InboxUser) -> Response:
    own_agency(principal, slug)
    async with pooled(await db.pool()) as conn, conn.transaction():
        row = await _tip(conn, slug, tip_id)
        messages = await messages_of(conn, tip_id)
        await append_asyncpg(conn, _audit(principal, "tip.viewed", tip_id))
    return json_response(_feature(row, messages=messages), geojson=True)


@router.get(
    "/{tip_id}/media/{media_id}",
    summary="One media file of a tip, as stored (metadata removed); the view is audited",
    response_class=Response,
    responses={
        200: {
            "description": "The file, of the media type it was sent as",
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(bytes)",
                }
            },
        },
        **problem_responses(403, 404),
    },
)
async def read_media(
    slug: SlugPath,
    tip_id: TipId,
    media_id: Annotated[uuid.UUID, Path(description="The media file's id")],
    principal: InboxUser,
) -> Response:
    own_agency(principal, slug)
    async with pooled(await db.pool()) as conn, conn.transaction():
        await _tip(conn, slug, tip_id)
        row = await conn.fetchrow(
            "SELECT media_type, content, sha256 FROM community.tip_media WHERE id = $1 AND tip_id = $2",
            media_id,
            tip_id,
        )
        if row is None:
            raise Problem(404, f"No media {media_id} on this tip.")
        await append_asyncpg(conn, _audit(principal, "tip.media_viewed", tip_id, media=str(media_id)))
    return Response(
        bytes(row["content"]),
        media_type=row["media_type"],
        headers={
            "Content-Disposition": f'attachment; filename="tip-media-{media_id}"',
            "Digest": "sha-256=" + base64.b64encode(bytes(row["sha256"])).decode(),
        },
    )


@router.post(
    "/{tip_id}/transitions",
    summary="Move a tip through triage: review, action, close (investigators and supervisors), reopen (supervisors)",
    response_model=TipDetail,
    response_class=GeoJSONResponse,
    responses=problem_responses(403, 404, 409),
)
async def transition(slug: SlugPath, tip_id: TipId, body: Transition, principal: InboxUser) -> Response:
    own_agency(principal, slug)
    leaves, enters, roles = TRANSITIONS[body.action]
    if not principal.has(*roles):
        raise Problem(403, f"The action {body.action!r} needs one of the roles: {', '.join(sorted(roles))}.")
    async with pooled(await db.pool()) as conn, conn.transaction():
        row = await _tip(conn, slug, tip_id, lock=True)
        if row["state"] not in leaves:
            raise Problem(
                409,
                f"A {row['state']} tip cannot be {body.action}ed; from {row['state']} you may: "
                + (", ".join(a for a, (f, _, _) in TRANSITIONS.items() if row["state"] in f) or "nothing"),
            )
        await conn.execute(
            """UPDATE community.tips SET state = $2, updated_at = now(),
                   closed_at = CASE WHEN $2 = 'closed' THEN now() ELSE NULL END
               WHERE id = $1""",
            tip_id,
            enters,
        )
        await append_asyncpg(
            conn, _audit(principal, f"tip.{body.action}", tip_id, from_state=row["state"], to_state=enters)
        )
        row = await _tip(conn, slug, tip_id)
    return json_response(_feature(row), geojson=True)


@router.post(
    "/{tip_id}/replies",
    status_code=201,
    summary="Reply to the tipster (they read it with their tip code); not on a closed tip",
    response_model=TipMessage,
    responses={
        201: {
            "description": "Replied",
            "links": {
                "ReadTip": link(
                    "read_tip_v1_agencies__slug__tips__tip_id__get",
                    "The tip with its conversation",
                    slug="$request.path.slug",
                    tip_id="$request.path.tip_id",
                )
            },
        },
        **problem_responses(403, 404, 409),
    },
)
async def reply(slug: SlugPath, tip_id: TipId, body: Reply, principal: InboxUser) -> Response:
    own_agency(principal, slug)
    if "\x00" in body.message:
        raise invalid("/body/message", "must not contain NUL characters", code="text_invalid")
    async with pooled(await db.pool()) as conn, conn.transaction():
        row = await _tip(conn, slug, tip_id, lock=True)
        if row["state"] == "closed":
            raise Problem(409, "The tip is closed; reopen it to reply.")
        message = await store_message(conn, tip_id, "agency", body.message, [])
        await conn.execute("UPDATE community.tips SET updated_at = now() WHERE id = $1", tip_id)
        await append_asyncpg(conn, _audit(principal, "tip.replied", tip_id, message=str(message["id"])))
    return json_response(message, status=201)


@router.put(
    "/{tip_id}/legal-hold",
    summary="Put a tip under legal hold, or lift it (supervisors): a held tip outlives its retention period",
    response_model=TipDetail,
    response_class=GeoJSONResponse,
    responses=problem_responses(403, 404),
)
async def legal_hold(slug: SlugPath, tip_id: TipId, body: LegalHold, principal: Supervisor) -> Response:
    own_agency(principal, slug)
    async with pooled(await db.pool()) as conn, conn.transaction():
        await _tip(conn, slug, tip_id, lock=True)
        await conn.execute(
            "UPDATE community.tips SET legal_hold = $2, updated_at = now() WHERE id = $1", tip_id, body.hold
        )
        await append_asyncpg(conn, _audit(principal, "tip.legal_hold", tip_id, hold=body.hold))
        row = await _tip(conn, slug, tip_id)
    return json_response(_feature(row), geojson=True)


PURGE_SQL = """
DELETE FROM community.tips t
USING (SELECT t2.id FROM community.tips t2
       LEFT JOIN community.policies p ON p.agency = t2.agency
       WHERE NOT t2.legal_hold
         AND (t2.state = 'closed'
              AND t2.closed_at < $1::timestamptz - make_interval(days => coalesce(p.tip_retention_days, $2))
              OR t2.state <> 'closed' AND t2.updated_at < $1::timestamptz - make_interval(days => $3))
       LIMIT 500 FOR UPDATE OF t2 SKIP LOCKED) old
WHERE t.id = old.id
RETURNING t.id, t.agency, t.state
"""


async def purge_expired(conn: asyncpg.Connection, now: datetime, default_days: int, open_days: int) -> int:
    """Delete the tips past their retention (none under hold), with their conversation and media (cascaded: the
    media are stored in the database, nowhere else), each deletion audited: a closed tip `tip_retention_days` (the
    agency's, else `default_days`) after its closing, an open one `open_days` after its last activity."""
    async with conn.transaction():
        rows = await conn.fetch(PURGE_SQL, now, default_days, open_days)
        for r in rows:
            await append_asyncpg(
                conn,
                AuditEvent(
                    service="community_api",
                    actor="community_api",
                    actor_role="service",
                    agency=r["agency"],
                    action="tip.purged",
                    subject_type="tip",
                    subject_id=str(r["id"]),
                    details={"reason": "retention" if r["state"] == "closed" else "open_retention",
                             "state": r["state"]},
                ),
            )  # fmt: skip
    return len(rows)
