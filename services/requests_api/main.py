"""requests_api's application: footage requests, owners' answers, evidence and transparency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.requests_api import (
    agency_requests,
    evidence_access,
    owner_requests,
    transparency,
    webhooks,
)
from services.requests_api.config import config
from services.requests_api.database import db
from services.requests_api.upstream import close_client
from shared.app import create_app
from shared.auth import AGENCY_EXISTS_SQL
from shared.db import pooled
from shared.keystore import close_keystore, open_keystore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.open()
    await open_keystore("requests_api")
    yield
    await close_client()
    await close_keystore()
    await db.close()


async def agency_known(slug: str) -> bool:
    async with pooled(await db.pool()) as conn:
        return bool(await conn.fetchval(AGENCY_EXISTS_SQL, slug))


app = create_app(
    service="requests_api",
    title="Canvass requests API",
    description=(
        "Investigators ask camera owners for footage of an incident, tied to a case, an area and a time window; "
        "owners accept, upload or decline silently; evidence keeps its hash and chain of custody."
    ),
    lifespan=lifespan,
    agency_known=agency_known,
    db_revision=db.revision,
    routers=[
        agency_requests.router,
        owner_requests.router,
        evidence_access.router,
        webhooks.router,
        transparency.router,
    ],
    tags=[
        {
            "name": "requests",
            "description": "Footage requests: creation within the agency's caps, approval, lifecycle, history",
        },
        {
            "name": "owners",
            "description": "Owners answer with their management credential: accept and upload, or decline silently",
        },
        {"name": "evidence", "description": "Download with hash verification; the chain of custody"},
        {"name": "webhooks", "description": "An agency's signed webhook for answers"},
        {"name": "transparency", "description": "Public aggregate statistics, no personal data"},
    ],
    # Uploads stream to storage; the ceiling here is the configured evidence cap plus the multipart framing.
    body_limits={owner_requests.UPLOAD_PREFIX: config().evidence_max_bytes + 1024 * 1024},
)
webhooks.document(app)
