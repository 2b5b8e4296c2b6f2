"""community_api's application: anonymous tips to an agency, its tip inbox, and opt-in area alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.community_api import alerts, housekeeping, inbox, policy, sms, tips
from services.community_api.config import config
from services.community_api.database import db
from shared.app import create_app
from shared.auth import AGENCY_EXISTS_SQL
from shared.db import pooled


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.open()
    tasks = housekeeping.start()
    yield
    await housekeeping.stop(tasks)
    await sms.close_client()
    await db.close()


async def agency_known(slug: str) -> bool:
    async with pooled(await db.pool()) as conn:
        return bool(await conn.fetchval(AGENCY_EXISTS_SQL, slug))


app = create_app(
    service="community_api",
    title="Canvass community API",
    description=(
        "Residents send an agency anonymous tips with photos, video or audio (metadata removed before storing) "
        "and follow them up with a tip code; the agency triages and answers them in its inbox. Residents "
        "subscribe to the agency's alerts for an area they choose."
    ),
    lifespan=lifespan,
    agency_known=agency_known,
    db_revision=db.revision,
    routers=[
        tips.router,
        inbox.router,
        policy.router,
        alerts.subscriptions,
        alerts.inbound,
        alerts.staff,
        alerts.public,
    ],
    tags=[
        {"name": "tips", "description": "Anonymous tips and the tipster's follow-up with the tip code"},
        {
            "name": "inbox",
            "description": "The agency's tip inbox: triage, replies, legal hold; every view audited",
        },
        {"name": "policy", "description": "An agency's limits for tips and subscriptions"},
        {
            "name": "subscriptions",
            "description": "Opt-in alert subscriptions: double opt-in, manage, unsubscribe, STOP",
        },
        {
            "name": "alerts",
            "description": "Alerts sent by the agency's supervisors, delivery counts, public pages",
        },
    ],
    # Tips stream their media to the parser's spool files; the ceiling is the deployment's plus the form's framing.
    body_limits={tips.UPLOAD_PREFIX: config().media_ceiling_bytes + 1024 * 1024},
)
