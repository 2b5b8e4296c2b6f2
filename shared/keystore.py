"""Per-registration data keys, kept in a store apart from the data they protect: crypto-shredding.

What an owner writes that no search reads in SQL (business name, contact hours, notes for investigators, answer
notes, evidence descriptions and file names) is sealed (AES-256-GCM, associated data naming its row and field)
under a data key of the owner's registration. The data keys live in the key store, a database of its own
(`CANVASS_KEYSTORE_URL`: not the main database, so not in its files, WAL, replicas or backups), each wrapped
under the key-encryption key of the settings (`CANVASS_KEYSTORE_KEY`), so the key store alone opens nothing
either. Deleting a registration destroys its key row: every copy of its sealed texts — in the main database's
table files, WAL, replicas and every backup of it — can then no longer be opened, by anyone, with any settings.
docs/decisions/0001-deletion-on-disk.md says when a destroyed key leaves the key store's own files and backups.

No key is cached between requests: each read asks the store for the keys it needs (one round trip for a whole
page), so a deletion takes effect for every later read of every service at once. A key store that cannot be
reached is a 503 problem (`KeyStoreUnavailable`), never a 500, and nothing is written in plain text instead.

A registration gets its key when something is first sealed under it (`ensure`, get-or-create in one round trip),
so registrations without free texts never wait for the store; a new registration with texts takes its id and key
together from `fresh`, which stores keys for ids not yet used FRESH_BATCH at a time (one round trip per batch, not
per registration). An id never used leaves a key that protects nothing. A key created for a registration deleted meanwhile
(an owner's answer racing their deletion) is destroyed again by requests_api's worker, which reads the feed of
deletions (`destroy` is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.crypto import KeyRing
from shared.db import CONNECTION_FAILURES, make_pool
from shared.errors import Problem
from shared.settings import get_settings

log = logging.getLogger("canvass.keystore")

# A value sealed under a data key: VERSION | nonce(12) | ciphertext+tag (the version tells it from the key
# ring's `kid | 0x00 | ...` format, whose kid is alphanumeric).
VERSION = b"\x01"

SCHEMA_SQL = """
CREATE TABLE data_keys (
    registration_id uuid PRIMARY KEY,
    wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A destroyed key's dead row is vacuumed soon, not after a fifth of the table changed (see decision 0001).
ALTER TABLE data_keys SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20);
"""

# The keys given are stored unless the registration has one: the inserted come back without their wrapped key
# (the caller holds it), the others with theirs.
ENSURE_SQL = """
WITH given AS (SELECT * FROM unnest($1::uuid[], $2::bytea[]) AS g(registration_id, wrapped)),
ins AS (
    INSERT INTO data_keys (registration_id, wrapped) SELECT registration_id, wrapped FROM given
    ON CONFLICT (registration_id) DO NOTHING RETURNING registration_id)
SELECT registration_id, NULL::bytea AS wrapped FROM ins
UNION ALL
SELECT k.registration_id, k.wrapped FROM data_keys k JOIN given g USING (registration_id)
WHERE k.registration_id NOT IN (SELECT registration_id FROM ins)
"""


# How many (new registration id, key) pairs `fresh` stores in one round trip.
FRESH_BATCH = 64


class KeyStoreUnavailable(Problem):
    """The key store could not be reached: the request is answered 503 and writes nothing."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "The key store is unavailable; retry shortly.",
            kind="unavailable",
            headers={"Retry-After": "1"},
        )


class DataKey:
    """One registration's data key, unwrapped (in memory only, for the request that asked for it)."""

    __slots__ = ("_aead", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._aead = AESGCM(raw)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(32))

    def seal(self, plaintext: str | None, context: str) -> bytes | None:
        if plaintext is None:
            return None
        nonce = os.urandom(12)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes | None, context: str) -> str | None:
        """The text, or None when there is none or it does not open here (another row's or field's value)."""
        if sealed is None:
            return None
        data = bytes(sealed)
        if data[:1] != VERSION:
            return None
        try:
            return self._aead.decrypt(data[1:13], data[13:], context.encode()).decode()
        except InvalidTag:
            log.warning("a sealed value did not open: %s", context.rsplit(":", 1)[-1])
            return None


def open_with(key: DataKey | None, sealed: bytes | None, context: str) -> str | None:
    """A sealed text, or None when its key is gone (the registration was deleted: the text is shredded)."""
    return key.open(sealed, context) if key is not None and sealed is not None else None


def wrap_context(registration_id: uuid.UUID) -> str:
    return f"data-key:{registration_id}"


class KeyStore:
    """The key store of one process: an asyncpg pool on `CANVASS_KEYSTORE_URL`, opened on first use."""

    def __init__(self, url: str, kek: KeyRing, service: str) -> None:
        self.url = url
        self.kek = kek
        self.service = service
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._fresh: list[tuple[uuid.UUID, DataKey]] = []
        self._fresh_lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is not loop:
            # Opened in an event loop that has ended (a script or test running one loop after another): its
            # connections cannot serve this loop.
            self._pool, self._lock, self._fresh_lock, self._fresh = None, asyncio.Lock(), asyncio.Lock(), []
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    pool = await make_pool(
                        self.url, get_settings(), f"{self.service}-keystore", session_state=False
                    )
                    async with pool.acquire() as conn:
                        await create_schema(conn)
                    self._pool, self._loop = pool, loop
        return self._pool

    def _wrap(self, rid: uuid.UUID, key: DataKey) -> bytes:
        wrapped = self.kek.seal(key.raw.hex(), wrap_context(rid))
        assert wrapped is not None
        return wrapped

    def _unwrap(self, rid: uuid.UUID, wrapped: bytes) -> DataKey:
        raw = self.kek.open(wrapped, wrap_context(rid))
        assert raw is not None
        return DataKey(bytes.fromhex(raw))

    async def _fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        try:
            pool = await self.pool()
            async with pool.acquire() as conn:
                try:
                    return await conn.fetch(sql, *args)
                except CONNECTION_FAILURES:
                    conn.terminate()
                    raise
        except (*CONNECTION_FAILURES, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("key store unavailable: %s", type(exc).__name__)
            raise KeyStoreUnavailable() from exc

    async def keys(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DataKey]:
        """The keys the store still holds of these registrations (a deleted one's is absent)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = await self._fetch(
            "SELECT registration_id, wrapped FROM data_keys WHERE registration_id = ANY($1::uuid[])", wanted
        )
        return {r["registration_id"]: self._unwrap(r["registration_id"], r["wrapped"]) for r in rows}

    async def key(self, rid: uuid.UUID) -> DataKey | None:
        return (await self.keys([rid])).get(rid)

    async def ensure(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DataKey]:
        """The keys of these registrations, created for those that have none: one round trip."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        fresh = {rid: DataKey.generate() for rid in wanted}
        return await self.store(fresh)

    async def store(self, fresh: Mapping[uuid.UUID, DataKey]) -> dict[uuid.UUID, DataKey]:
        """Store these new keys, keeping any key a registration already has (one round trip); every key of
        the registrations given, as the store now holds it."""
        if not fresh:
            return {}
        ids = list(fresh)
        rows = await self._fetch(ENSURE_SQL, ids, [self._wrap(rid, fresh[rid]) for rid in ids])
        got = {
            r["registration_id"]: fresh[r["registration_id"]]
            if r["wrapped"] is None
            else self._unwrap(r["registration_id"], r["wrapped"])
            for r in rows
        }
        missing = [rid for rid in ids if rid not in got]
        if missing:  # inserted by a concurrent transaction after this statement's snapshot: read them now
            got.update(await self.keys(missing))
        return got

    async def fresh(self) -> tuple[uuid.UUID, DataKey]:
        """An id for a new registration and its data key, already in the store. The keys of ids nobody has used
        yet are stored FRESH_BATCH at a time: no round trip for most new registrations. (Only unused ids are
        held here: a used id's key is asked of the store on every read, so a deletion takes effect at once.)"""
        async with self._fresh_lock:
            if not self._fresh:
                batch = {uuid.uuid4(): DataKey.generate() for _ in range(FRESH_BATCH)}
                stored = await self.store(batch)
                self._fresh = [(rid, stored[rid]) for rid in batch]
            return self._fresh.pop()

    async def destroy(self, ids: Iterable[uuid.UUID]) -> int:
        """Destroy these registrations' keys (their sealed texts are then unreadable everywhere); idempotent."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        rows = await self._fetch(
            "DELETE FROM data_keys WHERE registration_id = ANY($1::uuid[]) RETURNING registration_id", wanted
        )
        return len(rows)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():
            await pool.close()
        # A pool of an event loop that has ended is only forgotten: its connections went with that loop.


async def create_schema(conn: asyncpg.Connection) -> None:
    """The key store's one table, created on first use when absent (the store's role owns its database)."""
    if await conn.fetchval("SELECT to_regclass('data_keys')") is None:
        try:
            await conn.execute(SCHEMA_SQL)
        except (
            asyncpg.DuplicateTableError,
            asyncpg.UniqueViolationError,
        ):  # created by another process meanwhile
            pass


_stores: dict[str, KeyStore] = {}


def keystore(service: str = "canvass") -> KeyStore:
    """This process's key store (one per process: the first caller names the service)."""
    store = _stores.get("")
    if store is None:
        settings = get_settings()
        store = _stores[""] = KeyStore(settings.keystore, kek_ring(), service)
    return store


@lru_cache
def kek_ring() -> KeyRing:
    return KeyRing(get_settings().keystore_keys, "CANVASS_KEYSTORE_KEY")


async def open_keystore(service: str) -> None:
    """Open the process's key store at start-up, so the first request (or import) does not wait for its
    connections; a store out of reach now is only logged: it is asked again, and answered 503, when needed."""
    try:
        await keystore(service).pool()
    except (*CONNECTION_FAILURES, asyncpg.PostgresError, TimeoutError) as exc:
        log.warning("key store unavailable at start-up: %s", type(exc).__name__)


async def close_keystore() -> None:
    store = _stores.pop("", None)
    if store is not None:
        await store.close()
