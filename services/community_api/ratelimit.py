"""Rate limiting of anonymous senders, shared by every process of the service, without keeping who they are.

A sender is counted in the database (`community.rate_counts`, UNLOGGED) under a keyed hash of their address:
HMAC-SHA256 with a key derived from the service's secret key and the current window's salt. The salt is drawn at
random by the first process to reach a window and kept beside the counts (`community.rate_windows`) until the
window ends, so every process counts a sender under the same key; the address itself, or a plain hash of it, is
never written to a table or a log. Neither half alone tells whose a count is: the database holds the salt but not
the secret key, the deployment's configuration the key but not the salt. Once a window is over its salt and
counts are deleted, after which nobody can tell which address a past count belonged to.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from fastapi import Request

from services.community_api.config import config
from shared.errors import Problem
from shared.settings import get_settings

SWEEP_SQL = """
WITH counts AS (DELETE FROM community.rate_counts WHERE ends_at <= now())
DELETE FROM community.rate_windows WHERE ends_at <= now()
"""
SALT_SQL = """
WITH new AS (
    INSERT INTO community.rate_windows (length_s, number, salt, ends_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (length_s, number) DO NOTHING RETURNING salt
)
SELECT salt FROM new UNION ALL SELECT salt FROM community.rate_windows WHERE length_s = $1 AND number = $2
"""
HIT_SQL = """
INSERT INTO community.rate_counts (key, count, ends_at) VALUES ($1, 1, $2)
ON CONFLICT (key) DO UPDATE SET count = community.rate_counts.count + 1
RETURNING count
"""


@dataclass
class WindowedLimiter:
    limit: int
    window_s: float
    # This process's key of the current window (the salt is read once per window).
    _keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    async def _key(self, conn: asyncpg.Connection, number: int, ends_at: datetime) -> bytes:
        key = self._keys.get(number)
        if key is None:
            await conn.execute(SWEEP_SQL)  # a new window: the ended ones' salts and counts go
            salt = await conn.fetchval(SALT_SQL, self.window_s, number, secrets.token_bytes(32), ends_at)
            if salt is None:  # another process drew it while this statement ran: read what it committed
                salt = await conn.fetchval(
                    "SELECT salt FROM community.rate_windows WHERE length_s = $1 AND number = $2",
                    self.window_s,
                    number,
                )
            secret = hashlib.sha256(b"community-rate-limit:" + get_settings().secret_key.encode()).digest()
            key = hmac.new(secret, bytes(salt), hashlib.sha256).digest()
            self._keys = {number: key}
        return key

    async def hit(self, conn: asyncpg.Connection, address: str, now: float | None = None) -> float | None:
        """Count one request from `address`: None if allowed, else the seconds until the window ends."""
        now = time.time() if now is None else now
        number = math.floor(now / self.window_s)
        end = (number + 1) * self.window_s
        ends_at = datetime.fromtimestamp(end, UTC)
        key = await self._key(conn, number, ends_at)
        mark = hmac.new(key, address.encode(), hashlib.sha256).digest()[:16]
        count = await conn.fetchval(HIT_SQL, mark, ends_at)
        return end - now if count > self.limit else None


_limiter: WindowedLimiter | None = None


def limiter() -> WindowedLimiter:
    """The one budget of a client address's anonymous writes: tips, follow-ups (and wrong tip codes), and
    subscriptions, whose every one sends a confirmation code to someone."""
    global _limiter
    if _limiter is None:
        _limiter = WindowedLimiter(config().tip_rate_limit, config().tip_rate_window_s)
    return _limiter


def sender(host: str) -> str:
    """Whom a request is counted against: its IPv4 address, or the /64 network of an IPv6 one (a single home or
    phone holds a whole /64 and could otherwise send from a new address each time)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


async def check(limiter: WindowedLimiter, request: Request, conn: asyncpg.Connection) -> None:
    """Refuse with 429 when the caller's address has sent `limit` requests in this window (in any process). Behind a
    proxy the address is the one the proxy forwards, when uvicorn trusts it (`FORWARDED_ALLOW_IPS`)."""
    address = sender(request.client.host) if request.client else ""
    wait = await limiter.hit(conn, address)
    if wait is not None:
        retry = max(1, math.ceil(wait))
        raise Problem(
            429,
            f"Too many submissions from this connection; try again in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )
