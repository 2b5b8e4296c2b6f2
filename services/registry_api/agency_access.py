"""What an agency may read of a registration: an owner's contact details (investigators and supervisors, with a
case number or reason, audited), and the registrations of its program due for re-confirmation.

A registration an agency may not read is a 404, exactly like one that does not exist: agency Y learns nothing
about agency X's registrations.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import text

from services.registry_api.database import SessionDep
from services.registry_api.dependencies import Investigator, NoStore, Outreach
from services.registry_api.schemas import ContactRead, DueList, Slug
from services.registry_api.service import (
    SEEN_BY_SQL,
    audit,
    contact_out,
    iso,
    point_out,
    principal_role,
    reg_context,
    unseal,
    with_owner_texts,
)
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
Reason = Annotated[
    str | None,
    Query(min_length=3, max_length=500, description="Why, when there is no case number yet"),
]

# The agency's jurisdiction is read once, as a copy (ST_SetSRID copies): the stored boundary is compressed
# (TOAST) and would be decompressed again for every camera it is tested against.
ME_SQL = """me AS MATERIALIZED (
    SELECT id, ST_SetSRID(jurisdiction, 4326) AS jurisdiction FROM registry.agencies WHERE slug = :me)"""
READABLE_SQL = f"""
WITH {ME_SQL}
SELECT r.*, a.slug AS agency
FROM registry.registrations r
JOIN me ON true
JOIN registry.agencies a ON a.id = r.agency_id
WHERE r.id = :id AND r.status = 'active'
  AND {SEEN_BY_SQL.format(reg="r.id", me="me")}
"""  # noqa: S608 - composed from constants; values are bound

# The program's registrations due, those the agency's searches find only (see SEEN_BY_SQL): one whose cameras all
# lie outside the jurisdiction, or that is paused, is not the agency's to see, here either.
DUE_SQL = f"""
WITH {ME_SQL}
SELECT r.id, r.status, r.owner_kind, ST_X(r.location) AS lon, ST_Y(r.location) AS lat,
       r.last_confirmed_at, r.preferred_contact_method,
       r.last_confirmed_at + make_interval(days => a.reconfirm_after_days) AS due
FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id JOIN me ON me.id = a.id
WHERE r.status <> 'withdrawn'
  AND r.last_confirmed_at
      < now() + make_interval(days => :within) - make_interval(days => a.reconfirm_after_days)
  AND (CAST(:after_at AS timestamptz) IS NULL
       OR (r.last_confirmed_at, r.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
  AND {SEEN_BY_SQL.format(reg="r.id", me="me")}
ORDER BY r.last_confirmed_at, r.id
LIMIT :n
"""  # noqa: S608 - composed from constants; values are bound

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


def _plain(value: str | None, pointer: str) -> None:
    if value is not None and ("\x00" in value or not value.isprintable()):
        raise invalid(pointer, "must be printable text")


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
        "jurisdiction; anything else is a 404. Give a case number or a reason: every read is in the audit trail."
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
    _plain(reason, "/query/reason")
    row = (
        (await session.execute(text(READABLE_SQL), {"me": principal.agency, "id": registration_id}))
        .mappings()
        .first()
    )
    if row is None:
        raise Problem(404, f"No registration {registration_id}.")
    found = await with_owner_texts(row)  # before the read is audited: a key store out of reach reads nothing
    rid = found["id"]
    await audit(
        session,
        "registration.contact.read",
        actor=principal.sub,
        role=principal_role(principal, ("investigator", "supervisor")),
        agency=principal.agency,
        subject_id=rid,
        case_number=case_number,
        details={"reason": reason} if reason else {},
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
            raise invalid("/query/cursor", "not a cursor this service issued", status=400) from exc
    rows = (
        (
            await session.execute(
                text(DUE_SQL),
                {"me": slug, "within": within_days, "after_at": after_at, "after_id": after_id, "n": n + 1},
            )
        )
        .mappings()
        .all()
    )
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
