"""registry_api's application: owners' registrations, cameras, agencies and sharing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.registry_api import (
    agencies,
    agency_access,
    credentials,
    deletions,
    edge_agents,
    live,
    live_viewings,
    notifications,
    oversight,
    registrations,
)
from services.registry_api.database import db
from services.registry_api.housekeeping import housekeeping
from services.registry_api.imports import routes as imports
from services.registry_api.imports.runner import runner
from shared.app import create_app
from shared.auth import AGENCY_EXISTS_SQL
from shared.db import pooled
from shared.keystore import close_keystore, open_keystore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.open()
    await open_keystore("registry_api")
    await runner.start()
    housekeeping.start(db.sessions)
    yield
    await housekeeping.stop()
    await runner.stop()
    await close_keystore()
    await db.close()


async def agency_known(slug: str) -> bool:
    async with pooled(await db.pool()) as conn:
        return bool(await conn.fetchval(AGENCY_EXISTS_SQL, slug))


app = create_app(
    service="registry_api",
    title="Canvass registry API",
    description=(
        "Camera owners register where their cameras are, manage, pause, share and delete their registration; "
        "agencies publish their programs and jurisdictions. Registration gives no agency access to any camera."
    ),
    lifespan=lifespan,
    agency_known=agency_known,
    db_revision=db.revision,
    routers=[
        agencies.router,
        registrations.router,
        credentials.router,
        live.owner_router,
        edge_agents.owner_router,
        live_viewings.router,
        edge_agents.agent_router,
        # Before the agency's router: `/v1/live-windows/check` is not a window's id.
        edge_agents.service_router,
        live.agency_router,
        agency_access.router,
        notifications.router,
        deletions.router,
        imports.router,
        oversight.router,
    ],
    body_limits={"/v1/imports": imports.MAX_UPLOAD_BYTES},
    tags=[
        {"name": "agencies", "description": "Agencies' programs: jurisdiction and request policy"},
        {
            "name": "registrations",
            "description": "Register cameras in one call; owners manage their registration with its credential",
        },
        {
            "name": "credentials",
            "description": "Rotate a management credential, or re-issue a lost one by email",
        },
        {
            "name": "live sharing",
            "description": "Level 2: owner-opened, time-limited windows in which chosen agencies see live streams",
        },
        {
            "name": "agency access",
            "description": "Audited agency reads of owners' contact details; re-confirmation outreach",
        },
        {
            "name": "imports",
            "description": "Integrators' bulk imports: GeoJSON, GeoJSON Text Sequences and CSV, as jobs",
        },
        {
            "name": "oversight",
            "description": "Auditors search and export the audit trail; owners see which agencies accessed them",
        },
    ],
)
