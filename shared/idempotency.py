"""`Idempotency-Key` on creates, the same in every service: the first answer is kept (sealed) for the replay window
and replayed to a retry with the same key, the same caller and the same body.

- Scope: a key belongs to its caller, never to a group: an agency user's `agency:sub`, an owner's
  `owner:<registration id>`, or `anonymous` for owners registering without an account (whose key is then the only
  thing that scopes it, which is why it must be long and random). Another caller's use of the same key is a new
  request of theirs.
- Body: the key is bound to a hash of the body; the same key with a different body is a 422 problem.
- Window: answers are kept for `CANVASS_IDEMPOTENCY_REPLAY_WINDOW_S` (24 hours by default); after it the key starts
  afresh. Expired answers are deleted by the creates that follow (the key's own at once, the others at most once a
  minute per process), and each goes with what it created (cascade).

A service keeps its answers in its own table (`Keys`): key, principal, request_hash, status, body (sealed),
headers, created_at, and the row it created. Rows under a principal in `Keys.kept` are not caller scopes but
deduplication ids of another kind (registry_api's notification ids): the sweep never deletes them, whatever their
age, since a retry of such a message may come at any time while what it belongs to exists.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.auth import OwnerCredential, Principal
from shared.crypto import keyring
from shared.errors import Problem
from shared.settings import get_settings


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    headers: dict[str, str]


def replay_window_s() -> int:
    return get_settings().idempotency_replay_window_s


def principal_key(principal: Principal | None, owner: OwnerCredential | None = None) -> str:
    """Whose key it is: the agency and subject of a token, the registration of an owner's credential."""
    if owner is not None:
        return f"owner:{owner.registration_id}"
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
            "This Idempotency-Key was used for a different request body; use a new key for a new request.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused with another body",
        )
    body = keyring().open(bytes(row["body"]), context(principal, key))
    assert body is not None
    headers = row["headers"]
    return Stored(
        row["status"], body.encode(), dict(orjson.loads(headers) if isinstance(headers, str) else headers)
    )


def seal(stored: Stored, key: str, principal: str) -> tuple[bytes, str]:
    """The sealed body and the headers (JSON) to store with the key."""
    sealed = keyring().seal(stored.body.decode(), context(principal, key))
    assert sealed is not None
    return sealed, orjson.dumps(stored.headers).decode()


# How often a process deletes every expired answer (in the statement of a create that happens to run then): a
# replay must not outlive its window for long, but a range scan over the keys on every create would be per-request
# work for a once-a-minute job.
SWEEP_EVERY_S = 60.0
_WINDOW = "make_interval(secs => CAST(:window_s AS double precision))"


@dataclass
class Keys:
    """One service's table of answers and the statements on it (named parameters :key, :principal, :digest,
    :status, :body, :headers, :window_s, :sweep and :owner, the id of the row the answer created)."""

    table: str
    owner_column: str
    kept: tuple[str, ...] = ()
    _next_sweep: float = field(default=0.0, repr=False)

    @property
    def lookup_sql(self) -> str:
        """The stored answer for (key, principal) while the window lasts."""
        return (
            f"SELECT request_hash, status, body, headers FROM {self.table}"  # noqa: S608 - composed from constants; values are bound
            f" WHERE key = :key AND principal = :principal AND created_at > now() - {_WINDOW}"
        )

    @property
    def sweep_sql(self) -> str:
        """Every expired answer (with :sweep), never a kept principal's row."""
        kept = "".join(f" AND principal <> '{p}'" for p in self.kept)
        return f"DELETE FROM {self.table} WHERE CAST(:sweep AS boolean) AND created_at <= now() - {_WINDOW}{kept}"  # noqa: S608 - composed from constants; values are bound

    @property
    def store_ctes(self) -> str:
        """The CTEs a create's writing statement runs for its key. The key's own expired answer goes first, found
        by its primary key, so a key reused after the window starts afresh: the INSERT reads `expired`, which
        makes that DELETE run before it. A live row for the same key (a concurrent create with the same key that
        committed first) is a unique violation: the whole create is rolled back and the caller replays that
        create's answer. With :sweep, every other expired answer goes too."""
        return f"""
expired AS (
    DELETE FROM {self.table}
    WHERE key = :key AND principal = :principal AND created_at <= now() - {_WINDOW}
    RETURNING 1
), swept AS (
    {self.sweep_sql}
), stored AS (
    INSERT INTO {self.table} (key, principal, request_hash, status, body, headers, {self.owner_column})
    SELECT :key, :principal, :digest, :status, :body, CAST(:headers AS jsonb), :owner
    WHERE CAST(:key AS text) IS NOT NULL AND (SELECT count(*) FROM expired) >= 0
)"""  # noqa: S608 - composed from constants; values are bound

    def sweep_due(self) -> bool:
        """True at most once per SWEEP_EVERY_S in this process: the caller's statement deletes every expired
        answer."""
        now = time.monotonic()
        if now < self._next_sweep:
            return False
        self._next_sweep = now + SWEEP_EVERY_S
        return True
