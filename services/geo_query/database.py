"""geo_query's database: a read-only asyncpg pool (replica-ready) and a pool on the primary for audit.

The read pool's sessions are read-only (`default_transaction_read_only`) and, locally, log in as `canvass_geo`,
which holds SELECT on the registry and nothing else. Audit records go through the audit pool (the primary), in
group commits (see audit_log.py); a search alone, where both pools reach the same database, reads its page on
the audit pool in the statement that appends its record (service.fetch_page).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from services.geo_query.audit_log import audit_log
from shared.db import make_pool
from shared.settings import get_settings


class Database:
    read: asyncpg.Pool
    audit: asyncpg.Pool
    # Whether a search alone may read its page and append its record in one statement on the audit pool
    # (service.fetch_page): only where both pools reach the same database (the roles may differ), so that the page
    # is the one the read pool would give. Reads pointed at a replica, or a trail moved to a database of its own,
    # keep the read pool and the group commit.
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
        self.one_statement = same_database(settings.database_url_for("geo_query"), settings.audit_url)

    async def close(self) -> None:
        await audit_log.close()
        await self.read.close()
        await self.audit.close()


def same_database(a: str, b: str) -> bool:
    """Whether two connection URLs name the same database on the same server (whatever roles they log in as)."""
    ua, ub = urlsplit(a), urlsplit(b)
    return (ua.hostname, ua.port or 5432, ua.path, ua.query) == (
        ub.hostname,
        ub.port or 5432,
        ub.path,
        ub.query,
    )


db = Database()
