"""Whether a registration's edge agent is connected to the relay now, for its owner: the relay alone knows (an
agent's connection is held here, in memory), so the relay answers; registry_api alone knows the owner's credential,
so the relay asks it first — the owner's own list of agents (`GET /v1/registrations/{id}/edge-agents`, with the
owner's credential), naming the owner's address and proving itself with its service token, so that registry_api
counts a wrong credential as the owner's guess, not the relay's (as requests_api does)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.live_relay import registry
from services.live_relay.hub import hub
from shared.errors import Problem, problem_responses
from shared.settings import get_settings

SERVICE = registry.SERVICE
CLIENT_ADDRESS_HEADER = "X-Canvass-Client-Address"
SERVICE_AUTHORIZATION_HEADER = "X-Canvass-Service-Authorization"
owner_bearer = HTTPBearer(
    auto_error=False, scheme_name="OwnerCredential", description="The registration's management credential"
)
router = APIRouter(prefix="/v1/registrations/{registration_id}/edge-agents", tags=["edge agents"])


class AgentConnection(BaseModel):
    agent_id: uuid.UUID
    cameras: int = Field(description="How many cameras the agent said it can stream when it connected")


class Presence(BaseModel):
    registration_id: uuid.UUID
    connected: list[AgentConnection] = Field(
        description="The registration's edge agents connected to the relay now (none: the site is offline)"
    )


async def _owner_checked(request: Request, registration_id: uuid.UUID, credential: str) -> None:
    headers = {"Authorization": f"Bearer {credential}"}
    if request.client is not None:
        try:
            headers |= {
                CLIENT_ADDRESS_HEADER: request.client.host,
                SERVICE_AUTHORIZATION_HEADER: f"Bearer {registry.service_token()}",
            }
        except Problem:  # no service token: the guesses are counted as the relay's
            pass
    try:
        r = await registry.client().get(
            get_settings().registry_api_url.rstrip("/") + f"/v1/registrations/{registration_id}/edge-agents",
            headers=headers,
        )
    except httpx.HTTPError as exc:
        raise Problem(
            503, f"{SERVICE} unreachable: {type(exc).__name__}; retry shortly.", kind="unavailable"
        ) from exc
    if r.status_code == 200:
        return
    if r.status_code == 429:
        raise Problem(
            429,
            "Too many wrong credentials from your address; retry later.",
            kind="too-many-requests",
            headers={"Retry-After": r.headers.get("Retry-After", "60")},
        )
    if r.status_code == 404:
        raise Problem(404, f"No registration {registration_id} opens with this credential.")
    if r.status_code in (401, 403):
        raise Problem(
            401,
            "The management credential is not valid (it may have been rotated, or the registration deleted).",
            headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
        )
    raise Problem(503, f"{SERVICE} answered {r.status_code}; retry shortly.", kind="unavailable")


@router.get(
    "/connected",
    summary="Which of your registration's edge agents are connected to the relay now (owner credential)",
    response_model=Presence,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
                        "connected": [{"agent_id": "2b7f1f0f-7a11-4e3c-9d52-4a519c1e3f0e", "cameras": 2}],
                    }
                }
            }
        },
        **problem_responses(401, 404, 429, 503),
    },
    description=(
        "An agent is connected while it holds its one outbound connection to the relay: then an agency can watch "
        "its cameras during a window you open. The credential is checked by registry_api."
    ),
)
async def connected(
    request: Request,
    registration_id: uuid.UUID,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(owner_bearer)],
) -> Any:
    if creds is None:
        raise Problem(
            401,
            "This operation needs the registration's management credential as a bearer token.",
            headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
        )
    await _owner_checked(request, registration_id, creds.credentials)
    link = hub.agents.get(registration_id)
    return {
        "registration_id": str(registration_id),
        "connected": [] if link is None else [{"agent_id": str(link.id), "cameras": len(link.cameras)}],
    }
