"""The services' connections behind PgBouncer in transaction mode (Debian's 1.18: no `max_prepared_statements`, so
the services' own setting, `CANVASS_DATABASE_POOLER=transaction`, keeps no prepared statement across statements:
shared/db.py). Each test starts a PgBouncer of its own in front of the run's database (tests/support.py).

The services themselves run through one with `pytest --through-pgbouncer` (tests/conftest.py), which
`make test` does for a subset of the service-level tests (the Makefile's POOLER_TESTS).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import make_engine, make_pool, pooler_arguments, server_settings
from shared.settings import Settings, get_settings
from tests.support import PgBouncer, eventually, pgbouncer, pooler_entries

CLIENTS = 64
SERVER_CONNECTIONS = 10
ROUNDS = 15
LOCK_KEY = 7_220_018  # the advisory lock the test holds to pile the clients up behind the pool


@pytest.fixture
def bouncer(app_database_url: str, geo_database_url: str, keystore_url: str) -> Iterator[PgBouncer]:
    entries, users = pooler_entries(app_database_url, geo_database_url, keystore_url, 5000)
    with pgbouncer(app_database_url, entries, users, pool_size=SERVER_CONNECTIONS) as running:
        yield running


def through(bouncer: PgBouncer, url: str) -> str:
    return bouncer.url(url, url.rsplit("/", 1)[1])


def pooled_settings(**changes: Any) -> Settings:
    return get_settings().model_copy(update={"database_pooler": "transaction", **changes})


def server_connections(bouncer: PgBouncer, database: str) -> tuple[int, int]:
    """(server connections open, clients waiting for one) of the database entry."""
    pools = [p for p in bouncer.show("POOLS") if p["database"] == database]
    servers = sum(
        int(p[k]) for p in pools for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
    )
    return servers, sum(int(p["cl_waiting"]) for p in pools)


def test_64_concurrent_clients_are_held_within_10_server_connections_without_error(
    bouncer: PgBouncer, app_database_url: str, database_url: str
) -> None:
    """Half the clients on an asyncpg pool, half on a SQLAlchemy engine, both as the services open them behind a
    transaction pooler; all connected at once, then piled up behind the 10 server connections (the test holds an
    advisory lock every client's first transaction waits for), then released into rounds of statements."""
    database = app_database_url.rsplit("/", 1)[1]
    url = through(bouncer, app_database_url)
    half = CLIENTS // 2
    settings = pooled_settings(pool_size=half, pool_min_size=half)
    errors: list[BaseException] = []
    peak = {"servers": 0}
    stop_watching = threading.Event()

    def watch() -> None:
        while not stop_watching.is_set():
            peak["servers"] = max(peak["servers"], server_connections(bouncer, database)[0])
            time.sleep(0.02)

    async def burst(holder: asyncpg.Connection) -> list[int]:
        pool = await make_pool(url, settings, "burst")
        engine = make_engine(url, settings, "burst")
        connected = asyncio.Barrier(CLIENTS + 1)

        async def pool_client(n: int) -> int:
            async with pool.acquire() as conn:
                await connected.wait()
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", LOCK_KEY)
                total = 0
                for r in range(ROUNDS):
                    total += await conn.fetchval(
                        "SELECT $1::int + count(*)::int FROM registry.agencies WHERE slug = $2", r, f"no-{n}"
                    )
                    async with conn.transaction():
                        # A transaction keeps its server connection: both statements see the same backend.
                        first = await conn.fetchval("SELECT pg_backend_pid()")
                        again = await conn.fetchval("SELECT pg_backend_pid() + $1::int", 0)
                        assert first == again
                return total

        async def engine_client(n: int) -> int:
            async with engine.connect() as conn:
                await connected.wait()
                await conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": LOCK_KEY})
                await conn.commit()
                total = 0
                for r in range(ROUNDS):
                    row = await conn.execute(
                        text("SELECT CAST(:r AS int) + count(*)::int FROM registry.agencies WHERE slug = :s"),
                        {"r": r, "s": f"no-{n}"},
                    )
                    total += int(row.scalar_one())
                    await conn.commit()
                return total

        async def gated() -> None:
            await connected.wait()  # every client holds its connection to the pooler now
            # The first clients take the 10 server connections and wait for the lock; the rest wait for a server.
            await asyncio.to_thread(
                eventually,
                lambda: (
                    server_connections(bouncer, database)
                    == (SERVER_CONNECTIONS, CLIENTS - SERVER_CONNECTIONS)
                ),
                30,
            )
            clients = len([c for c in bouncer.show("CLIENTS") if c["database"] == database])
            assert clients == CLIENTS
            await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)

        try:
            tasks = [pool_client(n) for n in range(half)] + [engine_client(n) for n in range(half, CLIENTS)]
            results = await asyncio.gather(gated(), *tasks, return_exceptions=True)
            errors.extend(r for r in results if isinstance(r, BaseException))
            return [r for r in results[1:] if isinstance(r, int)]
        finally:
            await pool.close()
            await engine.dispose()

    async def run() -> list[int]:
        holder = await asyncpg.connect(database_url)  # directly to the cluster, not through the pooler
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            return await burst(holder)
        finally:
            await holder.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        totals = asyncio.run(run())
    finally:
        stop_watching.set()
        watcher.join(5)
    assert errors == []
    assert totals == [sum(range(ROUNDS))] * CLIENTS
    assert peak["servers"] == SERVER_CONNECTIONS


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


async def _two_clients_on_a_fresh_pooler(url: str, settings: Settings) -> tuple[Any, Any]:
    """Client A runs a statement (the pooler opens server 1 for it), client B then holds server 1 in a
    transaction, and A runs the same statement again, which the pooler must give server 2. What A gets each
    time, for its asyncpg pool and its SQLAlchemy engine."""
    pool = await make_pool(url, settings.model_copy(update={"pool_size": 1, "pool_min_size": 1}), "a")
    engine = make_engine(url, settings, "a")
    other = await asyncpg.connect(url, statement_cache_size=0)
    try:

        async def pool_statement(n: int) -> Any:
            return await pool.fetchval("SELECT $1::int + count(*)::int FROM registry.agencies", n)

        async def engine_statement(n: int) -> Any:
            async with engine.connect() as conn:
                row = await conn.execute(
                    text("SELECT CAST(:n AS int) + count(*)::int FROM registry.agencies"), {"n": n}
                )
                return row.scalar_one()

        outcomes = []
        for statement in (pool_statement, engine_statement):
            await statement(0)
            tx = other.transaction()
            await tx.start()
            await other.execute("SELECT 1")  # B now holds the server connection A used
            try:
                outcomes.append(await statement(1))
            except asyncpg.PostgresError as exc:
                outcomes.append(exc)
            except Exception as exc:  # SQLAlchemy wraps asyncpg's error (twice): the cause's cause
                outcomes.append(_root_cause(exc))
            finally:
                await tx.rollback()
        return outcomes[0], outcomes[1]
    finally:
        await other.close()
        await pool.close()
        await engine.dispose()


def test_without_the_pooler_setting_a_statement_prepared_on_one_server_connection_fails_on_the_next(
    bouncer: PgBouncer, app_database_url: str
) -> None:
    """Why CANVASS_DATABASE_POOLER=transaction exists: asyncpg's and SQLAlchemy's cached prepared statements live
    on the server connection that prepared them, which a transaction pooler gives the next transaction only by
    chance."""
    url = through(bouncer, app_database_url)
    direct = get_settings().model_copy(update={"database_pooler": "none"})
    pool_outcome, engine_outcome = asyncio.run(_two_clients_on_a_fresh_pooler(url, direct))
    assert isinstance(pool_outcome, asyncpg.exceptions.InvalidSQLStatementNameError), pool_outcome
    assert isinstance(engine_outcome, asyncpg.exceptions.InvalidSQLStatementNameError), engine_outcome


def test_with_the_pooler_setting_the_same_statements_run_on_any_server_connection(
    bouncer: PgBouncer, app_database_url: str
) -> None:
    url = through(bouncer, app_database_url)
    agencies = asyncio.run(_count_agencies(app_database_url))
    assert asyncio.run(_two_clients_on_a_fresh_pooler(url, pooled_settings())) == (1 + agencies, 1 + agencies)


async def _count_agencies(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM registry.agencies"))
    finally:
        await conn.close()


def test_the_pooler_entries_keep_the_statement_timeout_and_geo_query_read_only(
    bouncer: PgBouncer, app_database_url: str, geo_database_url: str
) -> None:
    """The session settings the services no longer send through the pooler are its entries' (connect_query), and
    survive the pool's release of a connection (no RESET ALL behind a transaction pooler)."""
    settings = pooled_settings(pool_size=2, pool_min_size=1)

    async def run() -> tuple[list[str], list[str], BaseException | None]:
        app = await make_pool(through(bouncer, app_database_url), settings, "registry_api")
        geo = await make_pool(bouncer.url(geo_database_url, "geo"), settings, "geo_query", read_only=True)
        imports = await asyncpg.create_pool(
            through(bouncer, app_database_url),
            min_size=1,
            max_size=1,
            server_settings=server_settings(settings, "registry_api", statement_timeout_ms=0),
            **pooler_arguments(settings, session={"statement_timeout": "0"}),
        )
        try:
            timeouts = [await app.fetchval("SHOW statement_timeout") for _ in range(3)]
            read_only = [await geo.fetchval("SHOW default_transaction_read_only") for _ in range(3)]
            try:
                await geo.execute("CREATE TEMP TABLE pooler_probe (x int)")
                refused = None
            except asyncpg.PostgresError as exc:
                refused = exc
            # A pool with settings of its own (registry_api's imports: no timeout) sets them per transaction.
            async with imports.acquire() as conn:
                async with conn.transaction():
                    timeouts.append(await conn.fetchval("SHOW statement_timeout"))
                timeouts.append(await conn.fetchval("SHOW statement_timeout"))
            timeouts.append(await app.fetchval("SHOW statement_timeout"))
            return timeouts, read_only, refused
        finally:
            await app.close()
            await geo.close()
            await imports.close()

    timeouts, read_only, refused = asyncio.run(run())
    assert timeouts == ["5s", "5s", "5s", "0", "5s", "5s"]
    assert read_only == ["on"] * 3
    assert isinstance(refused, asyncpg.exceptions.ReadOnlySQLTransactionError)
