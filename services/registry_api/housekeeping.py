"""registry_api's periodic housekeeping, in each instance, every EVERY_S: owner notices still due are delivered
(notices) and guess counts whose window has ended are deleted (abuse). Each job is safe to run in several
instances at once."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry_api import abuse, notices

EVERY_S = 30.0
JOBS = (notices.deliver_quietly, abuse.sweep_quietly)


class Housekeeping:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._task = asyncio.create_task(self._run(sessions))

    async def _run(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        while True:
            for job in JOBS:
                await job(sessions)  # each logs and swallows its own failures
            await asyncio.sleep(EVERY_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


housekeeping = Housekeeping()
