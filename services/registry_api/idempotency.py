"""Idempotency-Key on creates: the first answer is kept (sealed) for 24 hours and replayed to a retry.

Keys are scoped by principal: an agency user's `agency:sub`, or `anonymous` for owners registering without an
account (whose key is then the only thing that scopes it, which is why it must be long and random). The same key
with the same body replays the first answer, status and body, *including the management credential*: the
reason to retry is that the first answer was lost, and a registration whose credential never arrived could not
be managed. The replay is sealed at rest, expires with the replay window, and is deleted with its registration;
expired replays are deleted by the registrations that follow (the key's own at once, the others within a minute).
The same key with a different body is a 422.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from shared.auth import Principal
from shared.crypto import keyring
from shared.errors import Problem

REPLAY_WINDOW = "24 hours"

# The stored answer for (key, principal), while the replay window lasts. Registration runs it inside its first
# statement (registrations.CREATE_CHECK_SQL), so a first attempt pays no extra round trip for it.
LOOKUP_SQL = (
    "SELECT request_hash, status, body, headers FROM registry.idempotency_keys"  # noqa: S608 - composed from constants; values are bound
    f" WHERE key = $1 AND principal = $2 AND created_at > now() - interval '{REPLAY_WINDOW}'"
)


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    headers: dict[str, str]


def principal_key(principal: Principal | None) -> str:
    return f"{principal.agency}:{principal.sub}" if principal else "anonymous"


def request_hash(payload: Any) -> bytes:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).digest()


def context(principal: str, key: str) -> str:
    return "idempotency:" + hashlib.sha256(f"{principal}\x1f{key}".encode()).hexdigest()


def replayed(row: Any, key: str, principal: str, digest: bytes) -> Stored:
    """The stored answer from a row of (request_hash, status, body, headers). A different body under the same
    key is refused."""
    if bytes(row["request_hash"]) != digest:
        raise Problem(
            422,
            "This Idempotency-Key was used for a different request body; use a new key for a new registration.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused with another body",
        )
    body = keyring().open(bytes(row["body"]), context(principal, key))
    assert body is not None
    headers = row["headers"]
    return Stored(
        row["status"], body.encode(), dict(orjson.loads(headers) if isinstance(headers, str) else headers)
    )


async def lookup(conn: asyncpg.Connection, key: str, principal: str, digest: bytes) -> Stored | None:
    """The stored answer for this key, or None. A different body under the same key is refused."""
    row = await conn.fetchrow(LOOKUP_SQL, key, principal)
    return None if row is None else replayed(row, key, principal, digest)


def seal(stored: Stored, key: str, principal: str) -> tuple[bytes, str]:
    """The sealed body and the headers (JSON) to store with the key, in the statement that writes the
    registration (registrations.CREATE_SQL): the registration and its replay commit together or not at all."""
    sealed = keyring().seal(stored.body.decode(), context(principal, key))
    assert sealed is not None
    return sealed, orjson.dumps(stored.headers).decode()


# How often a process deletes every expired answer (in the statement of a registration that happens to run then):
# a replay must not outlive its window for long, but a range scan over the keys on every registration would be
# per-request work for a once-a-minute job, and a plan fixed while the table was empty makes it a sequential scan.
SWEEP_EVERY_S = 60.0
_next_sweep = 0.0


def sweep_due() -> bool:
    """True at most once per SWEEP_EVERY_S in this process: the caller's statement deletes every expired answer."""
    global _next_sweep
    now = time.monotonic()
    if now < _next_sweep:
        return False
    _next_sweep = now + SWEEP_EVERY_S
    return True


# The statements a registration's writing statement runs for its key (named parameters :key, :principal, :digest,
# :status, :body, :headers, :sweep and :id, the registration's id), as CTEs. The key's own expired answer goes
# first, found by its primary key, so a key reused after the window starts afresh: the INSERT reads `expired`,
# which makes that DELETE run before it. A live row for the same key (a concurrent request with the same key that
# committed first) is a unique violation: the whole registration is rolled back and the caller replays that
# request's answer. With :sweep, every other expired answer goes too.
STORE_CTES = f"""
expired AS (
    DELETE FROM registry.idempotency_keys
    WHERE key = :key AND principal = :principal AND created_at <= now() - interval '{REPLAY_WINDOW}'
    RETURNING 1
), swept AS (
    DELETE FROM registry.idempotency_keys
    WHERE CAST(:sweep AS boolean) AND created_at <= now() - interval '{REPLAY_WINDOW}'
), stored AS (
    INSERT INTO registry.idempotency_keys (key, principal, request_hash, status, body, headers, registration_id)
    SELECT :key, :principal, :digest, :status, :body, CAST(:headers AS jsonb), :id
    WHERE CAST(:key AS text) IS NOT NULL AND (SELECT count(*) FROM expired) >= 0
)"""  # noqa: S608 - composed from constants; values are bound
