"""geo_query's database: a read-only asyncpg pool (replica-ready) and a pool on the primary for audit."""

from __future__ import annotations

import asyncpg

from shared.db import make_pool
from shared.settings import get_settings


class Database:
    read: asyncpg.Pool
    audit: asyncpg.Pool

    async def open(self) -> None:
        settings = get_settings()
        self.read = await make_pool(
            settings.database_url_for("geo_query"), settings, "geo_query", read_only=True
        )
        self.audit = await make_pool(settings.audit_url, settings, "geo_query-audit")

    async def close(self) -> None:
        await self.read.close()
        await self.audit.close()


db = Database()
