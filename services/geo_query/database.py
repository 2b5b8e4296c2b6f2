"""geo_query's database: a read-only asyncpg pool (replica-ready) and a pool on the primary for audit.

The read pool's sessions are read-only (`default_transaction_read_only`) and, locally, log in as `canvass_geo`,
which holds SELECT on the registry and nothing else. Audit records go through the audit pool (the primary), in
group commits (see audit_log.py); a search alone, where both pools reach the same database, reads its page on
the audit pool in the statement that appends its record (service.fetch_page).

Pointed at a streaming replica (GEO_QUERY_DATABASE_URL) with the trail on the primary (AUDIT_DATABASE_URL, or
DATABASE_URL), every search reads its page on the replica and appends its record on the primary in two steps, and
/readyz reports the replica's replay lag (`replica_lag`), failing beyond GEO_QUERY_MAX_REPLICA_LAG_S.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from services.geo_query.audit_log import audit_log
from shared.app import ReplicaLag
from shared.db import make_pool, pooled
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


# How far the read database's replay is behind what it has received from the primary, in seconds: none once it
# has replayed everything it received (an idle primary is not lag), else the time since the primary committed
# the last transaction replayed (right after an idle spell, briefly more than the true lag). Unknown (NULL) when
# WAL waits and nothing was replayed since the replica started.
REPLICA_LAG_SQL = """
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0.0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS lag_s
"""


async def replica_lag() -> ReplicaLag:
    """Whether the read pool reaches a replica, and its replay lag (for /readyz)."""
    async with pooled(db.read) as conn:
        row = await conn.fetchrow(REPLICA_LAG_SQL)
    return ReplicaLag(standby=bool(row["standby"]), seconds=row["lag_s"] if row["standby"] else None)


db = Database()
