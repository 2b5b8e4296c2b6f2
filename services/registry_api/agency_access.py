"""What an agency may read of a registration: an owner's contact details (investigators and supervisors, with a
case number or a reason from a fixed list, audited), and the registrations of its program due for re-confirmation.

A registration an agency may not read is a 404, exactly like one that does not exist: agency Y learns nothing
about agency X's registrations.

Why a contact was read is kept in the audit trail, which is append-only and hash-chained: nothing in it can ever be
erased. So the trail holds no free text a person typed (where a victim's name or a telephone number would stay for
good): the case number, which leads an oversight board to the agency's case file (where the narrative lives, under
the agency's own retention and erasure rules), or, before a case has a number, a reason from `ContactReason`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.registry_api.auditing import audit, principal_role
from services.registry_api.database import SessionDep
from services.registry_api.dependencies import Investigator, NoStore, Outreach
from services.registry_api.repository.registrations import due_for_reconfirmation, readable_by
from services.registry_api.schemas import ContactRead, DueList, Slug
from services.registry_api.sealing import reg_context, unseal
from services.registry_api.shapes import contact_out, iso, point_out
from shared.errors import Problem, invalid, problem_responses
from shared.pagination import LimitQuery, clamp_limit, decode_cursor, encode_cursor, page_link

router = APIRouter(tags=["agency access"], dependencies=[NoStore])

CaseNumber = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/:#-]*$",
        description="The case this read is for",
        examples=["2026-004512"],
    ),
]


class ContactReason(StrEnum):
    """Why a contact is read before the case has a number: a fixed list, so the permanent trail keeps a code an
    oversight board can count and review, never words that could name someone."""

    imminent_threat = "imminent_threat"  # a threat to someone's life or safety, now
    missing_person = "missing_person"  # a missing or endangered person is being searched for
    incident_in_progress = "incident_in_progress"  # an incident is under way and no case number exists yet
    welfare_check = "welfare_check"  # someone's welfare at or near the registered place is being checked


Reason = Annotated[
    ContactReason | None,
    Query(
        description=(
            "Why, when there is no case number yet: one of a fixed list (no free text: the audit trail can never "
            "be erased, so it keeps no words a person typed; the case file holds the narrative)"
        ),
        examples=["welfare_check"],
    ),
]

CONTACT_EXAMPLE = {
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "agency": "milwaukee-pd",
    "owner_kind": "business",
    "business_name": "Water Street Bakery",
    "address": "123 N Water St, Milwaukee, WI",
    "contact": {
        "name": "Dana Rivera",
        "email": "dana@example.org",
        "phone": "+14145550123",
        "preferred_method": "email",
        "hours": "weekdays after 5 pm",
    },
    "notes_for_investigators": "Ring the side door.",
}


@router.get(
    "/v1/registrations/{registration_id}/contact",
    summary="Read an owner's contact details for a case (investigators; audited)",
    response_model=ContactRead,
    responses={
        200: {"content": {"application/json": {"example": CONTACT_EXAMPLE}}},
        **problem_responses(401, 403, 404),
    },
    description=(
        "Only for a registration that is active, shared with your agency, and has a camera in your agency's "
        "jurisdiction; anything else is a 404. Give a case number or, before the case has one, a `reason` from "
        "its list: every read is in the audit trail, which keeps the case number and the reason's code (never "
        "free text)."
    ),
)
async def read_contact(
    registration_id: uuid.UUID,
    principal: Investigator,
    session: SessionDep,
    case_number: CaseNumber = None,
    reason: Reason = None,
) -> Any:
    if case_number is None and reason is None:
        raise invalid("/query/case_number", "give the case number (or a reason) this contact read is for")
    # Opened before the read is audited: a key store out of reach reads nothing.
    found = await readable_by(session, principal.agency or "", registration_id)
    if found is None:
        raise Problem(404, f"No registration {registration_id}.")
    rid = found["id"]
    await audit(
        session,
        "registration.contact.read",
        actor=principal.sub,
        role=principal_role(principal, ("investigator", "supervisor")),
        agency=principal.agency,
        subject_id=rid,
        case_number=case_number,
        details={"reason": reason.value} if reason else {},
    )
    await session.commit()
    return {
        "registration_id": str(rid),
        "agency": found["agency"],
        "owner_kind": found["owner_kind"],
        "business_name": found["business_name"],
        "address": unseal(found["address_enc"], reg_context(rid, "address")),
        "contact": contact_out(found),
        "notes_for_investigators": found["notes_for_investigators"],
    }


DUE_EXAMPLE = {
    "items": [
        {
            "id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
            "status": "active",
            "owner_kind": "residential",
            "location": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
            "last_confirmed_at": "2025-11-01T15:00:00Z",
            "reconfirm_due_at": "2026-11-01T15:00:00Z",
            "preferred_contact_method": "email",
        }
    ],
    "links": [],
}


@router.get(
    "/v1/agencies/{slug}/reconfirmations-due",
    summary="Your program's registrations due for their annual re-confirmation",
    response_model=DueList,
    responses={
        200: {"content": {"application/json": {"example": DUE_EXAMPLE}}},
        **problem_responses(401, 403),
    },
)
async def reconfirmations_due(
    slug: Slug,
    request: Request,
    principal: Outreach,
    session: SessionDep,
    within_days: Annotated[
        int, Query(ge=0, le=3650, description="Also list those falling due within this many days")
    ] = 0,
    limit: LimitQuery = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From a `next` link")] = None,
) -> Any:
    if principal.agency != slug:
        raise Problem(403, f"Your token is for agency '{principal.agency}'; you may list only its program.")
    n = clamp_limit(limit, default=100, maximum=1000)
    after_at: datetime | None = None
    after_id: uuid.UUID | None = None
    if cursor:
        c = decode_cursor(cursor, ("at", "id"), times=("at",))
        try:
            after_at, after_id = c["at"], uuid.UUID(c["id"])
        except (TypeError, ValueError) as exc:
            raise invalid(
                "/query/cursor", "not a cursor this service issued", status=400, code="cursor_invalid"
            ) from exc
    after = (after_at, after_id) if after_at is not None and after_id is not None else None
    rows = await due_for_reconfirmation(session, slug, within_days, after, n + 1)
    items = [
        {
            "id": str(r["id"]),
            "status": r["status"],
            "owner_kind": r["owner_kind"],
            "location": point_out(r["lon"], r["lat"]),
            "last_confirmed_at": iso(r["last_confirmed_at"]),
            "reconfirm_due_at": iso(r["due"]),
            "preferred_contact_method": r["preferred_contact_method"],
        }
        for r in rows[:n]
    ]
    links = []
    if len(rows) > n:
        last = rows[n - 1]
        links.append(
            page_link(
                request,
                "next",
                "application/json",
                cursor=encode_cursor({"at": last["last_confirmed_at"].isoformat(), "id": str(last["id"])}),
            )
        )
    return {"items": items, "links": links}
