"""Calling the other Canvass services over HTTP: one pooled client per process, a bounded timeout on every call,
and their failures turned into problems the caller can act on (502 bad answer, 503 unreachable, 504 too slow)
instead of a hang or a 500; a 503 of theirs is passed through with its Retry-After."""

from __future__ import annotations

import time
from typing import Any

import httpx

from shared.auth import mint_token
from shared.errors import Problem
from shared.settings import get_settings

_client: httpx.AsyncClient | None = None
_service_token: tuple[float, str] | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None or _client.is_closed:
        _client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            headers={"User-Agent": "canvass-requests-api/1"},
        )
    return _client


async def close_client() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None


def timeout() -> httpx.Timeout:
    t = get_settings().geo_query_timeout_s
    return httpx.Timeout(t, connect=min(t, 3.0))


# The token this service mints for itself lives SERVICE_TOKEN_TTL_S and is replaced once less than
# SERVICE_TOKEN_RENEW_S of it (or half, if shorter) is left: a call in flight never carries one about to expire, and a deployment
# never has to mint one by hand and restart (tokens live at most CANVASS_JWT_MAX_LIFETIME_S).
SERVICE_TOKEN_TTL_S = 3600
SERVICE_TOKEN_RENEW_S = 300


def service_token(now: float | None = None) -> str:
    """The bearer this service presents as itself: CANVASS_SERVICE_TOKEN when one is configured, otherwise an
    HS256 `service` token minted from CANVASS_SECRET_KEY (which the services share, and which registry_api accepts
    for that role alone in production), renewed before it expires."""
    global _service_token
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
    ttl = min(SERVICE_TOKEN_TTL_S, settings.jwt_max_lifetime_s)
    if _service_token is None or _service_token[0] - now < min(SERVICE_TOKEN_RENEW_S, ttl // 2):
        issued = int(now)
        token = mint_token(
            "service", None, sub="requests_api", settings=settings, extra={"iat": issued, "exp": issued + ttl}
        )
        _service_token = (issued + ttl, token)
    return _service_token[1]


def unreachable(service: str, exc: httpx.HTTPError) -> Problem:
    if isinstance(exc, httpx.TimeoutException):
        return Problem(
            504,
            f"{service} did not answer in time; retry shortly.",
            kind="upstream-timeout",
            headers={"Retry-After": "5"},
        )
    return Problem(
        503, f"{service} is unreachable; retry shortly.", kind="unavailable", headers={"Retry-After": "5"}
    )


def problem_detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:500]
    return response.reason_phrase


def bad_gateway(service: str, response: httpx.Response) -> Problem:
    """The problem for an answer the caller cannot use. A 503 is passed through with its Retry-After: the other
    service is briefly unavailable (its database restarting, say), which the client should retry, not report."""
    if response.status_code == 503:
        retry_after = response.headers.get("Retry-After", "")
        return Problem(
            503,
            f"{service} is briefly unavailable; retry shortly.",
            kind="unavailable",
            headers={"Retry-After": retry_after if retry_after.isdigit() else "5"},
        )
    return Problem(
        502,
        f"{service} answered {response.status_code}: {problem_detail(response)}",
        kind="upstream-error",
    )
