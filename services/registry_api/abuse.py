"""Limits on guessing: failed guesses of owner credentials and of reset codes are counted per client, and a
client with CANVASS_GUESS_LIMIT_PER_CLIENT failures within a window gets a 429 problem with `Retry-After` until
that window ends, for every credential and code check, a right one too (it cannot tell a right guess from a
refused one). Windows are fixed, from a client's first failure, CANVASS_GUESS_WINDOW_S long.

There is no limit per registration: management credentials and reset codes are 256-bit random secrets, beyond
reach of any number of guesses, and a lock on a registration would let anyone who knows its id lock the owner out
of their own data (of deleting it, too). One guessing client never locks out an owner: the right credential from
another client works.

Count and check are one statement: a check first takes its place in the client's count (an upsert returning the
new count) and is refused when that is past the limit; a check that then succeeds gives its place back. Parallel
guesses from one client therefore cannot all be checked before any is counted: at most the limit get through.

The counts are rows of `registry.guess_counts`, not process memory: every instance of the service counts into
the same buckets, so running more instances does not multiply the guesses allowed. A client is kept only as a
keyed hash of its address (the index key of the key ring), and a row only until its window ends (or, with no
failure in it, until its check is over): expired rows are deleted when a check is counted and by the periodic
housekeeping (every 30 s), so no client address outlives its window by more than that.

The client is the address the server sees (uvicorn resolves `X-Forwarded-For` from the proxies it trusts:
FORWARDED_ALLOW_IPS) — except for another Canvass service checking an owner's credential on the owner's behalf
(requests_api): it names the owner's address in `X-Canvass-Client-Address` and proves itself with its service
token in `X-Canvass-Service-Authorization` (the owner's credential being the request's `Authorization`). The
named address is believed only with a verified `service` token; else the header is ignored. Without it, every
owner reaching the registry through requests_api would share that service's count, and one guesser there would
lock them all out.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import math
import os
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry_api.database import db
from shared.auth import verified_principal
from shared.crypto import keyring
from shared.errors import Problem
from shared.settings import get_settings

log = logging.getLogger("canvass.registry.abuse")
CONTEXT = "guess-limit"
_client: contextvars.ContextVar[str] = contextvars.ContextVar("guess_client", default="unknown")


# The headers through which another Canvass service names the client it acts for (see the module's docstring).
CLIENT_ADDRESS_HEADER = "X-Canvass-Client-Address"
SERVICE_AUTHORIZATION_HEADER = "X-Canvass-Service-Authorization"


@dataclass(frozen=True)
class Limits:
    per_client: int
    window_s: int


@lru_cache
def limits() -> Limits:
    return Limits(
        per_client=int(os.environ.get("CANVASS_GUESS_LIMIT_PER_CLIENT", "20")),
        window_s=int(os.environ.get("CANVASS_GUESS_WINDOW_S", "900")),
    )


def client_address(request: Request) -> str:
    """Whose guesses a request's checks count as: see the module's docstring."""
    seen = request.client.host if request.client else "unknown"
    named = request.headers.get(CLIENT_ADDRESS_HEADER)
    scheme, _, token = request.headers.get(SERVICE_AUTHORIZATION_HEADER, "").partition(" ")
    if named is None or scheme.lower() != "bearer" or not token.strip():
        return seen
    try:
        principal = verified_principal(token.strip(), get_settings())
        address = ipaddress.ip_address(named.strip())
    except (Problem, ValueError):
        return seen
    return str(address) if principal.has("service") else seen


async def _remember_client(request: Request) -> None:
    _client.set(client_address(request))


# On the routers whose operations check a credential or a code: who is asking, for the checks below.
RememberClient = Depends(_remember_client)


def _client_bucket() -> bytes:
    return b"c" + keyring().exact_index(_client.get(), CONTEXT)


# The client's place in its count: expired counts go (other clients' too), and the new count comes back.
ATTEMPT_SQL = """
WITH expired AS (
    DELETE FROM registry.guess_counts WHERE window_ends <= now() AND bucket <> :b
)
INSERT INTO registry.guess_counts AS g (bucket, failures, window_ends)
VALUES (:b, 1, now() + make_interval(secs => :w))
ON CONFLICT (bucket) DO UPDATE SET
    failures = CASE WHEN g.window_ends <= now() THEN 1 ELSE g.failures + 1 END,
    window_ends = CASE WHEN g.window_ends <= now() THEN EXCLUDED.window_ends ELSE g.window_ends END
RETURNING failures, extract(epoch FROM window_ends - now()) AS left_s
"""


async def attempt() -> None:
    """Count a check as a failure before it is made, in its own committed transaction (it stands although the
    request that made it fails); a 429 when that puts the client past its limit. A check that succeeds calls
    `succeeded`, which takes the count back."""
    async with db.sessions() as s:
        failures, left = (
            await s.execute(text(ATTEMPT_SQL), {"b": _client_bucket(), "w": limits().window_s})
        ).one()
        await s.commit()
    if failures > limits().per_client:
        wait = max(1, math.ceil(float(left)))
        raise Problem(
            429,
            f"Too many wrong credentials or codes: try again in {wait} seconds.",
            kind="too-many-requests",
            headers={"Retry-After": str(wait)},
        )


async def succeeded() -> None:
    """The check `attempt` counted was right: its count is taken back (the row goes with the last one, so a client
    that never failed is not kept)."""
    bucket = _client_bucket()
    try:
        async with db.sessions() as s:
            # Two statements: the second sees a count another check added while the first waited.
            await s.execute(
                text("DELETE FROM registry.guess_counts WHERE bucket = :b AND failures <= 1"), {"b": bucket}
            )
            await s.execute(
                text(
                    "UPDATE registry.guess_counts SET failures = failures - 1 WHERE bucket = :b AND failures > 1"
                ),
                {"b": bucket},
            )
            await s.commit()
    except Exception as exc:  # the client keeps one failure too many until its window ends
        log.warning("could not take back a guess count: %s", type(exc).__name__)


async def sweep_quietly(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Delete the counts whose window has ended (periodic)."""
    try:
        async with sessions() as s:
            await s.execute(text("DELETE FROM registry.guess_counts WHERE window_ends <= now()"))
            await s.commit()
    except Exception as exc:
        log.warning("could not sweep guess counts: %s", type(exc).__name__)
