"""live_relay's database: a small asyncpg pool on the audit trail's database, for appending viewing records,
knowing which agencies exist (to refuse a token of an unknown one) and readiness. The relay stores nothing else."""

from __future__ import annotations

import asyncpg

from shared.audit import AuditEvent, append_asyncpg
from shared.db import make_pool, pooled
from shared.settings import get_settings


class Database:
    pool: asyncpg.Pool

    async def open(self) -> None:
        settings = get_settings()
        self.pool = await make_pool(settings.audit_url, settings, "live_relay", session_state=False)

    async def close(self) -> None:
        await self.pool.close()

    async def append(self, event: AuditEvent) -> None:
        async with pooled(self.pool) as conn:
            await append_asyncpg(conn, event)


db = Database()
