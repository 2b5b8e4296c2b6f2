"""Idempotency-Key on creates: the first answer is kept (sealed) for 24 hours and replayed to a retry.

Keys are scoped by principal: an agency user's `agency:sub`, or `anonymous` for owners registering without an
account (whose key is then the only thing that scopes it, which is why it must be long and random). The same key
with the same body replays the first answer, status and body, *including the management credential*: the
reason to retry is that the first answer was lost, and a registration whose credential never arrived could not
be managed. The replay is sealed at rest, expires with the replay window, and is deleted with its registration.
The same key with a different body is a 422.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.crypto import keyring
from shared.errors import Problem

REPLAY_WINDOW = "24 hours"


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    headers: dict[str, str]


def principal_key(principal: Principal | None) -> str:
    return f"{principal.agency}:{principal.sub}" if principal else "anonymous"


def request_hash(payload: Any) -> bytes:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).digest()


def _context(principal: str, key: str) -> str:
    return "idempotency:" + hashlib.sha256(f"{principal}\x1f{key}".encode()).hexdigest()


async def lookup(session: AsyncSession, key: str, principal: str, digest: bytes) -> Stored | None:
    """The stored answer for this key, or None. A different body under the same key is refused."""
    row = (
        await session.execute(
            text(
                "SELECT request_hash, status, body, headers FROM registry.idempotency_keys"  # noqa: S608 - composed from constants; values are bound
                f" WHERE key = :key AND principal = :principal AND created_at > now() - interval '{REPLAY_WINDOW}'"
            ),
            {"key": key, "principal": principal},
        )
    ).first()
    if row is None:
        return None
    if bytes(row[0]) != digest:
        raise Problem(
            422,
            "This Idempotency-Key was used for a different request body; use a new key for a new registration.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused with another body",
        )
    body = keyring().open(bytes(row[2]), _context(principal, key))
    assert body is not None
    return Stored(row[1], body.encode(), dict(row[3]))


async def store(
    session: AsyncSession,
    key: str,
    principal: str,
    digest: bytes,
    stored: Stored,
    registration_id: uuid.UUID,
) -> None:
    # Expired keys go first, so a key reused after the window starts afresh and old replays do not linger.
    await session.execute(
        text(f"DELETE FROM registry.idempotency_keys WHERE created_at < now() - interval '{REPLAY_WINDOW}'")  # noqa: S608 - composed from constants; values are bound
    )
    await session.execute(
        text("DELETE FROM registry.idempotency_keys WHERE key = :key AND principal = :principal"),
        {"key": key, "principal": principal},
    )
    sealed = keyring().seal(stored.body.decode(), _context(principal, key))
    await session.execute(
        text(
            "INSERT INTO registry.idempotency_keys (key, principal, request_hash, status, body, headers,"
            " registration_id) VALUES (:key, :principal, :digest, :status, :body, CAST(:headers AS jsonb), :rid)"
        ),
        {
            "key": key,
            "principal": principal,
            "digest": digest,
            "status": stored.status,
            "body": sealed,
            "headers": orjson.dumps(stored.headers).decode(),
            "rid": registration_id,
        },
    )
