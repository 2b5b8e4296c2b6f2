"""live_relay's database: a small asyncpg pool on the audit trail's database, for appending viewing records and
reading them back for a camera's owner, knowing which agencies exist (to refuse a token of an unknown one) and
readiness. The relay stores nothing else."""

from __future__ import annotations

from typing import Any

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

    async def viewings_of(self, camera_ids: list[str], limit: int) -> list[Any]:
        """The viewing records (start and end) of these cameras, newest first."""
        async with pooled(self.pool) as conn:
            return list(await conn.fetch(VIEWINGS_SQL, camera_ids, limit))


# The relay's own records of the cameras (the index on subject), each viewing's start and end paired.
VIEWINGS_SQL = """
SELECT s.details->>'viewing_id' AS viewing_id, s.agency, s.subject_id AS camera_id,
       s.details->>'window_id' AS window_id, s.at AS started_at,
       e.at AS ended_at, (e.details->>'seconds')::float8 AS seconds, (e.details->>'bytes')::bigint AS bytes,
       e.details->>'ended_by' AS ended_by
FROM audit.events s
LEFT JOIN audit.events e
  ON e.subject_type = 'camera' AND e.subject_id = s.subject_id AND e.service = 'live_relay'
 AND e.action = 'live_viewing.end' AND e.details->>'viewing_id' = s.details->>'viewing_id'
WHERE s.subject_type = 'camera' AND s.subject_id = ANY($1::text[]) AND s.service = 'live_relay'
  AND s.action = 'live_viewing.start'
ORDER BY s.at DESC, s.seq DESC
LIMIT $2
"""


db = Database()
