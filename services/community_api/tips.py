"""Anonymous tips: anyone, without an account, sends a tip to an agency, and follows it up with the tip code.

What the tipster is never asked for and never leaves a trace of: these routes do not read the client's address
or user agent, except the address for the rate limit, which counts (in the database, shared by every process)
only a keyed hash that is forgotten with its window (ratelimit.py); the access log names the method, path and
status only. The tip code is returned once, when the tip is sent; only its SHA-256 is stored (it carries 192 random bits, so a fast hash is enough). With it the
tipster reads the agency's replies and adds information: an anonymous two-way conversation.

A tip's text comes in a multipart form with its media, each file cleaned of its metadata (media.py) before the
transaction that stores it; a file that cannot be cleaned fails the whole tip, so nothing is stored half.

The times the tipster's requests set (the tip's and its messages' and media's `created_at`, the tip's
`updated_at`) are stored to the hour (a trigger, migration 0034), and the tipster's requests write no audit record
(whose time is exact): a time to the microsecond could be matched against a reverse proxy's access log to find the
address that sent the tip. The tip itself is the record that it came; what the agency's staff do with it is
audited (inbox.py).

There is no Idempotency-Key here: replaying a create's answer would mean keeping the tip code (sealed) beside it,
and the code is kept nowhere.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from services.community_api import media
from services.community_api.database import db
from services.community_api.policy import CommunityPolicy, agency_exists, policy_of
from services.community_api.ratelimit import check, limiter
from services.community_api.responses import json_response
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.links import link
from shared.timestamps import parse_instant

router = APIRouter(prefix="/v1/tips", tags=["tips"])
UPLOAD_PREFIX = "/v1/tips"
CODE_PREFIX = "cvt_"
MAX_TEXT = 10_000
SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"

tip_code_header = APIKeyHeader(
    name="X-Tip-Code",
    scheme_name="TipCode",
    auto_error=False,
    description="The tip code returned once when the tip was sent",
)


def hash_code(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(24)


# --- the multipart form ---------------------------------------------------------------------------------------


@dataclass
class TipForm:
    text: str
    agency: str | None
    lon: float | None
    lat: float | None
    occurred_at: Any
    files: list[UploadFile]
    raw: FormData  # closed by the route when done (its spooled files removed)


def _field(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise invalid(f"/body/{name}", "given more than once; it takes one value", code="repeated")
    if not values:
        return None
    value = values[0]
    if not isinstance(value, str):
        raise invalid(f"/body/{name}", "a text field, not a file")
    if "\x00" in value:
        raise invalid(f"/body/{name}", "must not contain NUL characters", code="text_invalid")
    return value


def _coordinate(form: FormData, name: str, bound: float) -> float | None:
    raw = _field(form, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise invalid(f"/body/{name}", "must be a number", code="float_parsing") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise invalid(f"/body/{name}", f"must be a finite number in [-{bound:g}, {bound:g}]")
    return value


class StrictMultiPartParser(MultiPartParser):
    """Starlette's parser, except that a text field that is not UTF-8 is refused (Starlette would read it as
    Latin-1 and store mojibake)."""

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                self.items.append((part.field_name, bytes(part.data).decode("utf-8")))
            except UnicodeDecodeError:
                raise invalid(f"/body/{part.field_name}", "must be UTF-8 text", code="text_invalid") from None
            return
        super().on_part_end()


async def read_form(request: Request, fields: set[str], max_files: int) -> TipForm:
    """The tip's form, strictly: a known field at most once, text without NUL, files only under `media`."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise Problem(
            415,
            "This operation takes multipart/form-data: the text in a field `text`, files in fields `media`.",
            headers={"Accept-Post": "multipart/form-data"},
        )
    parser = StrictMultiPartParser(
        request.headers,
        request.stream(),
        max_files=max_files,
        max_fields=len(fields) + 11,  # room for media sent as text, refused below by name
        max_part_size=64 * 1024,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Problem(400, f"The multipart body could not be read: {exc.message}") from None
    try:
        return _checked(form, fields)
    except BaseException:
        await form.close()
        raise


def _checked(form: FormData, fields: set[str]) -> TipForm:
    for name in form:
        if name not in fields and name != "media":
            raise invalid(
                f"/body/{name}",
                f"unknown field; this operation takes: {', '.join(sorted(fields | {'media'}))}",
                code="extra_forbidden",
            )
    text = _field(form, "text")
    if text is None or not text.strip():
        raise invalid("/body/text", "the tip's text is required", code="missing")
    if len(text) > MAX_TEXT:
        raise invalid(
            "/body/text",
            f"at most {MAX_TEXT} characters",
            code="string_too_long",
            params={"max_length": MAX_TEXT},
        )
    files: list[UploadFile] = []
    for i, item in enumerate(form.getlist("media")):
        if not isinstance(item, UploadFile):
            raise invalid(f"/body/media/{i}", "a file, not a text field")
        files.append(item)
    lon = _coordinate(form, "lon", 180) if "lon" in fields else None
    lat = _coordinate(form, "lat", 90) if "lat" in fields else None
    if (lon is None) != (lat is None):
        raise invalid("/body/lon" if lon is None else "/body/lat", "give lon and lat together, or neither")
    occurred = _field(form, "occurred_at") if "occurred_at" in fields else None
    occurred_at = None
    if occurred is not None:
        try:
            occurred_at = parse_instant(occurred)
        except ValueError as exc:
            raise invalid("/body/occurred_at", str(exc)) from None
    agency = _field(form, "agency") if "agency" in fields else None
    return TipForm(text, agency, lon, lat, occurred_at, files, form)


async def _clean_upload(upload: UploadFile, media_type: str, index: int) -> media.Cleaned:
    # Copied in chunks to a named file of its own (the parser's spool file has no name), read by the cleaner,
    # and removed whatever happens.
    with tempfile.NamedTemporaryFile(prefix="canvass-tip-") as tmp:
        await upload.seek(0)
        while chunk := await upload.read(1024 * 1024):
            tmp.write(chunk)
        tmp.flush()
        return await media.clean(tmp.name, media_type, index)


async def clean_files(files: list[UploadFile], policy: CommunityPolicy) -> list[media.Cleaned]:
    """Each file checked against the agency's policy, then cleaned of its metadata (before anything is stored)."""
    if len(files) > policy.tip_max_files:
        raise invalid(
            "/body/media",
            f"this agency takes at most {policy.tip_max_files} files at a time",
            code="too_long",
            params={"max_length": policy.tip_max_files},
        )
    out = []
    for i, upload in enumerate(files):
        media_type = (upload.content_type or "").split(";")[0].strip().lower()
        if media_type not in media.CLEANABLE:
            raise media.refuse_uncleanable(media_type, i)
        if media_type not in policy.tip_media_types:
            raise Problem(
                415,
                f"/body/media/{i}: this agency does not take {media_type}; it takes {', '.join(policy.tip_media_types)}.",
                kind="media-type-not-accepted",
            )
        size = upload.size or 0
        if size > policy.tip_media_max_bytes:
            raise Problem(
                413,
                f"/body/media/{i}: the file is larger than the {policy.tip_media_max_bytes:,} bytes this agency takes.",
            )
        if size == 0:
            raise invalid(f"/body/media/{i}", "the file is empty")
        out.append(await _clean_upload(upload, media_type, i))
    return out


async def store_message(
    conn: asyncpg.Connection, tip_id: uuid.UUID, author: str, text: str, cleaned: list[media.Cleaned]
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO community.tip_messages (tip_id, author, body) VALUES ($1, $2, $3) RETURNING id, created_at",
        tip_id,
        author,
        text,
    )
    items = []
    for c in cleaned:
        media_id = await conn.fetchval(
            """INSERT INTO community.tip_media (tip_id, message_id, media_type, size, sha256, content)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            tip_id,
            row["id"],
            c.media_type,
            len(c.content),
            c.sha256,
            c.content,
        )
        items.append({"id": media_id, "media_type": c.media_type, "size": len(c.content)})
    return {"id": row["id"], "author": author, "body": text, "created_at": row["created_at"], "media": items}


MESSAGES_SQL = """
SELECT m.id, m.author, m.body, m.created_at,
       coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'media_type', d.media_type, 'size', d.size)
                          ORDER BY d.created_at, d.id) FILTER (WHERE d.id IS NOT NULL), '[]') AS media
FROM community.tip_messages m LEFT JOIN community.tip_media d ON d.message_id = m.id
WHERE m.tip_id = $1 GROUP BY m.id ORDER BY m.seq
"""


async def messages_of(conn: asyncpg.Connection, tip_id: uuid.UUID) -> list[dict[str, Any]]:
    return [{**dict(r), "media": orjson.loads(r["media"])} for r in await conn.fetch(MESSAGES_SQL, tip_id)]


# --- the answers' shapes --------------------------------------------------------------------------------------


EXAMPLE_MEDIA: dict[str, Any] = {
    "id": "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d",
    "media_type": "image/jpeg",
    "size": 48213,
}
EXAMPLE_MESSAGE: dict[str, Any] = {
    "id": "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716",
    "author": "tipster",
    "body": "A van parks behind the school every night at 2am.",
    "created_at": "2026-12-05T21:00:00Z",
    "media": [EXAMPLE_MEDIA],
}


class MediaItem(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_MEDIA]})

    id: uuid.UUID
    media_type: str
    size: int = Field(description="Bytes, after the metadata was removed")


class TipMessage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_MESSAGE]})

    id: uuid.UUID
    author: str = Field(description="`tipster` or `agency`")
    body: str
    created_at: str = Field(description="To the hour (UTC): no finer time of a tip is kept")
    media: list[MediaItem]


class TipCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c2b7e-5d4a-4e8f-9a6b-1c2d3e4f5a6b",
                    "code": "cvt_Jq3v9R0wq1xJc2mX8dH5pLkYtA7sZ4bN",
                    "agency": "milwaukee-pd",
                    "state": "new",
                    "created_at": "2026-12-05T21:00:00Z",
                    "media": [EXAMPLE_MEDIA],
                }
            ]
        }
    )

    id: uuid.UUID
    code: str = Field(description="The tip code: shown this once, never again; keep it to read replies")
    agency: str
    state: str
    created_at: str = Field(description="To the hour (UTC): no finer time of a tip is kept")
    media: list[MediaItem]


class TipsterView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c2b7e-5d4a-4e8f-9a6b-1c2d3e4f5a6b",
                    "agency": "milwaukee-pd",
                    "state": "reviewing",
                    "created_at": "2026-12-05T21:00:00Z",
                    "messages": [EXAMPLE_MESSAGE],
                }
            ]
        }
    )

    id: uuid.UUID
    agency: str
    state: str = Field(description="new, reviewing, actioned or closed")
    created_at: str = Field(description="To the hour (UTC): no finer time of a tip is kept")
    messages: list[TipMessage]


FORM_FIELDS = {
    "agency": {"type": "string", "pattern": SLUG, "description": "The agency the tip is for (its slug)"},
    "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "description": "What you want to tell"},
    "lon": {"type": "number", "minimum": -180, "maximum": 180, "description": "Where: longitude (with lat)"},
    "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "Where: latitude (with lon)"},
    "occurred_at": {"type": "string", "format": "date-time", "description": "When it happened (RFC 3339)"},
    "media": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "maxItems": 10,
        "description": "Photos, video or audio (the agency's policy says which types and how large); their "
        "metadata (EXIF, XMP, GPS, container tags) is removed before anything is stored",
    },
}


def _body(*names: str, required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {n: FORM_FIELDS[n] for n in names},
                        "required": list(required),
                        "additionalProperties": False,
                    }
                }
            },
        }
    }


TIP_LINKS = {
    "ReadOwnTip": link(
        "read_own_tip_v1_tips_mine_get",
        "Read the tip and the agency's replies",
        **{"header.X-Tip-Code": "$response.body#/code"},
    ),
    "AddToOwnTip": link(
        "add_to_own_tip_v1_tips_mine_messages_post",
        "Add information",
        **{"header.X-Tip-Code": "$response.body#/code"},
    ),
}

# --- the routes -----------------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    summary="Send a tip to an agency, anonymously (no account; the answer holds the tip code, shown once)",
    response_model=TipCreated,
    responses={
        201: {"description": "Sent", "links": TIP_LINKS},
        **problem_responses(404, 413, 415, 429, 503),
    },
    openapi_extra=_body("agency", "text", "lon", "lat", "occurred_at", "media", required=("agency", "text")),
)
async def send_tip(request: Request) -> Response:
    async with pooled(await db.pool()) as conn:
        await check(limiter(), request, conn)
    form = await read_form(request, {"agency", "text", "lon", "lat", "occurred_at"}, max_files=10)
    try:
        if form.agency is None:
            raise invalid("/body/agency", "the agency's slug is required", code="missing")
        async with pooled(await db.pool()) as conn:
            if not await agency_exists(conn, form.agency):
                raise Problem(404, f"No agency {form.agency!r}.")
            policy = await policy_of(conn, form.agency)
        cleaned = await clean_files(form.files, policy)
    finally:
        await form.raw.close()
    code = new_code()
    async with pooled(await db.pool()) as conn, conn.transaction():
        tip = await conn.fetchrow(
            """
            INSERT INTO community.tips (agency, location, occurred_at, code_hash)
            VALUES ($1, CASE WHEN $2::float8 IS NULL THEN NULL
                             ELSE ST_SetSRID(ST_MakePoint($2::float8, $3::float8), 4326) END, $4, $5)
            RETURNING id, agency, state, created_at
            """,
            form.agency,
            form.lon,
            form.lat,
            form.occurred_at,
            hash_code(code),
        )
        message = await store_message(conn, tip["id"], "tipster", form.text, cleaned)
    return json_response(
        {**dict(tip), "code": code, "media": message["media"]},
        status=201,
        headers={"Cache-Control": "no-store"},
    )


async def tip_by_code(code: str | None, request: Request, conn: asyncpg.Connection) -> asyncpg.Record:
    unknown = Problem(
        401,
        "This operation needs the tip code (X-Tip-Code) returned when the tip was sent.",
        headers={"WWW-Authenticate": 'ApiKey realm="canvass", header="X-Tip-Code"'},
    )
    if not code or not code.startswith(CODE_PREFIX) or len(code) > 100:
        raise unknown
    row = await conn.fetchrow(
        "SELECT id, agency, state, created_at FROM community.tips WHERE code_hash = $1", hash_code(code)
    )
    if row is None:
        await check(limiter(), request, conn)  # a wrong code counts against the sender, as a tip does
        raise unknown
    return row


TipCode = Annotated[str | None, Depends(tip_code_header)]


@router.get(
    "/mine",
    summary="The tipster's view of their tip: its state and the conversation with the agency",
    response_model=TipsterView,
    responses=problem_responses(401, 429),
)
async def read_own_tip(request: Request, code: TipCode) -> Response:
    async with pooled(await db.pool()) as conn:
        tip = await tip_by_code(code, request, conn)
        messages = await messages_of(conn, tip["id"])
    return json_response({**dict(tip), "messages": messages})


@router.post(
    "/mine/messages",
    status_code=201,
    summary="Add information to one's tip: text, and optionally more media",
    response_model=TipMessage,
    responses={
        201: {
            "description": "Added",
            "links": {
                "ReadOwnTip": TIP_LINKS["ReadOwnTip"]
                | {"parameters": {"header.X-Tip-Code": "$request.header.X-Tip-Code"}}
            },
        },
        **problem_responses(401, 409, 413, 415, 429, 503),
    },
    openapi_extra=_body("text", "media", required=("text",)),
)
async def add_to_own_tip(request: Request, code: TipCode) -> Response:
    async with pooled(await db.pool()) as conn:
        await check(limiter(), request, conn)
        tip = await tip_by_code(code, request, conn)
        policy = await policy_of(conn, tip["agency"])
    form = await read_form(request, {"text"}, max_files=10)
    try:
        cleaned = await clean_files(form.files, policy)
    finally:
        await form.raw.close()
    async with pooled(await db.pool()) as conn, conn.transaction():
        state = await conn.fetchval("SELECT state FROM community.tips WHERE id = $1 FOR UPDATE", tip["id"])
        if state is None:
            raise Problem(401, "This tip no longer exists.")
        if state == "closed":
            raise Problem(409, "The agency closed this tip; it takes no more information.")
        message = await store_message(conn, tip["id"], "tipster", form.text, cleaned)
        await conn.execute("UPDATE community.tips SET updated_at = now() WHERE id = $1", tip["id"])
    return json_response(message, status=201)
