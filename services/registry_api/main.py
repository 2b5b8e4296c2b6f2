"""registry_api's application: owners' registrations, cameras, agencies and sharing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.registry_api.database import db
from shared.app import create_app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.open()
    yield
    await db.close()


app = create_app(
    service="registry_api",
    title="Canvass registry API",
    description=(
        "Camera owners register where their cameras are, manage, pause, share and delete their registration; "
        "agencies publish their programs and jurisdictions. Registration gives no agency access to any camera."
    ),
    lifespan=lifespan,
    db_revision=db.revision,
    routers=[],
    tags=[],
)
