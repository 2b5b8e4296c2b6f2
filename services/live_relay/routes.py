"""The relay's operations: an agency user asks for a viewing of a camera (a single-use grant) and fetches the
camera's video with it as one fragmented-MP4 response; the owner's edge agent connects over a WebSocket and sends
the video of the cameras the relay asks for (decision 0011)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.live_relay import registry
from services.live_relay.config import config
from services.live_relay.database import db
from services.live_relay.hub import AgentLink, Refused, Viewer, Viewing, hub
from services.live_relay.schemas import AgentPresence, OwnerViewing, ViewingCreate, ViewingOut
from shared.auth import CurrentOwner, OwnerCredential, Principal, format_owner_credential, require_roles
from shared.errors import Problem, problem_responses

log = logging.getLogger("canvass.live_relay")
TAG = "live video"
LiveViewer = Annotated[Principal, require_roles("investigator", "supervisor", "cad")]
grant_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ViewingGrant",
    description="A viewing's single-use grant (`cvr_…`), from POST /v1/viewings",
)
router = APIRouter(prefix="/v1/viewings", tags=[TAG])
owner_router = APIRouter(prefix="/v1/registrations/{registration_id}", tags=[TAG])
NO_STORE = {"Cache-Control": "no-store"}
MEDIA_TYPE = "video/mp4"
AGENT_PATH = "/v1/edge-agents/connect"
# A WebSocket message of media: the camera's id (16 bytes), then the bytes FFmpeg wrote.
CAMERA_ID_BYTES = 16

VIEWING_EXAMPLE = {
    "id": "5f0c3a2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b",
    "camera_id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "window_id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "window_expires_at": "2026-11-21T15:30:00Z",
    "grant": "cvr_5f0c3a2e1b4d4e6f8a9b0c1d2e3f4a5b_Zx3...secret",
    "grant_expires_at": "2026-11-21T15:10:30Z",
    "stream": "/v1/viewings/5f0c3a2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b/stream",
}


def _problem(refused: Refused) -> Problem:
    headers = {"Retry-After": "5"} if refused.status in (429, 503, 504) else None
    if refused.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="canvass"'}
    return Problem(refused.status, refused.detail, kind=refused.kind, headers=headers)


@router.post(
    "",
    summary="A viewing of a camera in a live window open to your agency: a single-use grant for its stream",
    status_code=201,
    response_model=ViewingOut,
    responses={
        201: {
            "content": {"application/json": {"example": VIEWING_EXAMPLE}},
            "links": {
                "Stream": {
                    "operationId": "stream_v1_viewings__viewing_id__stream_get",
                    "description": "The camera's video (send the grant as the bearer, once)",
                    "parameters": {
                        "viewing_id": "$response.body#/id",
                        "header.Authorization": "Bearer {$response.body#/grant}",
                    },
                }
            },
        },
        **problem_responses(401, 403, 409, 429, 503),
    },
    description=(
        "registry_api is asked whether a live window open now to your agency includes the camera (403 "
        "`no-open-window` otherwise), and the camera's edge agent must be connected (409 `agent-offline`). A "
        "user holding 16 viewings not watched yet (by default: `CANVASS_RELAY_MAX_UNUSED_GRANTS`) is refused "
        "more (429 `too-many-grants`) until one is watched or its grant expires. A bearer token already past its "
        "`exp` is refused (401 `token-expired`). The grant must be used within 30 seconds, and before your "
        "token's `exp` if that comes sooner, once: fetch the stream with `Authorization: Bearer <grant>`. "
        "In a browser: `const r = await fetch(base + v.stream, {headers: {Authorization: `Bearer ${v.grant}`}})`; "
        "then a `MediaSource`, `addSourceBuffer(r.headers.get('Content-Type'))`, and each chunk of "
        "`r.body.getReader()` appended to it in turn."
    ),
)
async def create_viewing(body: ViewingCreate, principal: LiveViewer) -> Any:
    role = next(r for r in ("investigator", "supervisor", "cad") if principal.has(r))
    # shared/auth requires `exp` and has checked it is a number of seconds since the epoch.
    token_expires_at = datetime.fromtimestamp(float(principal.claims["exp"]), UTC)
    try:
        viewing, grant = await hub.grant(
            principal.agency or "", principal.sub, role, body.camera_id, token_expires_at, principal.signed_by
        )
    except Refused as refused:
        raise _problem(refused) from None
    return {
        "id": str(viewing.id),
        "camera_id": str(viewing.camera_id),
        "window_id": str(viewing.window_id),
        "registration_id": str(viewing.registration_id),
        "window_expires_at": viewing.window_expires_at.isoformat().replace("+00:00", "Z"),
        "grant": grant,
        "grant_expires_at": viewing.grant_expires_at.isoformat().replace("+00:00", "Z"),
        "stream": f"/v1/viewings/{viewing.id}/stream",
    }


async def _redeemed(
    viewing_id: uuid.UUID, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(grant_bearer)]
) -> Viewing:
    if creds is None:
        raise Problem(
            401,
            "This operation needs the viewing's grant as a bearer token.",
            headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
        )
    try:
        return hub.redeem(viewing_id, creds.credentials)
    except Refused as refused:
        raise _problem(refused) from None


@router.get(
    "/{viewing_id}/stream",
    summary="The camera's live video, once per grant, until the window ends (fragmented MP4, H.264)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One fragmented MP4 stream: the initialisation segment, then a fragment (starting at "
            "a keyframe) per group of pictures, for as long as the window lasts. The Content-Type names the "
            'codec, e.g. `video/mp4; codecs="avc1.42c01e"`, as `MediaSource.addSourceBuffer` takes it. The '
            "response ends (a normal end of the body) when the window closes or expires, the owner withdraws or "
            "deletes the registration, your agency loses the sharing, or the bearer token that asked for the "
            "viewing reaches its `exp`: within 2 seconds; or when the identity provider's key that signed that "
            "token is withdrawn from its JWKS (within `CANVASS_RELAY_KEY_RECHECK_S` and 2 seconds).",
            "content": {
                MEDIA_TYPE: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(ftyp moov, then moof mdat, moof mdat, ...)",
                }
            },
            "headers": {
                "Content-Type": {
                    "description": "`video/mp4` with the stream's codec, for `MediaSource.addSourceBuffer`",
                    "schema": {"type": "string"},
                    "example": 'video/mp4; codecs="avc1.42c01e"',
                }
            },
        },
        **problem_responses(401, 403, 409, 429, 503, 504),
    },
    description=(
        "A grant used already, expired or whose window has ended is a 403 problem (`grant-used`, "
        "`grant-expired`, `window-ended`): ask for a new viewing (POST /v1/viewings), which registry_api "
        "decides again. A viewing lasts no longer than the agency bearer token that asked for it: when that "
        "token's `exp` passes, the stream ends (within 2 seconds, audited as `ended_by` `token-expired`; a "
        "viewer whose token expires before its video starts gets a 403 `token-expired`) even though the window "
        "is still open; to keep watching, ask for a new viewing with a renewed token. It ends too (`ended_by` "
        "`key-withdrawn`) once the key that signed that token is gone from the identity provider's JWKS. The start and the end of each viewing (agency, user, camera, window, start, end, bytes) "
        "are in the audit trail."
    ),
)
async def stream(viewing: Annotated[Viewing, Depends(_redeemed)]) -> StreamingResponse:
    try:
        viewer, feed = await hub.join(viewing)
    except Refused as refused:
        viewing.watching = False
        viewing.ended = viewing.ended or refused.kind or "refused"
        raise _problem(refused) from None
    codecs = _codecs(feed.init or b"")
    media_type = f'{MEDIA_TYPE}; codecs="{codecs}"' if codecs else MEDIA_TYPE
    return StreamingResponse(_body(viewer), media_type=media_type, headers=NO_STORE)


async def _body(viewer: Viewer) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await viewer.queue.get()
            if chunk is None:
                return
            viewer.bytes_sent += len(chunk)
            yield chunk
    finally:
        # The viewer may have gone (its connection closed, this generator cancelled): the end is recorded
        # in a task of its own, which the cancellation does not reach.
        hub_task = asyncio.ensure_future(hub.leave(viewer))
        _pending.add(hub_task)
        hub_task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()


OWNER_LIMIT = 500


@owner_router.get(
    "/viewings",
    summary="Every viewing of your registration's cameras: which agency, when, how long (owner credential)",
    response_model=list[OwnerViewing],
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": [
                        {
                            "viewing_id": VIEWING_EXAMPLE["id"],
                            "agency": "milwaukee-pd",
                            "camera_id": VIEWING_EXAMPLE["camera_id"],
                            "window_id": VIEWING_EXAMPLE["window_id"],
                            "started_at": "2026-11-21T15:02:10Z",
                            "ended_at": "2026-11-21T15:09:41Z",
                            "seconds": 451.2,
                            "bytes": 18234112,
                            "ended_by": "window-ended",
                        }
                    ]
                }
            }
        },
        **problem_responses(401, 503),
    },
    description=(
        f"Newest first, at most {OWNER_LIMIT}, from the audit trail; one still going has no `ended_at`. The "
        "agency's user is not named (the agency answers for its staff). The credential is checked by "
        "registry_api, which alone holds it."
    ),
)
async def owner_viewings(registration_id: uuid.UUID, owner: CurrentOwner) -> Any:
    cameras = await _owner_cameras(registration_id, owner)
    rows = await db.viewings_of([str(c) for c in cameras], OWNER_LIMIT)
    return [
        {
            "viewing_id": r["viewing_id"],
            "agency": r["agency"],
            "camera_id": r["camera_id"],
            "window_id": r["window_id"],
            "started_at": r["started_at"],
            "ended_at": r["ended_at"],
            "seconds": r["seconds"],
            "bytes": r["bytes"],
            "ended_by": r["ended_by"],
        }
        for r in rows
    ]


async def _owner_cameras(registration_id: uuid.UUID, owner: OwnerCredential) -> list[uuid.UUID]:
    """The registration's cameras, once registry_api has accepted the owner's credential for it (else 401)."""
    unauthorized = Problem(
        401,
        "The management credential is not valid for this registration.",
        headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
    )
    if owner.registration_id != registration_id:
        raise unauthorized
    try:
        cameras = await registry.owner_cameras(registration_id, format_owner_credential(owner))
    except registry.Unreachable as exc:
        raise Problem(503, f"Cannot check the credential now ({exc}).", kind="unavailable") from exc
    if cameras is None:
        raise unauthorized
    return cameras


@owner_router.get(
    "/edge-agent",
    summary="Whether your edge agent is connected to Canvass now, and what it streams (owner credential)",
    response_model=AgentPresence,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "online": True,
                        "agent_id": "2b7f1f0f-7a11-4e3c-9d52-4a519c1e3f0e",
                        "connected_at": "2026-11-21T15:00:02Z",
                        "cameras": [VIEWING_EXAMPLE["camera_id"]],
                        "streaming": [],
                    }
                }
            }
        },
        **problem_responses(401, 503),
    },
)
async def agent_presence(registration_id: uuid.UUID, owner: CurrentOwner) -> Any:
    await _owner_cameras(registration_id, owner)
    link = hub.agents.get(registration_id)
    if link is None:
        return {"online": False}
    return {
        "online": True,
        "agent_id": str(link.id),
        "connected_at": link.connected_at,
        "cameras": sorted(str(c) for c in link.cameras),
        "streaming": sorted(str(c) for c, f in hub.feeds.items() if f.agent is link),
    }


def _codecs(init: bytes) -> str | None:
    """The `avc1.PPCCLL` codec string of the initialisation segment's H.264 configuration (its avcC box)."""
    at = init.find(b"avcC")
    if at < 0 or len(init) < at + 8:
        return None
    profile, compat, level = init[at + 5], init[at + 6], init[at + 7]
    return f"avc1.{profile:02x}{compat:02x}{level:02x}"


# --- the edge agent's connection -------------------------------------------------------------------------

# A registration holds at most 50 cameras (registry_api's rule): an agent's hello names no more, and its text (each id
# 36 characters, quoted, with a comma) fits well within 8 KB. A longer one is refused before it is parsed, so an agent
# credential cannot make the relay hold a set of a million ids per connection.
MAX_AGENT_CAMERAS = 50
MAX_HELLO_CHARS = 8_192


async def agent_socket(ws: WebSocket) -> None:
    """`GET /v1/edge-agents/connect` (a WebSocket): the owner's edge agent, its credential as the bearer, which
    registry_api must recognise. Text messages are JSON: the agent's `{"type": "hello", "cameras": [ids]}` first,
    then the relay's `{"type": "start"|"stop", "camera_id": id}` and the agent's `{"type": "started", "camera_id":
    id}` just before a new run of FFmpeg; binary messages are media (the camera's id in 16 bytes, then the
    bytes)."""
    scheme, _, credential = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        await ws.close(code=1008)
        return
    try:
        identity = await registry.agent_identity(credential)
    except registry.Unreachable:
        await ws.close(code=1013)
        return
    if identity is None:
        await ws.close(code=1008)
        return
    await ws.accept()
    try:
        text = await asyncio.wait_for(ws.receive_text(), timeout=10)
        if len(text) > MAX_HELLO_CHARS:
            raise ValueError("a hello longer than any registration's cameras need")
        hello = json.loads(text)
        if hello.get("type") != "hello" or not isinstance(hello["cameras"], list):
            raise ValueError("not a hello")
        if len(hello["cameras"]) > MAX_AGENT_CAMERAS:
            raise ValueError("more cameras than a registration holds")
        cameras = frozenset(uuid.UUID(c) for c in hello["cameras"])
    except (TimeoutError, ValueError, KeyError, TypeError, AttributeError, WebSocketDisconnect):
        # AttributeError: a camera id that is not a string (uuid.UUID reads a number as a hex string)
        await ws.close(code=1008)
        return
    link = AgentLink(identity.agent_id, identity.registration_id, cameras, ws.send_text)
    hub.attach(link)
    watch = asyncio.create_task(_still_valid(ws, credential))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None and len(data) > CAMERA_ID_BYTES:
                hub.media(link, uuid.UUID(bytes=data[:CAMERA_ID_BYTES]), data[CAMERA_ID_BYTES:])
            elif message.get("text"):
                _agent_says(link, message["text"])
    except WebSocketDisconnect:
        return
    finally:
        watch.cancel()
        hub.detach(link)


def _agent_says(link: AgentLink, text: str) -> None:
    try:
        said = json.loads(text)
        kind, camera_id = said["type"], uuid.UUID(said["camera_id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return  # nothing the relay acts on
    if kind == "started":
        hub.started(link, camera_id)


async def _still_valid(ws: WebSocket, credential: str) -> None:
    """The agent's credential asked about again now and then: a revoked agent is disconnected."""
    while True:
        await asyncio.sleep(config().agent_recheck_s)
        try:
            if await registry.agent_identity(credential) is None:
                await ws.close(code=1008)
                return
        except registry.Unreachable:
            continue
