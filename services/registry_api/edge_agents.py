"""Edge agents: the program an owner runs at their site that streams a camera to Canvass's relay only while a live
window that includes it is open, so no agency ever learns the camera's own address.

The owner (management credential) asks for a one-time enrolment code for their registration, lists their agents
and revokes them; the agent redeems the code once for its own credential `cva_<agent id>_<secret>`, good for live
sharing of that one registration alone. Codes and credentials are stored only as SHA-256 hashes (they carry 256
random bits), expire or are revoked, go with the registration, and every check of one counts towards the guess
limits (abuse). The agent asks which of its cameras are in an open window now; the relay, a Canvass service, asks
whether a window open now to an agency includes a camera, and until when.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.security import HTTPAuthorizationCredentials

from services.registry_api import abuse
from services.registry_api.auditing import audit, owner_actor
from services.registry_api.database import SessionDep
from services.registry_api.dependencies import NoStore, ServiceCaller
from services.registry_api.live import WINDOW_EXAMPLE, close_for, open_for
from services.registry_api.registrations import narrow_windows
from services.registry_api.repository import edge_agents as repo
from services.registry_api.repository.registrations import owned_registration, registration_row
from services.registry_api.schemas import (
    AgentIdentity,
    AgentWindow,
    EdgeAgentCredential,
    EdgeAgentEnrol,
    EdgeAgentOut,
    EnrolmentCode,
    LiveWindowOpen,
    LiveWindowOut,
    Slug,
    WindowCheck,
)
from services.registry_api.shapes import iso
from shared.auth import CurrentOwner, bearer, hash_secret
from shared.errors import Problem, problem_responses
from shared.links import CREATED_ID, link

CODE_PREFIX = "cve_"
AGENT_PREFIX = "cva_"

owner_router = APIRouter(
    prefix="/v1/registrations/{registration_id}/edge-agents",
    tags=["live sharing"],
    dependencies=[NoStore, abuse.RememberClient],
)
agent_router = APIRouter(
    prefix="/v1/edge-agents", tags=["live sharing"], dependencies=[NoStore, abuse.RememberClient]
)
service_router = APIRouter(prefix="/v1/live-windows", tags=["live sharing"], dependencies=[NoStore])

CODE_EXAMPLE = {
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "code": "cve_bm90LWEtcmVhbC1jb2RlLWp1c3QtYW4tZXhhbXBsZQ",
    "expires_at": "2026-11-21T15:15:00Z",
}
AGENT_EXAMPLE = {
    "id": "2b7f1f0f-7a11-4e3c-9d52-4a519c1e3f0e",
    "created_at": "2026-11-21T15:02:00Z",
    "last_seen_at": "2026-11-21T16:40:12Z",
    "revoked_at": None,
}
CREDENTIAL_EXAMPLE = {
    "agent_id": "2b7f1f0f-7a11-4e3c-9d52-4a519c1e3f0e",
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "credential": "cva_2b7f1f0f7a114e3c9d524a519c1e3f0e_Zx3...secret",
    "issued_at": "2026-11-21T15:02:00Z",
}
CHECK_EXAMPLE = {
    "window_id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "camera_id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "agency": "milwaukee-pd",
    "expires_at": "2026-11-21T15:30:00Z",
}
AGENT_WINDOWS_EXAMPLE = [
    {
        "window_id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "expires_at": "2026-11-21T15:30:00Z",
        "cameras": ["1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"],
    }
]


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


def _agent_out(a: Any) -> dict[str, Any]:
    return {
        "id": str(a["id"]),
        "created_at": iso(a["created_at"]),
        "last_seen_at": iso(a["last_seen_at"]),
        "revoked_at": iso(a["revoked_at"]),
    }


# --- the owner -------------------------------------------------------------------------------------------


@owner_router.post(
    "",
    summary="A one-time code to enrol an edge agent for your registration (owner credential; shown once)",
    status_code=201,
    response_model=EnrolmentCode,
    responses={
        201: _json(CODE_EXAMPLE)
        | {
            "links": {
                "Enrol": {
                    "operationId": "enrol_v1_edge_agents_enrol_post",
                    "description": "The agent exchanges the code for its credential",
                    "requestBody": {"code": "$response.body#/code"},
                },
                "ListAgents": link(
                    "list_agents_v1_registrations__registration_id__edge_agents_get",
                    "The registration's edge agents",
                    registration_id="$request.path.registration_id",
                ),
            }
        },
        **problem_responses(401, 429, 404, 409),
    },
    description=(
        f"The code works once, within {repo.ENROLMENT_TTL_S // 60} minutes: the agent exchanges it for its own "
        f"credential (POST /v1/edge-agents/enrol). At most {repo.MAX_AGENTS} agents per registration are enrolled "
        "at a time (409 past that: revoke one first)."
    ),
)
async def new_enrolment_code(registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep) -> Any:
    row = await owned_registration(session, registration_id, owner, lock=True)
    if await repo.active_agent_count(session, row["id"]) >= repo.MAX_AGENTS:
        raise Problem(
            409, f"This registration has {repo.MAX_AGENTS} edge agents: revoke one before enrolling another."
        )
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    made = await repo.add_enrolment(session, row["id"], hash_secret(code))
    await audit(
        session,
        "edge_agent.enrolment_code",
        actor=owner_actor(row["id"]),
        role="owner",
        agency=row["agency"],
        subject_id=row["id"],
    )
    await session.commit()
    return {"registration_id": str(row["id"]), "code": code, "expires_at": iso(made["expires_at"])}


@owner_router.get(
    "",
    summary="Your registration's edge agents: enrolled, last seen, revoked (owner credential)",
    response_model=list[EdgeAgentOut],
    responses={200: _json([AGENT_EXAMPLE]), **problem_responses(401, 429, 404)},
)
async def list_agents(registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep) -> Any:
    row = await owned_registration(session, registration_id, owner)
    return [_agent_out(a) for a in await repo.agents_of(session, row["id"])]


@owner_router.delete(
    "/{agent_id}",
    summary="Revoke an edge agent: its credential stops working at once (owner credential)",
    status_code=204,
    responses={
        204: {
            "description": "Revoked (or revoked already)",
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id, as in the service's logs",
                    "schema": {"type": "string"},
                    "example": "d9095b48f0b547d3b3e13f2a2a86d0d5",
                }
            },
        },
        **problem_responses(401, 429, 404),
    },
)
async def revoke_agent(
    registration_id: uuid.UUID, agent_id: uuid.UUID, owner: CurrentOwner, session: SessionDep
) -> Response:
    row = await owned_registration(session, registration_id, owner, lock=True)
    revoked = await repo.revoke(session, row["id"], agent_id)
    if revoked is None:
        raise Problem(404, f"Registration {row['id']} has no edge agent {agent_id}.")
    if revoked:
        # A camera with no endpoint of its own was watchable through the agents: it leaves the open windows when
        # the last one goes (for good, as for any change that takes a camera out).
        await narrow_windows(session, row)
        await audit(
            session,
            "edge_agent.revoke",
            actor=owner_actor(row["id"]),
            role="owner",
            agency=row["agency"],
            subject_type="edge_agent",
            subject_id=agent_id,
            details={"registration_id": str(row["id"])},
        )
    await session.commit()
    return Response(status_code=204)


# --- the agent -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    id: uuid.UUID
    registration_id: uuid.UUID
    agency: str


def _parse(token: str) -> tuple[uuid.UUID, str] | None:
    if not token.startswith(AGENT_PREFIX):
        return None
    aid, sep, secret = token[len(AGENT_PREFIX) :].partition("_")
    if not sep or not secret or len(secret) > 100:
        return None
    try:
        return uuid.UUID(hex=aid), secret
    except ValueError:
        return None


async def current_agent(
    session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Agent:
    """The enrolled, unrevoked agent whose credential is the bearer (its registration still exists: the agent goes
    with it). A wrong, revoked or deleted one is a 401, and counts towards the guess limits."""
    parsed = _parse(creds.credentials) if creds else None
    unauthorized = Problem(
        401,
        "This operation needs an edge agent's credential (it may have been revoked).",
        headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
    )
    if parsed is None:
        raise unauthorized
    agent_id, secret = parsed
    await abuse.attempt()
    row = await repo.agent(session, agent_id)
    if row is None or not hmac.compare_digest(bytes(row["credential_hash"]), hash_secret(secret)):
        raise unauthorized
    await abuse.succeeded()
    await repo.seen(session, agent_id)
    return Agent(agent_id, row["registration_id"], row["agency"])


CurrentAgent = Annotated[Agent, Depends(current_agent)]


@agent_router.post(
    "/enrol",
    summary="Exchange a one-time enrolment code for the edge agent's credential (shown once)",
    status_code=201,
    response_model=EdgeAgentCredential,
    responses={
        201: _json(CREDENTIAL_EXAMPLE)
        | {
            "links": {
                "MyWindows": link(
                    "my_windows_v1_edge_agents_me_windows_get",
                    "Which of the agent's cameras are in an open window now",
                    **{"header.Authorization": "Bearer {$response.body#/credential}"},
                )
            }
        },
        **problem_responses(400, 429),
    },
)
async def enrol(body: EdgeAgentEnrol, session: SessionDep) -> Any:
    await abuse.attempt()
    rid = await repo.use_enrolment(session, hash_secret(body.code))
    if rid is None:
        raise Problem(
            400,
            "This enrolment code is not valid: it was used already, has expired, or was never issued.",
            kind="invalid-enrolment-code",
        )
    await abuse.succeeded()
    agent_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    made = await repo.add_agent(session, agent_id, rid, hash_secret(secret))
    await audit(
        session,
        "edge_agent.enrol",
        actor=f"edge_agent:{agent_id}",
        role="edge_agent",
        subject_type="edge_agent",
        subject_id=agent_id,
        details={"registration_id": str(rid)},
    )
    await session.commit()
    return {
        "agent_id": str(agent_id),
        "registration_id": str(rid),
        "credential": f"{AGENT_PREFIX}{agent_id.hex}_{secret}",
        "issued_at": iso(made["created_at"]),
    }


@agent_router.get(
    "/me/windows",
    summary="Which of your cameras are in a live window open now, and until when (edge agent credential)",
    response_model=list[AgentWindow],
    responses={200: _json(AGENT_WINDOWS_EXAMPLE), **problem_responses(401, 429)},
    description=(
        "Read a camera's stream only while it is listed here; ask again at `expires_at` at the latest (the owner "
        "may close a window sooner)."
    ),
)
async def my_windows(agent: CurrentAgent, session: SessionDep) -> Any:
    rows = await repo.agent_windows(session, agent.registration_id)
    await session.commit()  # the agent's last_seen_at
    return [
        {
            "window_id": str(w["id"]),
            "expires_at": iso(w["expires_at"]),
            "cameras": [str(c) for c in w["camera_ids"]],
        }
        for w in rows
    ]


@agent_router.get(
    "/me",
    summary="Who the edge agent is: its id and its registration (edge agent credential)",
    response_model=AgentIdentity,
    responses={
        200: _json({"agent_id": AGENT_EXAMPLE["id"], "registration_id": CODE_EXAMPLE["registration_id"]}),
        **problem_responses(401, 429),
    },
    description="What the relay asks, with the credential an agent presents to it, before it accepts the agent.",
)
async def me(agent: CurrentAgent, session: SessionDep) -> Any:
    await session.commit()  # the agent's last_seen_at
    return {"agent_id": str(agent.id), "registration_id": str(agent.registration_id)}


def _agent_actor(agent: Agent) -> str:
    return f"edge_agent:{agent.id}"


@agent_router.post(
    "/me/live-windows",
    summary="Open a live window on your registration: the owner's local trigger (edge agent credential)",
    status_code=201,
    response_model=LiveWindowOut,
    responses={
        201: _json(WINDOW_EXAMPLE)
        | {
            "links": {
                "CloseWindow": link(
                    "agent_close_window_v1_edge_agents_me_live_windows__window_id__close_post",
                    "Close the window",
                    window_id=CREATED_ID,
                ),
                "ViewWindow": link(
                    "view_window_v1_live_windows__window_id__get",
                    "An agency's view of the window (an agency user of a chosen agency)",
                    window_id=CREATED_ID,
                ),
            }
        },
        **problem_responses(401, 429, 404, 409),
    },
    description=(
        'What the owner\'s "manual trigger button" at the site does: the same window, with the same rules, as the '
        "owner opens with their management credential (POST /v1/registrations/{registration_id}/live-windows), on "
        "the agent's own registration and no other."
    ),
)
async def agent_open_window(body: LiveWindowOpen, agent: CurrentAgent, session: SessionDep) -> Any:
    row = await registration_row(session, agent.registration_id, lock=True, texts=False)
    if row is None:  # deleted since the credential was checked: the agent went with it
        raise Problem(404, "The agent's registration no longer exists.")
    return await open_for(session, row, body, _agent_actor(agent), "edge_agent")


@agent_router.post(
    "/me/live-windows/{window_id}/close",
    summary="Close a live window of your registration now (edge agent credential)",
    response_model=LiveWindowOut,
    responses={200: _json({**WINDOW_EXAMPLE, "state": "closed"}), **problem_responses(401, 429, 404)},
)
async def agent_close_window(window_id: uuid.UUID, agent: CurrentAgent, session: SessionDep) -> Any:
    row = await registration_row(session, agent.registration_id, texts=False)
    if row is None:
        raise Problem(404, "The agent's registration no longer exists.")
    return await close_for(session, row, window_id, _agent_actor(agent), "edge_agent")


# --- the relay -------------------------------------------------------------------------------------------


@service_router.get(
    "/check",
    summary="Whether a live window open now to an agency includes a camera, and until when (Canvass services only)",
    response_model=WindowCheck,
    responses={200: _json(CHECK_EXAMPLE), **problem_responses(401, 403, 404)},
    description=(
        "What the relay asks before it lets an agency's viewer watch a camera: a window open now to the agency "
        "that includes the camera, the registration active and shared with the agency, the camera's live mode "
        "allowing the window's reason and the camera in the agency's jurisdiction (as the agency's own view of "
        "the window). Of several such windows, the one that ends last; with `window_id`, that window only (a viewing "
        "belongs to the window it was granted in, and ends with it). 404 otherwise."
    ),
)
async def check_window(
    principal: ServiceCaller,
    session: SessionDep,
    agency: Annotated[Slug, Query(description="The viewer's agency (its slug)")],
    camera_id: Annotated[uuid.UUID, Query(description="The camera to be watched")],
    window_id: Annotated[uuid.UUID | None, Query(description="Only this window counts")] = None,
) -> Any:
    w = await repo.window_check(session, agency, camera_id, window_id)
    await session.rollback()
    if w is None:
        raise Problem(404, f"No live window open to '{agency}' includes camera {camera_id}.")
    return {
        "window_id": str(w["id"]),
        "registration_id": str(w["registration_id"]),
        "camera_id": str(camera_id),
        "agency": agency,
        "expires_at": iso(w["expires_at"]),
    }
