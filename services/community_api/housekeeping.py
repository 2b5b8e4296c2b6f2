"""The service's background work, run in its own process beside the routes: the retention sweep of tips (closed
ones and open ones left untouched), of unconfirmed subscriptions past their code's window and of the rate limit's
ended windows (every `housekeeping_s`) and the alerts' outbox (every `outbox_poll_s`). Each pass takes rows with SKIP LOCKED, so several processes of the
service share the work instead of repeating it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

from services.community_api import outbox
from services.community_api.alerts import purge_unconfirmed
from services.community_api.config import config
from services.community_api.database import db
from services.community_api.inbox import purge_expired
from services.community_api.policy import DEFAULTS
from services.community_api.ratelimit import SWEEP_SQL
from shared.db import pooled

log = logging.getLogger("canvass.community.housekeeping")


async def purge_once() -> int:
    async with pooled(await db.pool()) as conn:
        # An ended window's salt and counts go even when no tip starts the next window (ratelimit.py).
        await conn.execute(SWEEP_SQL)
        await purge_unconfirmed(conn)
        return await purge_expired(
            conn, datetime.now(UTC), DEFAULTS.tip_retention_days, config().tip_open_retention_days
        )


async def _every(period_s: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again in %.1f s", name, period_s)
        await asyncio.sleep(period_s)


def start() -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(_every(config().housekeeping_s, purge_once, "retention sweep"))]
    for channel in ("email", "sms"):
        tasks.append(
            asyncio.create_task(
                _every(config().outbox_poll_s, partial(outbox.drain, channel), f"{channel} outbox")
            )
        )
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
