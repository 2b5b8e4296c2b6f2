"""`shared.db.pooled`: a connection that failed with the connection itself is closed, never handed out again; a
statement's own error (a constraint, a timeout) leaves the connection in the pool. And a protocol-state error, what
a connection the server terminated while idle raises, is answered 503 like the database being away."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.db import make_pool, pooled
from shared.errors import unexpected_problem
from shared.settings import get_settings


def test_a_connection_failure_closes_the_connection_and_a_statement_error_does_not(database_url: str) -> None:
    async def run() -> None:
        pool = await make_pool(database_url, get_settings(), "registry_api", session_state=False)
        try:
            with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
                async with pooled(pool) as conn:
                    first = conn.get_server_pid()
                    await conn.fetchval("SELECT 1 / 0")
            async with pooled(pool) as conn:
                assert conn.get_server_pid() == first  # the same connection, still good

            with pytest.raises(asyncpg.exceptions.InternalClientError):
                async with pooled(pool) as conn:
                    raise asyncpg.exceptions.InternalClientError("another operation is in progress")
            async with pooled(pool) as conn:
                assert conn.get_server_pid() != first  # that one was closed: a new connection
                assert await conn.fetchval("SELECT 1") == 1
        finally:
            await pool.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_connection_failures_are_the_database_being_unavailable(exc: BaseException) -> None:
    answer = unexpected_problem(exc, "GET", "/registrations")
    assert (answer.status_code, answer.headers.get("retry-after")) == (503, "2")


def test_a_statements_own_error_is_not() -> None:
    answer = unexpected_problem(
        asyncpg.exceptions.UniqueViolationError("duplicate key"), "GET", "/registrations"
    )
    assert answer.status_code == 500


@pytest.mark.parametrize(("minimum", "size", "expected"), [(3, 10, 3), (50, 5, 5), (0, 5, 0)])
def test_a_pool_keeps_its_minimum_of_connections_open_however_idle(
    database_url: str, minimum: int, size: int, expected: int
) -> None:
    settings = get_settings().model_copy(update={"pool_min_size": minimum, "pool_size": size})
    name = f"pool-min-{minimum}-{size}"

    async def run() -> None:
        pool = await make_pool(database_url, settings, name)
        try:
            probe = await asyncpg.connect(database_url)
            try:
                opened = await probe.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", f"canvass-{name}"
                )
            finally:
                await probe.close()
            assert opened == expected
        finally:
            await pool.close()

    asyncio.run(run())
