"""Rate limiting of anonymous senders without keeping who they are.

A sender is counted under a keyed hash of their address: HMAC-SHA256 with a secret drawn at random when a window
starts and forgotten when it ends, held in this process's memory only. Nothing is written to the database or a
log; once a window is over, its counts and its secret are gone, so even this process can no longer tell which
address a past count belonged to. (Several processes each count on their own: the limit is per process.)
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass, field

from fastapi import Request

from shared.errors import Problem


@dataclass
class WindowedLimiter:
    limit: int
    window_s: float
    _secret: bytes = field(default=b"", repr=False)
    _window: int = -1
    _counts: dict[bytes, int] = field(default_factory=dict, repr=False)

    def _roll(self, now: float) -> None:
        window = math.floor(now / self.window_s)
        if window != self._window:
            self._window = window
            self._secret = secrets.token_bytes(32)
            self._counts = {}

    def hit(self, address: str, now: float | None = None) -> float | None:
        """Count one request from `address`: None if allowed, else the seconds until the window ends."""
        now = time.time() if now is None else now
        self._roll(now)
        key = hmac.new(self._secret, address.encode(), hashlib.sha256).digest()[:16]
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count > self.limit:
            return (self._window + 1) * self.window_s - now
        return None


def check(limiter: WindowedLimiter, request: Request) -> None:
    """Refuse with 429 when the caller's address has sent `limit` requests in this window."""
    address = request.client.host if request.client else ""
    wait = limiter.hit(address)
    if wait is not None:
        retry = max(1, math.ceil(wait))
        raise Problem(
            429,
            f"Too many submissions from this connection; try again in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )
