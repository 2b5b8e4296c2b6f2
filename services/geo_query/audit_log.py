"""Group commit for geo_query's audit records.

Every query must be on the audit trail before its answer leaves (fail closed), but `audit.append_event` extends
one hash chain under a row lock and each commit waits for the WAL to reach the disk: one record per transaction
caps the whole service at a few hundred searches a second under load. So concurrent requests share
transactions: each request queues its record and waits; one writer appends everything queued in a single
transaction (one lock, one WAL flush) and then releases all of them. With one client this is exactly one append
per query; with many, the cost of the chain is shared.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shared.audit import APPEND_SQL, AuditEvent
from shared.db import pooled

log = logging.getLogger("canvass.geo_query.audit")

MAX_BATCH = 256
# One statement appends a whole batch, in order, under one lock of the chain's head: one round trip, one
# transaction, one WAL flush (see migration 0006).
APPEND_MANY_SQL = (
    "SELECT audit.append_events($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::text[], $9::text[], $10::jsonb[])"
)


class AuditLog:
    def __init__(self) -> None:
        self.pool: Any = None
        self._pending: list[tuple[AuditEvent, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def open(self, pool: Any) -> None:
        self.pool = pool

    async def append(self, event: AuditEvent) -> None:
        """Returns once the record is committed; raises what the database raised if it could not be."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await asyncio.shield(fut)

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with pooled(self.pool) as conn:
                    if len(batch) == 1:
                        await conn.fetchval(APPEND_SQL, *batch[0][0].params())
                    else:
                        columns = [list(c) for c in zip(*(e.params() for e, _ in batch), strict=True)]
                        await conn.execute(APPEND_MANY_SQL, *columns)
            except Exception as exc:  # every waiter of the batch learns its record was not written
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


audit_log = AuditLog()
