"""geo_query's database: a read-only asyncpg pool (replica-ready) and a pool on the primary for audit.

The read pool's sessions are read-only (`default_transaction_read_only`) and, locally, log in as `canvass_geo`,
which holds SELECT on the registry and nothing else. Audit records go through the audit pool (the primary), in
group commits (see audit_log.py).
"""

from __future__ import annotations

import asyncpg

from services.geo_query.audit_log import audit_log
from shared.db import make_pool
from shared.settings import get_settings


class Database:
    read: asyncpg.Pool
    audit: asyncpg.Pool
    # A page and its audit record in one statement on the audit pool (service.fetch_page), where that pool's
    # database also holds the registry: unless the trail was moved to its own (AUDIT_DATABASE_URL).
    one_statement: bool = False

    async def open(self) -> None:
        settings = get_settings()
        # Neither pool changes session state (polygon plans use SET LOCAL inside a transaction; the audit append
        # is one statement): no reset query on release.
        self.read = await make_pool(
            settings.database_url_for("geo_query"), settings, "geo_query", read_only=True, session_state=False
        )
        self.audit = await make_pool(settings.audit_url, settings, "geo_query-audit", session_state=False)
        audit_log.open(self.audit)
        self.one_statement = settings.audit_database_url is None

    async def close(self) -> None:
        await audit_log.close()
        await self.read.close()
        await self.audit.close()


db = Database()
