"""Calling the other Canvass services over HTTP: one pooled client per process, a bounded timeout on every call,
and their failures turned into problems the caller can act on (502 bad answer, 503 unreachable, 504 too slow)
instead of a hang or a 500; a 503 of theirs is passed through with its Retry-After."""

from __future__ import annotations

from typing import Any

import httpx

from shared.errors import Problem
from shared.service_token import ServiceToken
from shared.settings import get_settings

_client: httpx.AsyncClient | None = None


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


# The bearer requests_api presents to registry_api's service-only operations.
service_token = ServiceToken("requests_api")


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
