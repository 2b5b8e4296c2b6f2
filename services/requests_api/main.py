"""requests_api's application: footage requests, owners' answers, evidence and transparency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.requests_api.database import db
from shared.app import create_app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.open()
    yield
    await db.close()


app = create_app(
    service="requests_api",
    title="Canvass requests API",
    description=(
        "Investigators ask camera owners for footage of an incident, tied to a case, an area and a time window; "
        "owners accept, upload or decline silently; evidence keeps its hash and chain of custody."
    ),
    lifespan=lifespan,
    db_revision=db.revision,
    routers=[],
    tags=[],
)
