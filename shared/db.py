"""Database access: SQLAlchemy 2 async engines on asyncpg, and plain asyncpg pools for the hot read paths.

Every connection gets a `statement_timeout`, so a query never outlives the HTTP request that asked for it,
and an `application_name` naming the service. Read-only connections (geo_query) also set
`default_transaction_read_only`, so they cannot write even when pointed at the primary.

Behind a pooler in transaction mode (`CANVASS_DATABASE_POOLER=transaction`, PgBouncer), consecutive
transactions of one client connection run on different server connections, so:
- no prepared statement outlives its statement: asyncpg's statement cache is off (it then re-parses the unnamed
  statement in the same round trip as its execution), and SQLAlchemy's prepares unnamed statements, never cached.
  PgBouncer's own prepared-statement support (`max_prepared_statements`) needs 1.21; Debian's is 1.18, and this
  works with any pooler;
- a client sends as start-up parameters only those PgBouncer sets again on whichever server connection it hands
  out (`application_name`, `TimeZone`). `statement_timeout` and `default_transaction_read_only` are the pooler's
  database entries' to set (`connect_query`), since a session-level SET would leak to other clients;
- an asyncpg pool never sends its reset query (`RESET ALL` would reset those settings on a server connection that
  other clients use next).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import asyncpg.transaction
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from shared.settings import ServiceName, Settings, get_settings


class Base(DeclarativeBase):
    """The declarative base of every table: one metadata for the one database."""


def asyncpg_dsn(url: str) -> str:
    """A libpq/asyncpg URL from any of the spellings people use."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def sqlalchemy_url(url: str) -> str:
    return "postgresql+asyncpg://" + asyncpg_dsn(url).removeprefix("postgresql://")


# The start-up parameters PgBouncer tracks per client and applies to each server connection it hands out.
POOLER_CARRIED = frozenset({"application_name", "timezone"})


def server_settings(
    settings: Settings, service: str, *, read_only: bool = False, statement_timeout_ms: int | None = None
) -> dict[str, str]:
    """The session settings of a service's connections (`statement_timeout_ms` overrides the setting's; 0: none)."""
    timeout = settings.statement_timeout_ms if statement_timeout_ms is None else statement_timeout_ms
    out = {
        "application_name": f"canvass-{service}",
        "statement_timeout": str(timeout),
        "timezone": "UTC",
    }
    if read_only:
        out["default_transaction_read_only"] = "on"
    return pooler_carried(settings, out)


def pooler_carried(settings: Settings, session: dict[str, str]) -> dict[str, str]:
    """The session settings a connection may ask for at start-up: behind a transaction pooler, only those it
    carries over to every server connection (the others are the pooler's database entry's to set)."""
    if settings.database_pooler == "transaction":
        return {k: v for k, v in session.items() if k in POOLER_CARRIED}
    return session


def _unnamed() -> str:
    return ""


class _LocalSettingsTransaction(asyncpg.transaction.Transaction):
    """A transaction that starts by setting, for itself only (SET LOCAL), the session settings of its pool that
    the pooler does not carry."""

    async def start(self) -> None:
        outermost = not self._connection.is_in_transaction()
        await super().start()
        if outermost:
            local = type(self._connection).local_settings
            await self._connection.execute("; ".join(f"SET LOCAL {k} = '{v}'" for k, v in local.items()))


def _local_settings_connection(local: dict[str, str]) -> type[asyncpg.Connection]:
    class Connection(asyncpg.Connection):
        local_settings = dict(local)

        def transaction(
            self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
        ) -> asyncpg.transaction.Transaction:
            self._check_open()
            return _LocalSettingsTransaction(self, isolation, readonly, deferrable)

    return Connection


def pooler_arguments(
    settings: Settings, *, sqlalchemy: bool = False, session: dict[str, str] | None = None
) -> dict[str, Any]:
    """asyncpg's connection (or pool) arguments for a transaction pooler: none on a direct connection; behind
    one, no prepared statement kept beyond its statement and, for a pool, no reset query (module docstring).
    `session`: a pool's own session settings that differ from the service's (registry_api's imports run without
    a statement timeout); behind a pooler each explicit transaction of the pool sets them for itself (SET LOCAL).
    """
    if settings.database_pooler != "transaction":
        return {}
    if sqlalchemy:
        return {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unnamed,
        }
    own: dict[str, Any] = {"statement_cache_size": 0, "reset": _keep_session}
    if session:
        own["connection_class"] = _local_settings_connection(session)
    return own


def make_engine(url: str, settings: Settings, service: str, *, read_only: bool = False) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url),
        # A pool as large as the concurrency it serves: overflow connections are opened and closed per burst,
        # and opening one (TLS probe, auth, type introspection) costs more than the query. No pre-ping: it is a
        # round trip per checkout; a connection found dead fails its request with 503 and the pool is
        # invalidated, so the next request reconnects.
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size // 2,
        pool_pre_ping=False,
        pool_timeout=5,
        connect_args={
            "server_settings": server_settings(settings, service, read_only=read_only),
            "timeout": 5,
            "command_timeout": settings.statement_timeout_ms / 1000 + 5,
            **pooler_arguments(settings, sqlalchemy=True),
        },
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without the reset query: asyncpg still rolls back a transaction left open, and nothing else of
    the session changes in pools opened with `session_state=False`. Use them through `pooled`: without the reset
    query, nothing else would notice a connection left mid-protocol by a failure of the connection itself."""


# Failures of the connection rather than of a statement: the server went away or the protocol broke off.
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.InterfaceError,  # ConnectionDoesNotExistError among them
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # the server shutting down
)


class pooled:  # a lower-case name: used as `async with pooled(pool) as conn`, as the function it replaced
    """A connection of `pool`, closed instead of reused when an operation on it failed with the connection itself.

    When PostgreSQL stops, it tells every connection it is terminating; one that was idle in the pool is then
    mid-protocol until asyncpg sees the socket close, and its next statement fails with "another operation is in
    progress" (a 503: see shared/errors.py). Closing it there keeps the pool from handing it out again, and a
    connection an operation failed on is not trusted with another either.

    A class rather than a generator-based context manager: every search takes one or two of these, and a
    generator's context manager costs about as much again as the pool's own acquire and release."""

    __slots__ = ("_acquire", "_conn")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._acquire = pool.acquire()
        self._conn: Any = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await self._acquire.__aenter__()
        return self._conn

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, CONNECTION_FAILURES):
            self._conn.terminate()
        await self._acquire.__aexit__(exc_type, exc, tb)


async def make_pool(
    url: str,
    settings: Settings,
    service: str,
    *,
    read_only: bool = False,
    session_state: bool = True,
    extra_settings: dict[str, str] | None = None,
) -> asyncpg.Pool:
    """An asyncpg pool. `session_state=False` promises that the pool's users never change session state (no
    session-level SET, LISTEN, advisory lock or WITH HOLD cursor; SET LOCAL and transaction-scoped settings are
    fine): connections then go back to the pool without asyncpg's reset query, a round trip per query saved.
    `extra_settings` are further session settings of its connections."""

    async def _init(conn: asyncpg.Connection) -> None:
        # Geometry and JSON come back as text, passed through without parsing.
        await conn.set_type_codec("json", encoder=str, decoder=str, schema="pg_catalog")
        await conn.set_type_codec("jsonb", encoder=str, decoder=str, schema="pg_catalog")

    pool = await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=min(settings.pool_min_size, settings.pool_size),
        max_size=settings.pool_size,
        server_settings=pooler_carried(
            settings, {**server_settings(settings, service, read_only=read_only), **(extra_settings or {})}
        ),
        init=_init,
        timeout=5,
        command_timeout=settings.statement_timeout_ms / 1000 + 5,
        **({"reset": None if session_state else _keep_session} | pooler_arguments(settings)),
    )
    assert pool is not None
    return pool


class SqlDatabase:
    """One service's SQLAlchemy engine and session factory, opened in the app's lifespan; and, for the few hot
    paths that send their own SQL, a plain asyncpg pool on the same connection string, opened on first use."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    def __init__(self, service: ServiceName, *, pool_settings: dict[str, str] | None = None) -> None:
        self.service: ServiceName = service
        self.pool_settings = pool_settings or {}
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    def open(self) -> None:
        settings = get_settings()
        self.engine = make_engine(settings.database_url_for(self.service), settings, self.service)
        self.sessions = session_factory(self.engine)

    async def pool(self) -> asyncpg.Pool:
        """The asyncpg pool (the same role, settings and statement timeout as the engine's connections, and the
        `pool_settings` given). Its users promise not to change session state, so connections go back without
        asyncpg's reset query."""
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    settings = get_settings()
                    self._pool = await make_pool(
                        settings.database_url_for(self.service),
                        settings,
                        self.service,
                        session_state=False,
                        extra_settings=self.pool_settings,
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()

    async def revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM public.alembic_version"))).scalar()

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session
