"""Level 2 live sharing, owner-controlled: only the owner opens a window (the call a phone app or a panic button
makes), for a limited time, for chosen agencies; those agencies see the window's cameras only while it is open.
No agency is ever given a camera's own stream address: the video reaches it through Canvass's relay from the
owner's edge agent (edge_agents), which streams only while a window is open. A window closes by itself: openness is decided by the clock (`expires_at > now()`) at every read, so
no background job is needed for a window to end. Opening, closing and every view are audited.

An agency sees a window's cameras only while the registration is active and still shared with it, the camera's
live mode still allows the window's reason, and the camera lies in the agency's jurisdiction. Removing an agency
from the shares, or a camera's live mode no longer allowing the reason, takes it out of the open windows for good
(`narrow_open_windows`): re-sharing or switching the mode back never revives a window.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from sqlalchemy.engine import RowMapping

from services.registry_api import abuse
from services.registry_api.auditing import audit, owner_actor, principal_role
from services.registry_api.database import SessionDep
from services.registry_api.dependencies import LiveViewer, NoStore
from services.registry_api.repository import live_windows as repo
from services.registry_api.repository.agencies import agencies_by_slugs
from services.registry_api.repository.registrations import owned_registration
from services.registry_api.schemas import LiveWindowOpen, LiveWindowOut, LiveWindowSummary, LiveWindowView
from services.registry_api.shapes import iso, point_out
from shared.auth import CurrentOwner
from shared.errors import InvalidParam, Problem, problem_responses
from shared.links import CREATED_ID, link
from shared.settings import get_settings

owner_router = APIRouter(
    prefix="/v1/registrations/{registration_id}/live-windows",
    tags=["live sharing"],
    dependencies=[NoStore, abuse.RememberClient],
)
agency_router = APIRouter(prefix="/v1/live-windows", tags=["live sharing"], dependencies=[NoStore])

WINDOW_EXAMPLE = {
    "id": "2b7f1f0f-7a11-4e3c-9d52-4a519c1e3f0e",
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "reason": "emergency",
    "agencies": ["milwaukee-pd"],
    "cameras": ["1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"],
    "opened_at": "2026-11-21T15:00:00Z",
    "expires_at": "2026-11-21T15:30:00Z",
    "closed_at": None,
    "state": "open",
}
VIEW_EXAMPLE = {
    "id": "2b7f1f0f-7a11-4e3c-9d52-4a519c1e3f0e",
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "reason": "emergency",
    "opened_at": "2026-11-21T15:00:00Z",
    "expires_at": "2026-11-21T15:30:00Z",
    "cameras": [
        {
            "id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "location": {"type": "Point", "coordinates": [-87.90655, 43.03895]},
            "label": "front door",
            "direction_deg": 90,
            "viewing": {
                "href": "https://canvass.example.org/relay/v1/viewings",
                "method": "POST",
                "body": {"camera_id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"},
            },
        }
    ],
}


def _json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


def window_out(w: RowMapping) -> dict[str, Any]:
    return {
        "id": str(w["id"]),
        "registration_id": str(w["registration_id"]),
        "reason": w["reason"],
        "agencies": list(w["agencies"]),
        "cameras": [str(c) for c in w["camera_ids"]],
        "opened_at": iso(w["opened_at"]),
        "expires_at": iso(w["expires_at"]),
        "closed_at": iso(w["closed_at"]),
        "state": w["state"],
    }


def _validation(errors: list[InvalidParam]) -> Problem:
    return Problem(
        422,
        "; ".join(f"{e.pointer}: {e.reason}" for e in errors),
        kind="validation",
        title="Request validation failed",
        errors=errors,
    )


@owner_router.post(
    "",
    summary="Open a live-sharing window for chosen agencies, for a limited time (owner credential)",
    status_code=201,
    response_model=LiveWindowOut,
    responses={
        201: _json(WINDOW_EXAMPLE)
        | {
            "links": {
                "ListWindows": link(
                    "list_windows_v1_registrations__registration_id__live_windows_get",
                    "The registration's windows",
                    registration_id="$request.path.registration_id",
                ),
                "CloseWindow": link(
                    "close_window_v1_registrations__registration_id__live_windows__window_id__close_post",
                    "Close the window",
                    registration_id="$request.path.registration_id",
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
)
async def open_window(
    registration_id: uuid.UUID, body: LiveWindowOpen, owner: CurrentOwner, session: SessionDep
) -> Any:
    row = await owned_registration(session, registration_id, owner, lock=True)
    return await open_for(session, row, body, owner_actor(row["id"]), "owner")


async def open_for(
    session: SessionDep, row: Any, body: LiveWindowOpen, actor: str, role: str
) -> dict[str, Any]:
    """Open a window on the registration `row` (locked) for its owner: through the owner's credential, or the
    local trigger of the registration's edge agent (`actor`, `role` as audited)."""
    rid = row["id"]
    if row["status"] != "active":
        raise Problem(409, f"The registration is {row['status']}: make it active before sharing live.")
    shared = set(row["shared_with"])
    slugs = body.agencies or sorted(shared)
    not_shared = [
        InvalidParam(
            pointer=f"/body/agencies/{i}",
            reason=f"the registration is not shared with '{s}': add it to share_with first",
            code="not_shared",
            params={"agency": s},
        )
        for i, s in enumerate(slugs)
        if s not in shared
    ]
    if not_shared:
        raise _validation(not_shared)
    agency_ids = await agencies_by_slugs(session, slugs, "/body/agencies")
    cams = await repo.live_cameras(session, rid)
    allowed: list[str] = list(repo.MODES_FOR[body.reason])
    eligible = {c["id"] for c in cams if c["streamable"] and c["live_mode"] in allowed}
    if body.cameras is None:
        camera_ids = sorted(eligible)
        if not camera_ids:
            raise _validation(
                [
                    InvalidParam(
                        pointer="/body/cameras",
                        reason=(
                            f"no camera has a live endpoint (or an edge agent) and a live mode allowing an {body.reason} window "
                            f"(live_mode {' or '.join(allowed)})"
                        ),
                    )
                ]
            )
    else:
        mine = {c["id"]: c for c in cams}
        errors = []
        for i, cid in enumerate(body.cameras):
            c = mine.get(cid)
            if c is None:
                errors.append(InvalidParam(pointer=f"/body/cameras/{i}", reason=f"no camera {cid} here"))
            elif not c["streamable"]:
                errors.append(
                    InvalidParam(
                        pointer=f"/body/cameras/{i}",
                        reason="the camera has no live endpoint, and the registration no edge agent",
                    )
                )
            elif c["live_mode"] not in allowed:
                errors.append(
                    InvalidParam(
                        pointer=f"/body/cameras/{i}",
                        reason=f"its live mode '{c['live_mode']}' does not allow an {body.reason} window",
                    )
                )
        if errors:
            raise _validation(errors)
        camera_ids = sorted(set(body.cameras))
    wid = await repo.open_window(
        session, rid, camera_ids, sorted(agency_ids.values()), body.reason, body.duration_s
    )
    await audit(
        session,
        "live_window.open",
        actor=actor,
        role=role,
        agency=row["agency"],
        subject_type="live_window",
        subject_id=wid,
        details={
            "registration_id": str(rid),
            "agencies": sorted(slugs),
            "cameras": [str(c) for c in camera_ids],
            "reason": body.reason,
            "duration_s": body.duration_s,
        },
    )
    w = await repo.window(session, wid)
    assert w is not None
    await session.commit()
    return window_out(w)


@owner_router.get(
    "",
    summary="Your registration's live-sharing windows, open and past (owner credential)",
    response_model=list[LiveWindowOut],
    responses={200: _json([WINDOW_EXAMPLE]), **problem_responses(401, 429, 404)},
)
async def list_windows(registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep) -> Any:
    row = await owned_registration(session, registration_id, owner)
    return [window_out(w) for w in await repo.windows_of(session, row["id"], 200)]


@owner_router.post(
    "/{window_id}/close",
    summary="Close a live-sharing window now (owner credential)",
    response_model=LiveWindowOut,
    responses={200: _json({**WINDOW_EXAMPLE, "state": "closed"}), **problem_responses(401, 429, 404)},
)
async def close_window(
    registration_id: uuid.UUID, window_id: uuid.UUID, owner: CurrentOwner, session: SessionDep
) -> Any:
    row = await owned_registration(session, registration_id, owner)
    return await close_for(session, row, window_id, owner_actor(row["id"]), "owner")


async def close_for(
    session: SessionDep, row: Any, window_id: uuid.UUID, actor: str, role: str
) -> dict[str, Any]:
    """Close a window of the registration `row` now (as `open_for`, by its owner or its edge agent)."""
    if await repo.close_window(session, row["id"], window_id):
        await audit(
            session,
            "live_window.close",
            actor=actor,
            role=role,
            agency=row["agency"],
            subject_type="live_window",
            subject_id=window_id,
            details={"registration_id": str(row["id"])},
        )
    w = await repo.window(session, window_id, row["id"])
    if w is None:
        raise Problem(404, f"No live window {window_id} on this registration.")
    await session.commit()
    return window_out(w)


# --- what an agency sees ---------------------------------------------------------------------------------


@agency_router.get(
    "",
    summary="Live-sharing windows open to your agency right now (cameras are read one window at a time)",
    response_model=list[LiveWindowSummary],
    responses={
        200: _json(
            [
                {
                    "id": WINDOW_EXAMPLE["id"],
                    "registration_id": WINDOW_EXAMPLE["registration_id"],
                    "reason": "emergency",
                    "opened_at": WINDOW_EXAMPLE["opened_at"],
                    "expires_at": WINDOW_EXAMPLE["expires_at"],
                    "camera_count": 1,
                }
            ]
        ),
        **problem_responses(401, 403),
    },
)
async def open_to_me(principal: LiveViewer, session: SessionDep) -> Any:
    rows = await repo.windows_open_to(session, principal.agency or "", 500)
    return [
        {
            "id": str(w["id"]),
            "registration_id": str(w["registration_id"]),
            "reason": w["reason"],
            "opened_at": iso(w["opened_at"]),
            "expires_at": iso(w["expires_at"]),
            "camera_count": w["camera_count"],
        }
        for w in rows
    ]


@agency_router.get(
    "/{window_id}",
    summary="A live-sharing window's cameras, while it is open to your agency (audited; never their stream addresses)",
    response_model=LiveWindowView,
    responses={200: _json(VIEW_EXAMPLE), **problem_responses(401, 403, 404)},
)
async def view_window(window_id: uuid.UUID, principal: LiveViewer, session: SessionDep) -> Any:
    w, cams = await repo.window_open_to(session, principal.agency or "", window_id)
    if w is None or not cams:
        raise Problem(404, f"No live window {window_id} is open to your agency.")
    await audit(
        session,
        "live_window.view",
        actor=principal.sub,
        role=principal_role(principal, ("investigator", "supervisor", "cad")),
        agency=principal.agency,
        subject_type="live_window",
        subject_id=window_id,
        details={"registration_id": str(w["registration_id"]), "cameras": [str(c["id"]) for c in cams]},
    )
    await session.commit()
    viewings_url = get_settings().live_relay_url.rstrip("/") + "/v1/viewings"
    return {
        "id": str(w["id"]),
        "registration_id": str(w["registration_id"]),
        "reason": w["reason"],
        "opened_at": iso(w["opened_at"]),
        "expires_at": iso(w["expires_at"]),
        "cameras": [
            {
                "id": str(c["id"]),
                "location": point_out(c["lon"], c["lat"]),
                "label": c["label"],
                "direction_deg": c["direction_deg"],
                "viewing": {"href": viewings_url, "method": "POST", "body": {"camera_id": str(c["id"])}},
            }
            for c in cams
        ],
    }
