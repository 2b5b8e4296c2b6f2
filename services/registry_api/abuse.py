"""Limits on guessing: failed guesses of owner credentials and of reset codes are counted per registration and
per client, and past a limit within a window the guesser gets a 429 problem with `Retry-After` until that window
ends.

The rule: a client with CANVASS_GUESS_LIMIT_PER_CLIENT failures in the window is refused every credential and
code check, a right one too (it cannot tell a right guess from a refused one); a registration with
CANVASS_GUESS_LIMIT_PER_REGISTRATION failures from any clients is refused to everyone for the rest of the window,
its owner too — a bounded lock-out, the price of stopping a guess spread over many clients. The per-client limit
is the lower one, so one guessing client never locks the owner out: the right credential from another client
still works. Windows are fixed, from a bucket's first failure, CANVASS_GUESS_WINDOW_S long.

The counts are rows of `registry.guess_counts`, not process memory: every instance of the service counts into
the same buckets, so running more instances does not multiply the guesses allowed. A client is kept only as a
keyed hash of its address (the index key of the key ring), and a row only until its window ends: expired rows are
deleted when any failure is counted and by the periodic housekeeping (every 30 s), so no client address outlives its
window by more than that. The client is the address the server sees (uvicorn resolves `X-Forwarded-For` from the
proxies it trusts: FORWARDED_ALLOW_IPS).
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import uuid
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry_api.database import db
from shared.crypto import keyring
from shared.errors import Problem

log = logging.getLogger("canvass.registry.abuse")
CONTEXT = "guess-limit"
_client: contextvars.ContextVar[str] = contextvars.ContextVar("guess_client", default="unknown")


@dataclass(frozen=True)
class Limits:
    per_client: int
    per_registration: int
    window_s: int


@lru_cache
def limits() -> Limits:
    return Limits(
        per_client=int(os.environ.get("CANVASS_GUESS_LIMIT_PER_CLIENT", "20")),
        per_registration=int(os.environ.get("CANVASS_GUESS_LIMIT_PER_REGISTRATION", "50")),
        window_s=int(os.environ.get("CANVASS_GUESS_WINDOW_S", "900")),
    )


async def _remember_client(request: Request) -> None:
    _client.set(request.client.host if request.client else "unknown")


# On the routers whose operations check a credential or a code: who is asking, for the checks below.
RememberClient = Depends(_remember_client)


def _client_bucket() -> bytes:
    return b"c" + keyring().exact_index(_client.get(), CONTEXT)


def _registration_bucket(rid: uuid.UUID) -> bytes:
    return b"r" + rid.bytes


async def refuse_if_limited(session: AsyncSession, rid: uuid.UUID | None = None) -> None:
    """A 429 when the client, or the registration, is past its limit in the current window."""
    buckets = {_client_bucket(): limits().per_client}
    if rid is not None:
        buckets[_registration_bucket(rid)] = limits().per_registration
    rows = (
        await session.execute(
            text(
                "SELECT bucket, failures, extract(epoch FROM window_ends - now()) AS left_s"
                " FROM registry.guess_counts WHERE bucket = ANY(:b) AND window_ends > now()"
            ),
            {"b": list(buckets)},
        )
    ).all()
    waits = [float(left) for bucket, failures, left in rows if failures >= buckets[bytes(bucket)]]
    if waits:
        wait = max(1, math.ceil(max(waits)))
        raise Problem(
            429,
            f"Too many wrong credentials or codes: try again in {wait} seconds.",
            kind="too-many-requests",
            headers={"Retry-After": str(wait)},
        )


COUNT_SQL = """
WITH expired AS (
    DELETE FROM registry.guess_counts WHERE window_ends <= now() AND NOT bucket = ANY(:b)
)
INSERT INTO registry.guess_counts AS g (bucket, failures, window_ends)
SELECT unnest(CAST(:b AS bytea[])), 1, now() + make_interval(secs => :w)
ON CONFLICT (bucket) DO UPDATE SET
    failures = CASE WHEN g.window_ends <= now() THEN 1 ELSE g.failures + 1 END,
    window_ends = CASE WHEN g.window_ends <= now() THEN EXCLUDED.window_ends ELSE g.window_ends END
"""


async def count_failure(rid: uuid.UUID | None = None) -> None:
    """Count a failed guess, in its own transaction: it stands although the request that made it fails."""
    buckets = [_client_bucket()] + ([_registration_bucket(rid)] if rid is not None else [])
    try:
        async with db.sessions() as s:
            await s.execute(text(COUNT_SQL), {"b": sorted(buckets), "w": limits().window_s})
            await s.commit()
    except Exception as exc:  # the guess is still refused; it is just not counted
        log.warning("could not count a failed guess: %s", type(exc).__name__)


async def sweep_quietly(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Delete the counts whose window has ended (periodic)."""
    try:
        async with sessions() as s:
            await s.execute(text("DELETE FROM registry.guess_counts WHERE window_ends <= now()"))
            await s.commit()
    except Exception as exc:
        log.warning("could not sweep guess counts: %s", type(exc).__name__)
