"""geo_query's own SQL, for the raw driver: each bench request is sent once to geo_query's application in this
process (httpx's ASGI transport, against the bench database) with its read pool wrapped in a recorder, and the
camera statements it ran (text and parameters) are kept. The raw driver replays exactly those, so "raw" is the
same SQL geo_query runs, whatever its routes build — no copy of its query builder to drift out of date.

Only statements that read `registry.cameras` are kept: the agency look-up is cached by the service, and the audit
record goes through the other pool (it is part of geo_query's cost, not of the query's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx

from bench.http import HttpRequest


@dataclass(frozen=True)
class Statement:
    method: str  # fetch | fetchrow | fetchval | execute | cursor
    sql: str
    args: tuple[Any, ...]


# The statements of the request being served in this task: captures run concurrently, each in its own task.
current_statements: ContextVar[list[Statement] | None] = ContextVar("bench_capture", default=None)


class StatementLog:
    def add(self, method: str, sql: str, args: tuple[Any, ...]) -> None:
        statements = current_statements.get()
        # A search's statements, and the transaction-local settings they are planned under (SET LOCAL
        # plan_cache_mode: without it a prepared statement run again gets a generic plan geo_query never uses).
        if statements is not None and ("registry.cameras" in sql or sql.startswith("SET LOCAL ")):
            statements.append(Statement(method, sql, args))


class _RecordingConnection:
    def __init__(self, conn: Any, log: StatementLog) -> None:
        self._conn = conn
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, sql: str, *args: Any, **kw: Any) -> Any:
        self._log.add("fetch", sql, args)
        return await self._conn.fetch(sql, *args, **kw)

    async def fetchrow(self, sql: str, *args: Any, **kw: Any) -> Any:
        self._log.add("fetchrow", sql, args)
        return await self._conn.fetchrow(sql, *args, **kw)

    async def fetchval(self, sql: str, *args: Any, **kw: Any) -> Any:
        self._log.add("fetchval", sql, args)
        return await self._conn.fetchval(sql, *args, **kw)

    async def execute(self, sql: str, *args: Any, **kw: Any) -> Any:
        self._log.add("execute", sql, args)
        return await self._conn.execute(sql, *args, **kw)

    def cursor(self, sql: str, *args: Any, **kw: Any) -> Any:
        self._log.add("cursor", sql, args)
        return self._conn.cursor(sql, *args, **kw)


class _RecordingPool(_RecordingConnection):
    def acquire(self, *args: Any, **kw: Any) -> Any:
        pool, log = self._conn, self._log

        @asynccontextmanager
        async def _acquire() -> AsyncIterator[_RecordingConnection]:
            async with pool.acquire(*args, **kw) as conn:
                yield _RecordingConnection(conn, log)

        return _acquire()


class GeoQueryInProcess:
    """geo_query's app served in this process, for capturing the SQL of each request."""

    def __init__(self) -> None:
        from services.geo_query.database import db  # the service's one pool holder
        from services.geo_query.main import app

        self.app = app
        self.db = db
        self.log = StatementLog()
        self._lifespan: Any = None
        self.one_statement = False
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> GeoQueryInProcess:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.db.read = _RecordingPool(self.db.read, self.log)
        # Where both pools reach one database, a search alone reads its page on the audit pool, in the statement
        # that appends its record: captured here, the page is read on the read pool (its own statement), the
        # query the raw driver replays; the geo_query cells measure the service as it runs.
        self.one_statement, self.db.one_statement = self.db.one_statement, False
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://geo-query.bench", timeout=30
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await self.client.aclose()
        if isinstance(self.db.read, _RecordingPool):
            self.db.read = self.db.read._conn
        self.db.one_statement = self.one_statement
        await self._lifespan.__aexit__(*exc)

    async def openapi(self) -> dict[str, Any]:
        assert self.client is not None
        return (await self.client.get("/openapi.json")).json()  # type: ignore[no-any-return]

    async def capture(
        self, request: HttpRequest, headers: dict[str, str]
    ) -> tuple[int, list[Statement], str]:
        """Send one request; its status, the camera statements it ran, and (on failure) the start of its body."""
        assert self.client is not None
        statements: list[Statement] = []
        token = current_statements.set(statements)
        try:
            h = dict(headers)
            if request.body is not None:
                h["Content-Type"] = "application/json"
            r = await self.client.request(request.method, request.path, content=request.body, headers=h)
        finally:
            current_statements.reset(token)
        return r.status_code, statements, "" if r.status_code == 200 else r.text[:300]

    async def capture_all(
        self, requests: list[HttpRequest], headers: dict[str, str], concurrency: int = 4
    ) -> tuple[list[list[Statement]], str]:
        """Every request's statements, in order; or the first failure (status and body, or no camera SQL)."""
        out: list[list[Statement]] = []
        for i in range(0, len(requests), concurrency):
            batch = await asyncio.gather(*(self.capture(r, headers) for r in requests[i : i + concurrency]))
            for status, stmts, body in batch:
                if status != 200:
                    return out, f"HTTP {status} {body[:160]}"
                if not stmts:
                    return out, "no camera SQL seen"
                out.append(stmts)
        return out, ""
