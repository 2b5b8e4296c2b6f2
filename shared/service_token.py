"""The bearer a Canvass service presents as itself when it calls another's service-only operations (requests_api
and live_relay to registry_api): CANVASS_SERVICE_TOKEN when one is configured, otherwise an HS256 `service` token
minted from CANVASS_SECRET_KEY (which the services share, and which registry_api accepts for that role alone in
production), renewed before it expires.

A minted token lives TTL_S and is replaced once less than RENEW_S of it (or half, if shorter) is left: a call in
flight never carries one about to expire, and a deployment never has to mint one by hand and restart (tokens live
at most CANVASS_JWT_MAX_LIFETIME_S)."""

from __future__ import annotations

import time

from shared.auth import mint_token
from shared.errors import Problem
from shared.settings import get_settings

TTL_S = 3600
RENEW_S = 300


class ServiceToken:
    """One service's own token, kept per process: `service_token()` gives the bearer to present now."""

    def __init__(self, sub: str) -> None:
        self.sub = sub
        self._minted: tuple[float, str] | None = None  # (expiry, token)

    def reset(self) -> None:
        """Forget the minted token (the next call mints one)."""
        self._minted = None

    def __call__(self, now: float | None = None) -> str:
        settings = get_settings()
        if settings.service_token:
            return settings.service_token
        if not settings.allow_hs256:
            raise Problem(
                503,
                "No service token: HS256 is off (CANVASS_ALLOW_HS256) and CANVASS_SERVICE_TOKEN is not set.",
                kind="unavailable",
            )
        now = time.time() if now is None else now
        ttl = min(TTL_S, settings.jwt_max_lifetime_s)
        if self._minted is None or self._minted[0] - now < min(RENEW_S, ttl // 2):
            issued = int(now)
            token = mint_token(
                "service", None, sub=self.sub, settings=settings, extra={"iat": issued, "exp": issued + ttl}
            )
            self._minted = (issued + ttl, token)
        return self._minted[1]
