"""Group commit for geo_query's audit records.

Every query must be on the audit trail before its answer leaves (fail closed), but `audit.append_event` extends
one hash chain under a row lock and each commit waits for the WAL to reach the disk: one record per transaction
caps the whole service at a few hundred searches a second under load. So concurrent requests share
transactions: each request queues its record and waits; one writer appends everything queued in a single
transaction (one lock, one WAL flush) and then releases all of them. With one client this is exactly one append
per query; with many, the cost of the chain is shared. A batch the database refuses is appended again record by
record, so a record that cannot be written fails its own search and no other.

When nothing else is being appended, a search may instead append its record in its own statement with the page
(`alone`, used by service.fetch_page): one round trip instead of two, at the cost of a transaction of its own,
which is what one search alone gets from the group commit anyway. Under load the records go through the group
commit: one statement per search would hold the chain's lock through a WAL flush each, one search after another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from shared.audit import APPEND_SQL, AuditEvent
from shared.db import pooled

log = logging.getLogger("canvass.geo_query.audit")

MAX_BATCH = 256
# A statement the database (or the driver, encoding it) refused for what it carries, as opposed to a connection
# lost or out of reach: worth appending the batch's records one by one.
REFUSED = (asyncpg.PostgresError, ValueError, TypeError)
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
        self._alone = 0  # searches appending their record in their own statement, now

    def open(self, pool: Any) -> None:
        self.pool = pool

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """Whether the search may append its record in its own statement: nothing else is being appended now (no
        batch queued or being written, no other search's own statement). Held while that statement runs."""
        alone = not self._alone and not self._pending and (self._writer is None or self._writer.done())
        if alone:
            self._alone += 1
        try:
            yield alone
        finally:
            if alone:
                self._alone -= 1

    async def append(self, event: AuditEvent) -> None:
        """Returns once the record is committed; raises what the database raised if it could not be."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Not shielded: a search cancelled while it waits cancels only its own future, which the writer then
        # leaves alone (`_done`, `_fail`); its record stays in the batch and is appended all the same.
        await fut

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._append([e for e, _ in batch])
            except REFUSED as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                    continue
                # The batch is one statement, so nothing of it was written. One record the database refuses must
                # fail its own search only, never the others queued with it: each is appended on its own, in
                # order, and only the records that fail again fail their searches.
                for event, fut in batch:
                    try:
                        await self._append([event])
                    except Exception as one:
                        _fail([(event, fut)], one)
                    else:
                        _done(fut)
                continue
            except Exception as exc:  # the database is out of reach: every waiter learns it
                _fail(batch, exc)
                continue
            for _, fut in batch:
                _done(fut)

    async def _append(self, events: list[AuditEvent]) -> None:
        async with pooled(self.pool) as conn:
            if len(events) == 1:
                await conn.fetchval(APPEND_SQL, *events[0].params())
            else:
                columns = [list(c) for c in zip(*(e.params() for e in events), strict=True)]
                await conn.execute(APPEND_MANY_SQL, *columns)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


def _fail(waiters: list[tuple[AuditEvent, asyncio.Future[None]]], exc: BaseException) -> None:
    """Each of these searches learns its record was not written."""
    for _, fut in waiters:
        if not fut.done():
            fut.set_exception(exc)


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


audit_log = AuditLog()
