"""Agency routes: investigators create requests (validated against the agency's caps; targets from geo_query),
take them through their lifecycle (submit, approve or reject by another supervisor, send, cancel, close), read
them with the answers they may know, their history, their evidence, and set a legal hold."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from services.requests_api import service
from services.requests_api.database import SessionDep
from services.requests_api.dependencies import (
    IF_MATCH_REQUIRED,
    AgencyUser,
    Authorization,
    IdempotencyKey,
    RequiredIfMatch,
)
from services.requests_api.owner_texts import open_evidence
from services.requests_api.registry_client import agency_policy
from services.requests_api.repository import evidence as evidence_repo
from services.requests_api.repository import requests as requests_repo
from services.requests_api.responses import example, json_response
from services.requests_api.schemas import (
    REQUEST_EXAMPLE,
    EvidenceList,
    EvidenceOut,
    History,
    LegalHoldIn,
    RequestCreate,
    RequestList,
    RequestOut,
    RequestState,
    TransitionIn,
)
from services.requests_api.states import Actor
from shared import idempotency
from shared.auth import Principal, require_roles
from shared.concurrency import etag
from shared.errors import Problem, problem_responses
from shared.geojson import JSONResponse
from shared.links import CREATED_ID, link
from shared.pagination import LimitQuery, clamp_limit, decode_cursor, encode_cursor, page_link

router = APIRouter(prefix="/v1/requests", tags=["requests"])
# A new request's lifecycle: read it, take it through its states (with the ETag of the answer), its events and
# evidence, a legal hold.
REQUEST_LINKS = {
    "ReadRequest": link("read_v1_requests__request_id__get", "Read the request", request_id=CREATED_ID),
    "TakeTransition": link(
        "take_transition_v1_requests__request_id__transitions_post",
        "Send it, approve it, close it...",
        request_id=CREATED_ID,
        **{"header.If-Match": "$response.header.ETag"},
    ),
    "ReadEvents": link("events_v1_requests__request_id__events_get", "Its history", request_id=CREATED_ID),
    "ListEvidence": link(
        "list_evidence_v1_requests__request_id__evidence_get",
        "The footage uploaded for it",
        request_id=CREATED_ID,
    ),
    "SetLegalHold": link(
        "legal_hold_v1_requests__request_id__legal_hold_put", "Put it under legal hold", request_id=CREATED_ID
    ),
}
HoldSetter = Annotated[Principal, require_roles("supervisor", "agency_admin")]


async def _answer(
    session: Any, request_id: uuid.UUID, principal: Principal, status: int = 200, **headers: str
) -> Response:
    row = await service.request_row(session, request_id, principal.agency)
    body = await service.request_out(session, row, service.agency_role(principal))
    return json_response(body, status, {"ETag": etag(row["version"]), **headers})


@router.post(
    "",
    summary="Create a footage request (a draft): case, area, time window, message; its owners found by geo_query",
    status_code=201,
    response_model=RequestOut,
    responses={
        201: example(201, REQUEST_EXAMPLE | {"state": "draft"}, "Created")[201] | {"links": REQUEST_LINKS},
        200: example(
            200,
            REQUEST_EXAMPLE | {"state": "draft"},
            "Replayed: this Idempotency-Key created it before",
            model=RequestOut,
        )[200]
        | {"links": REQUEST_LINKS},
        **problem_responses(401, 403, 422, 502, 503, 504),
    },
    description=(
        "The area (a radius around the incident, or a polygon) and the time window must be within the agency's "
        "caps. The owners to ask are found by geo_query with your own token, under the case number: one target "
        "per owner, carrying their cameras with `footage_until` (when their recorder overwrites the start of the "
        "window), the most urgent first. With `camera_ids`, only those cameras' owners are asked. The request "
        "starts as a draft: submit it for approval, or send it where the agency's policy needs none. A retry "
        "with the same `Idempotency-Key`, by the same caller and with the same body, within the replay window "
        "(`CANVASS_IDEMPOTENCY_REPLAY_WINDOW_S`, 24 hours by default), answers 200 with the first answer's body "
        "and headers and `Idempotent-Replayed: true`; the same key with another body is a 422; another caller's key is theirs "
        "alone."
    ),
)
async def create(
    request: Request,
    body: RequestCreate,
    principal: AgencyUser,
    authorization: Authorization,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    assert principal.agency is not None
    scope = idempotency.principal_key(principal)
    digest = idempotency.request_hash(body.model_dump(mode="json")) if idempotency_key else b""
    if idempotency_key:
        stored = await _stored(session, idempotency_key, scope, digest)
        if stored is not None:
            return _replay(stored)
    policy = await agency_policy(principal.agency, authorization)
    rid = await service.create_request(session, body, principal, authorization, policy)
    row = await service.request_row(session, rid, principal.agency)
    out = await service.request_out(session, row, service.agency_role(principal))
    headers = {"ETag": etag(row["version"]), "Location": f"/v1/requests/{rid}"}
    response = json_response(out, 201, headers)
    if idempotency_key:
        # The answer is kept with the request, in its transaction: both commit or neither. A replay is the
        # same body and headers, with the status the contract gives a replay (200, as it always has).
        sealed, stored_headers = idempotency.seal(
            idempotency.Stored(200, bytes(response.body), headers), idempotency_key, scope
        )
        try:
            await requests_repo.keep_answer(
                session, idempotency_key, scope, digest, sealed, stored_headers, rid
            )
        except IntegrityError:
            # A concurrent create by the same caller with the same key committed first: answer as it did.
            await session.rollback()
            stored = await _stored(session, idempotency_key, scope, digest)
            if stored is not None:
                return _replay(stored)
            raise
    await session.commit()
    return response


async def _stored(session: Any, key: str, scope: str, digest: bytes) -> idempotency.Stored | None:
    row = await requests_repo.stored_answer(session, key, scope)
    return None if row is None else idempotency.replayed(row, key, scope, digest)


def _replay(stored: idempotency.Stored) -> Response:
    return JSONResponse(
        stored.body, status_code=stored.status, headers={**stored.headers, "Idempotent-Replayed": "true"}
    )


@router.get(
    "",
    summary="Your agency's requests, newest first",
    response_model=RequestList,
    responses=problem_responses(400, 401, 403),
)
async def list_requests(
    request: Request,
    principal: AgencyUser,
    session: SessionDep,
    state: Annotated[RequestState | None, Query(description="Only requests in this state")] = None,
    limit: LimitQuery = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From a `next` link")] = None,
) -> Response:
    n = clamp_limit(limit, default=50, maximum=500)
    after = None
    if cursor:
        c = decode_cursor(cursor, ("at", "id"), times=("at",))
        try:
            after = (c["at"], uuid.UUID(str(c["id"])))
        except ValueError as exc:
            raise Problem(400, "not a cursor this service issued") from exc
    rows = await requests_repo.page(session, principal.agency, state, after, n + 1)
    page = rows[:n]
    sums = await service.summaries(session, [r["id"] for r in page])
    items = [dict(r) | {"summary": sums[r["id"]]} for r in page]
    links = []
    if len(rows) > n:
        last = page[-1]
        links.append(
            page_link(
                request,
                "next",
                "application/json",
                cursor=encode_cursor({"at": last["created_at"].isoformat(), "id": str(last["id"])}),
            )
        )
    return json_response({"items": items, "links": links})


@router.get(
    "/{request_id}",
    summary="Read a request: its state, what it asks, and what the agency may know of the answers",
    response_model=RequestOut,
    responses={**example(200, REQUEST_EXAMPLE), **problem_responses(401, 403, 404)},
    description=(
        "Once sent, the request shows how many owners it reached, accepted, uploaded and did not fulfil; one by "
        "one only the owners who accepted. Who declined, ignored it or had no video is never shown."
    ),
)
async def read(request_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    return await _answer(session, request_id, principal)


@router.post(
    "/{request_id}/transitions",
    summary="Take the request to its next state: submit, approve, reject, send, cancel or close",
    response_model=RequestOut,
    responses={
        **example(200, REQUEST_EXAMPLE | {"state": "sent"}),
        **problem_responses(401, 403, 404, 409, 412, 428),
    },
    openapi_extra=IF_MATCH_REQUIRED,
    description=(
        "Allowed transitions: draft → submit → pending_approval → approve (sends it at once) or reject, by a "
        "supervisor other than the creator; draft → send where the agency needs no approval; cancel before it "
        "is finished; close once sent. Anything else is a 409. `If-Match` is required: a stale one is refused "
        "with 412, none with 428; of two concurrent writes of the request (transitions, legal hold) naming the "
        "same ETag one wins and the other gets a 412 (with `If-Match: *`, a transition the winner made "
        "impossible gets a 409)."
    ),
)
async def take_transition(
    request_id: uuid.UUID,
    body: TransitionIn,
    principal: AgencyUser,
    authorization: Authorization,
    session: SessionDep,
    if_match: RequiredIfMatch,
) -> Response:
    row = await service.request_for_update(session, request_id, principal.agency, if_match)
    actor = service.actor_of(principal)
    await service.transition(session, row, body.action, actor, body.note, authorization)
    await service.audit(
        session,
        f"request.{body.action}",
        actor,
        agency=row["agency"],
        subject_type="request",
        subject_id=row["id"],
        case_number=row["case_number"],
        details={"from": row["state"]},
    )
    await session.commit()
    return await _answer(session, request_id, principal)


@router.get(
    "/{request_id}/events",
    summary="The request's history: its transitions and those of the owners who shared; who, when, from, to, note",
    response_model=History,
    responses=problem_responses(401, 403, 404),
    description=(
        "Every transition of the request itself, and each sharing owner's from their accept onward (accept, "
        "upload, and what followed: completed, or unavailable or expired after accepting). Nothing of an owner "
        "who did not share (reading the request, declining, saying no video exists, letting it expire) is shown, "
        "counted or numbered: an owner's reading or declining changes nothing here (silent decline). `id` is the "
        "event's position in this history. An owner's `note` becomes null once that owner deletes their "
        "registration (what they wrote is theirs to take back); the event itself stays."
    ),
)
async def events(request_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    await service.request_row(session, request_id, principal.agency)
    return json_response({"request_id": request_id, "events": await service.history(session, request_id)})


@router.put(
    "/{request_id}/legal-hold",
    summary="Set or lift a legal hold: held evidence is never deleted by retention",
    response_model=RequestOut,
    responses={
        **example(200, REQUEST_EXAMPLE | {"legal_hold": True}),
        **problem_responses(401, 403, 404, 412, 428),
    },
    openapi_extra=IF_MATCH_REQUIRED,
)
async def legal_hold(
    request_id: uuid.UUID,
    body: LegalHoldIn,
    principal: HoldSetter,
    session: SessionDep,
    if_match: RequiredIfMatch,
) -> Response:
    row = await service.request_for_update(session, request_id, principal.agency, if_match)
    role = "supervisor" if principal.has("supervisor") else "agency_admin"
    actor = Actor(principal.sub, role, principal.agency)
    await requests_repo.set_legal_hold(
        session, request_id, body.legal_hold, actor=actor.sub, role=role, state=row["state"], note=body.note
    )
    await service.audit(
        session,
        "request.legal_hold",
        actor,
        agency=row["agency"],
        subject_type="request",
        subject_id=request_id,
        case_number=row["case_number"],
        details={"legal_hold": body.legal_hold},
    )
    await session.commit()
    return await _answer(session, request_id, principal)


@router.get(
    "/{request_id}/evidence",
    summary="The evidence owners uploaded for the request",
    response_model=EvidenceList,
    responses={
        **example(200, {"items": [EvidenceOut.model_config["json_schema_extra"]["examples"][0]]}),  # type: ignore[index]
        **problem_responses(401, 403, 404),
    },
)
async def list_evidence(request_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    await service.request_row(session, request_id, principal.agency)
    rows = await evidence_repo.of_request(session, request_id)
    return json_response({"items": await open_evidence(rows)})
