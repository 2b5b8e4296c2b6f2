"""registry_api's `Idempotency-Key` on registration: the shared rule (shared/idempotency.py: scoped to the caller,
bound to the body, kept for the replay window) over `registry.idempotency_keys`.

The same key with the same body replays the first answer, status and body, *including the management
credential*: the reason to retry is that the first answer was lost, and a registration whose credential never
arrived could not be managed. The replay is sealed at rest, expires with the replay window, and is deleted with
its registration. The table also keeps notification ids (principal `notification`, see notifications.py), which
the sweep of expired answers never deletes.
"""

from __future__ import annotations

import asyncpg

from shared.idempotency import Keys, Stored, replay_window_s, replayed

NOTIFICATION_PRINCIPAL = "notification"
KEYS = Keys("registry.idempotency_keys", "registration_id", kept=(NOTIFICATION_PRINCIPAL,))

# The stored answer for (key, principal), while the replay window lasts (named parameters :key, :principal and
# :window_s). Registration runs it inside its first statement (registrations.CREATE_CHECK_SQL), so a first attempt
# pays no extra round trip for it.
LOOKUP_SQL = KEYS.lookup_sql
# The statements a registration's writing statement runs for its key, as CTEs (see Keys.store_ctes).
STORE_CTES = KEYS.store_ctes
_LOOKUP_POSITIONAL = LOOKUP_SQL.replace(":key", "$1").replace(":principal", "$2").replace(":window_s", "$3")


async def lookup(conn: asyncpg.Connection, key: str, principal: str, digest: bytes) -> Stored | None:
    """The stored answer for this key, or None. A different body under the same key is refused."""
    row = await conn.fetchrow(_LOOKUP_POSITIONAL, key, principal, float(replay_window_s()))
    return None if row is None else replayed(row, key, principal, digest)
