"""live_relay's application: live video from an owner's edge agent to an agency's viewers, only while registry_api
says a window open to the agency includes the camera (decisions 0010 and 0011)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from services.live_relay import registry, routes
from services.live_relay.config import config
from services.live_relay.database import db
from services.live_relay.hub import hub
from shared.app import create_app
from shared.auth import AGENCY_EXISTS_SQL
from shared.db import pooled


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    config()  # a malformed setting stops the relay here
    await db.open()
    hub.start(db.append)
    yield
    await hub.stop()
    await registry.close_client()
    await db.close()


async def db_revision() -> str | None:
    async with pooled(db.pool) as conn:
        return await conn.fetchval("SELECT version_num FROM public.alembic_version")  # type: ignore[no-any-return]


async def agency_known(slug: str) -> bool:
    async with pooled(db.pool) as conn:
        return bool(await conn.fetchval(AGENCY_EXISTS_SQL, slug))


app = create_app(
    service="live_relay",
    title="Canvass live relay",
    description=(
        "Live video of a camera, from the owner's edge agent to an agency's viewer, only while a live window "
        "open to the agency includes the camera (registry_api decides, asked again every half second). An "
        "agency user asks for a viewing (POST /v1/viewings) and fetches its stream once with the grant; the "
        "video is H.264 in fragmented MP4, for Media Source Extensions. The owner's edge agent connects to "
        f"`{routes.AGENT_PATH}` (a WebSocket, its credential as the bearer): see services/live_relay/README.md."
    ),
    lifespan=lifespan,
    agency_known=agency_known,
    db_revision=db_revision,
    routers=[routes.router, routes.owner_router],
    tags=[
        {"name": routes.TAG, "description": "Viewings of a camera in an open live window, and their video"},
    ],
)
# Not an operation of the HTTP contract (a WebSocket, and the agent's alone): outside FastAPI's routes and their
# dependencies, which read HTTP requests.
app.router.routes.append(WebSocketRoute(routes.AGENT_PATH, routes.agent_socket))
