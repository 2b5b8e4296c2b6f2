"""What the relay asks registry_api over HTTP: whether a window open now to an agency includes a camera (as a
Canvass service, with a `service` token), and who an edge agent is (with the credential the agent presented).
registry_api alone decides; the relay keeps no copy of windows, shares or credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from shared.service_token import ServiceToken
from shared.settings import get_settings

SERVICE = "registry_api"
_client: httpx.AsyncClient | None = None
# The bearer the relay presents to registry_api's service-only operations.
service_token = ServiceToken("live_relay")


def client() -> httpx.AsyncClient:
    global _client
    if _client is None or _client.is_closed:
        _client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            headers={"User-Agent": "canvass-live-relay/1"},
            timeout=httpx.Timeout(2.0, connect=1.0),
        )
    return _client


async def close_client() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None


def _url(path: str) -> str:
    return get_settings().registry_api_url.rstrip("/") + path


class Unreachable(Exception):
    """registry_api did not give an answer the relay can use (down, slow, or outside its contract)."""


@dataclass(frozen=True)
class OpenWindow:
    window_id: uuid.UUID
    registration_id: uuid.UUID
    expires_at: datetime


async def window_for(
    agency: str, camera_id: uuid.UUID, window_id: uuid.UUID | None = None
) -> OpenWindow | None:
    """The window open now to `agency` that includes the camera, or that window only when `window_id` is given
    (None: there is none); Unreachable otherwise."""
    params = {"agency": agency, "camera_id": str(camera_id)}
    if window_id is not None:
        params["window_id"] = str(window_id)
    try:
        r = await client().get(
            _url("/v1/live-windows/check"),
            params=params,
            headers={"Authorization": f"Bearer {service_token()}"},
        )
    except httpx.HTTPError as exc:
        raise Unreachable(f"{SERVICE} unreachable: {type(exc).__name__}") from exc
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        raise Unreachable(f"{SERVICE} answered {r.status_code}")
    try:
        body: Any = r.json()
        return OpenWindow(
            uuid.UUID(body["window_id"]),
            uuid.UUID(body["registration_id"]),
            datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Unreachable(f"{SERVICE} did not answer with a window") from exc


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: uuid.UUID
    registration_id: uuid.UUID


async def agent_identity(credential: str) -> AgentIdentity | None:
    """The agent whose credential this is (None: not valid, revoked, or its registration deleted)."""
    try:
        r = await client().get(_url("/v1/edge-agents/me"), headers={"Authorization": f"Bearer {credential}"})
    except httpx.HTTPError as exc:
        raise Unreachable(f"{SERVICE} unreachable: {type(exc).__name__}") from exc
    if r.status_code in (401, 403):
        return None
    if r.status_code != 200:
        raise Unreachable(f"{SERVICE} answered {r.status_code}")
    try:
        body: Any = r.json()
        return AgentIdentity(uuid.UUID(body["agent_id"]), uuid.UUID(body["registration_id"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise Unreachable(f"{SERVICE} did not answer with an agent") from exc


async def owner_cameras(registration_id: uuid.UUID, credential: str) -> list[uuid.UUID] | None:
    """The registration's camera ids, read with the owner's own credential (None: registry_api refused it)."""
    try:
        r = await client().get(
            _url(f"/v1/registrations/{registration_id}"), headers={"Authorization": f"Bearer {credential}"}
        )
    except httpx.HTTPError as exc:
        raise Unreachable(f"{SERVICE} unreachable: {type(exc).__name__}") from exc
    if r.status_code in (401, 403, 404):
        return None
    if r.status_code == 429:
        raise Unreachable(f"{SERVICE} is refusing this client's guesses for a while")
    if r.status_code != 200:
        raise Unreachable(f"{SERVICE} answered {r.status_code}")
    try:
        return [uuid.UUID(c["id"]) for c in r.json()["properties"]["cameras"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise Unreachable(f"{SERVICE} did not answer with a registration") from exc
