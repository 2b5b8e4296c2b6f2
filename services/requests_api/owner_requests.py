"""Owner routes, with the registration's management credential: the requests that reached you (and nothing of
anyone else's), one request (reading it marks it viewed), your answer, and your evidence upload.

Declining is silent: the agency is told of accepts and uploads, and of an owner who accepted then finding the
footage unavailable, and never sees who declined.

What an owner writes (an answer's note, an upload's description and file name) is erased by the worker once they
delete their registration; it is kept only after registry_api confirms, again, that the registration still exists
(see `worker.erase_deleted_owners`)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from python_multipart.exceptions import MultipartParseError
from sqlalchemy.engine import RowMapping

from services.requests_api import outbox, service
from services.requests_api.config import config
from services.requests_api.database import SessionDep
from services.requests_api.dependencies import Authorization, Owner
from services.requests_api.evidence import TooLarge, Upload, append_custody, boundary_of, lock_content, store
from services.requests_api.owner_texts import (
    note_context,
    open_evidence,
    owner_key,
    seal_evidence_texts,
)
from services.requests_api.registry_client import verify_owner
from services.requests_api.repository import evidence as evidence_repo
from services.requests_api.repository import requests as requests_repo
from services.requests_api.repository import targets as targets_repo
from services.requests_api.responses import example, json_response
from services.requests_api.schemas import (
    OWNER_EXAMPLE,
    EvidenceOut,
    OwnerAnswer,
    OwnerRequestList,
    OwnerRequestOut,
)
from services.requests_api.states import SHARING_ANSWERS, transition_target
from shared.auth import OwnerCredential
from shared.errors import Problem, invalid, problem_responses
from shared.links import CREATED_ID, link

router = APIRouter(prefix="/v1/owner", tags=["owners"])
UPLOAD_PREFIX = "/v1/owner/evidence"
# What the requesting agency does with an uploaded file (with an agency user's token, not the owner's).
EVIDENCE_LINKS = {
    "ReadEvidence": link("read_evidence_v1_evidence__evidence_id__get", "Its record", evidence_id=CREATED_ID),
    "DownloadEvidence": link(
        "download_v1_evidence__evidence_id__content_get",
        "The file, checked against its hash",
        evidence_id=CREATED_ID,
    ),
    "VerifyEvidence": link(
        "verify_v1_evidence__evidence_id__verification_post",
        "Check the stored file's hash",
        evidence_id=CREATED_ID,
    ),
    "ReadCustody": link(
        "custody_v1_evidence__evidence_id__custody_get", "Its chain of custody", evidence_id=CREATED_ID
    ),
    "OwnerRequest": link(
        "my_request_v1_owner_requests__request_id__get",
        "The owner's view of the request",
        request_id="$request.path.request_id",
    ),
}


@router.get(
    "/requests",
    summary="The footage requests that reached your registration",
    response_model=OwnerRequestList,
    responses={**example(200, {"items": [OWNER_EXAMPLE]}), **problem_responses(401, 503)},
)
async def my_requests(owner: Owner, session: SessionDep) -> Response:
    rows = await requests_repo.reaching_owner(session, owner.registration_id, 200)
    items = []
    for rid in rows:
        req = await service.request_row(session, rid, None)
        target = await service.owner_target(session, rid, owner.registration_id)
        items.append(await service.owner_view(session, req, target))
    return json_response({"items": items})


@router.get(
    "/requests/{request_id}",
    summary="One request that reached you (reading it marks it viewed)",
    response_model=OwnerRequestOut,
    responses={**example(200, OWNER_EXAMPLE), **problem_responses(401, 404, 503)},
)
async def my_request(request_id: uuid.UUID, owner: Owner, session: SessionDep) -> Response:
    target = await service.owner_target(session, request_id, owner.registration_id)
    req = await service.request_row(session, request_id, None)
    if req["state"] == "sent" and target["state"] == "notified":
        try:
            await transition_target(
                session,
                request_id,
                target["id"],
                "notified",
                "view",
                service.owner_actor(owner.registration_id),
            )
            await session.commit()
        except Problem:  # answered concurrently: nothing to mark
            await session.rollback()
        target = await service.owner_target(session, request_id, owner.registration_id)
    return json_response(await service.owner_view(session, req, target))


@router.post(
    "/requests/{request_id}/answer",
    summary="Answer a request: accept (then upload), decline (silently), or say the video is unavailable",
    response_model=OwnerRequestOut,
    responses={
        **example(200, OWNER_EXAMPLE | {"state": "accepted"}),
        **problem_responses(401, 404, 409, 503),
    },
)
async def answer(
    request_id: uuid.UUID, body: OwnerAnswer, owner: Owner, authorization: Authorization, session: SessionDep
) -> Response:
    target = await service.owner_target(session, request_id, owner.registration_id)
    req = await service.request_row(session, request_id, None)
    if req["state"] != "sent":
        raise Problem(409, f"This request is {req['state']}: it takes no more answers.", kind="conflict")
    actor = service.owner_actor(owner.registration_id)
    # An owner's note is their free text (personal data). Only a sharing answer's note is kept, for the agency
    # to read with it; a decline's or an 'unavailable' is dropped here, never stored: the agency never sees it,
    # so nothing would be gained by keeping what the owner may later want erased.
    note = body.note if body.answer in SHARING_ANSWERS else None
    if note is not None:
        # The credential is asked about again before the note is written, with the target held (see
        # `_still_registered`): a deleted owner's words never reach the database.
        await targets_repo.lock(session, target["id"])
        await _still_registered(owner, authorization)
    # The note is sealed under the owner's data key (see owner_texts), never written in plain text.
    note_enc = (
        (await owner_key(owner.registration_id)).seal(note, note_context(target["id"])) if note else None
    )
    to = await transition_target(
        session, request_id, target["id"], target["state"], body.answer, actor, note_enc=note_enc
    )
    if to == "video_unavailable" and target["state"] == "accepted":
        # The agency saw this owner accept and waits for footage: it is told the footage proved unavailable
        # (an 'unavailable' without an accept before it stays as silent as a decline).
        summary = (await service.summaries(session, [request_id]))[request_id]
        await outbox.enqueue_agency(session, req, "target.unavailable", summary, target_id=target["id"])
    if to == "accepted":
        summary = (await service.summaries(session, [request_id]))[request_id]
        await outbox.enqueue_agency(session, req, "target.accepted", summary, target_id=target["id"])
        await service.audit(
            session,
            "target.accept",
            actor,
            agency=req["agency"],
            subject_type="request",
            subject_id=request_id,
            details={"target_id": str(target["id"])},
        )
    await session.commit()
    target = await service.owner_target(session, request_id, owner.registration_id)
    return json_response(await service.owner_view(session, req, target))


@router.post(
    "/evidence/{request_id}",
    summary="Upload footage for a request you accepted (multipart/form-data, part 'file'); answers its SHA-256",
    status_code=201,
    response_model=EvidenceOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": "The footage"},
                            "camera_id": {"type": "string", "format": "uuid", "description": "Which camera"},
                            "description": {"type": "string", "maxLength": 2000},
                        },
                    },
                    "example": {
                        "file": "(the footage file's bytes)",
                        "camera_id": "5b0e3f5e-8d44-4d39-9c52-2b1f0d3a9f10",
                        "description": "Driveway camera, 22:05 to 22:25",
                    },
                }
            },
        }
    },
    responses={
        201: example(201, EvidenceOut.model_config["json_schema_extra"]["examples"][0], "Stored")[201]  # type: ignore[index]
        | {"links": EVIDENCE_LINKS},
        **problem_responses(400, 401, 404, 409, 413, 415, 422, 503, 507),
    },
    description=(
        "The file is streamed to storage as it arrives and hashed (SHA-256) on the way; the hash in the answer is "
        "what the agency's download will be checked against. Size and media types are capped by configuration. "
        "A body cut short (no closing boundary) or malformed is refused (400) and nothing is stored. The file "
        "name is cleaned for use (its last path component, without control characters, at most 255 characters); "
        "the name as sent is kept as data. A store that cannot keep the file answers 507."
    ),
)
async def upload(
    request: Request, request_id: uuid.UUID, owner: Owner, authorization: Authorization, session: SessionDep
) -> Response:
    boundary = boundary_of(request.headers.get("content-type"))
    target = await service.owner_target(session, request_id, owner.registration_id)
    req = await service.request_row(session, request_id, None)
    if req["state"] != "sent" or target["state"] not in ("accepted", "uploaded"):
        raise Problem(
            409,
            "Accept the request before uploading (and upload while it is open)."
            if req["state"] == "sent"
            else f"This request is {req['state']}: it takes no more uploads.",
            kind="conflict",
        )
    # No transaction stays open while the file streams in.
    await session.rollback()
    cfg = config()
    up = Upload(cfg.evidence_media_types)
    try:
        staged = await store().stage(up.file_chunks(request.stream(), boundary), cfg.evidence_max_bytes)
    except TooLarge as exc:
        raise Problem(413, f"The file is larger than the {cfg.evidence_max_bytes:,} bytes accepted.") from exc
    except MultipartParseError as exc:
        raise Problem(400, "The multipart body could not be parsed.", kind="bad-request") from exc
    # Until it is published (below, under its content lock, in the transaction that references it), the file
    # is this upload's own part: a failure discards only that, never an object another upload may be using.
    evidence_id = uuid.uuid4()
    try:
        camera_id = _checked_fields(up, staged.size, target)
        locked = await targets_repo.lock(session, target["id"])
        state = await requests_repo.state_of(session, request_id)
        if state != "sent" or locked not in ("accepted", "uploaded"):
            raise Problem(409, "The request changed while the file was uploading; it takes no more uploads.")
        texts = {
            "filename": up.filename,
            "original_filename": up.original_filename,
            "description": up.fields.get("description") or None,
        }
        sealed: dict[str, Any] = {f"{f}_enc": None for f in texts}
        if any(v is not None for v in texts.values()):
            await _still_registered(owner, authorization)
            # Sealed under the owner's data key before anything is written (a key store out of reach: 503).
            sealed = seal_evidence_texts(await owner_key(owner.registration_id), evidence_id, texts)
        await lock_content(session, staged.key)
        await store().publish(staged)
    except BaseException:
        await session.rollback()
        await store().discard(staged)
        raise
    # From here the object is published: if this transaction fails to commit, the janitor finds it unused.
    await evidence_repo.add(
        session,
        id=evidence_id,
        rid=request_id,
        tid=target["id"],
        sha=staged.sha256,
        size=staged.size,
        mt=up.media_type,
        fn=sealed["filename_enc"],
        ofn=sealed["original_filename_enc"],
        cam=camera_id,
        desc=sealed["description_enc"],
        key=staged.key,
    )
    actor = service.owner_actor(owner.registration_id)
    actor_here = type(actor)(actor.sub, actor.role, req["agency"])
    await append_custody(
        session,
        evidence_id,
        actor_here,
        "upload",
        "ok",
        staged.sha256,
        {"size_bytes": staged.size, "media_type": up.media_type},
    )
    if locked == "accepted":
        await transition_target(session, request_id, target["id"], "accepted", "upload", actor)
        summary = (await service.summaries(session, [request_id]))[request_id]
        await outbox.enqueue_agency(session, req, "target.uploaded", summary, target_id=target["id"])
    await service.audit(
        session,
        "evidence.upload",
        actor,
        agency=req["agency"],
        subject_type="evidence",
        subject_id=evidence_id,
        case_number=req["case_number"],
        details={"request_id": str(request_id), "sha256": staged.sha256, "size_bytes": staged.size},
    )
    await session.commit()
    row = await evidence_repo.one(session, evidence_id)
    return json_response((await open_evidence([row]))[0], 201, {"Location": f"/v1/evidence/{evidence_id}"})


async def _still_registered(owner: OwnerCredential, authorization: str) -> None:
    """Before an owner's free text is written: registry_api is asked again (the request's own check may be a
    long upload ago), while this transaction holds the owner's target, so that an owner who has deleted the
    registration meanwhile leaves nothing the worker would no longer erase (see `worker.erase_deleted_owners`);
    else 401."""
    await verify_owner(owner, authorization.partition(" ")[2].strip())


def _checked_fields(up: Upload, size: int, target: RowMapping) -> uuid.UUID | None:
    """The upload's parts checked once the body is read; the camera it names, if any."""
    if up.original_filename:  # the name as sent is data; PostgreSQL's text cannot hold NUL
        up.original_filename = up.original_filename.replace("\x00", "\ufffd")
    if not up.file_seen or size == 0:
        raise invalid("/body/file", "send the footage in a non-empty part named 'file'")
    # Text PostgreSQL cannot store (NUL) would otherwise fail the insert after the file is stored.
    if up.fields.get("description") and "\x00" in up.fields["description"]:
        raise invalid("/body/description", "must not contain NUL characters", code="text_invalid")
    if len(up.fields.get("description", "")) > 2000:
        raise invalid(
            "/body/description",
            "at most 2000 characters",
            code="string_too_long",
            params={"max_length": 2000},
        )
    raw_camera = up.fields.get("camera_id", "").strip()
    if not raw_camera:
        return None
    try:
        camera_id = uuid.UUID(raw_camera)
    except ValueError as exc:
        raise invalid("/body/camera_id", "not a UUID") from exc
    if str(camera_id) not in {c["camera_id"] for c in service.cameras_of(target)}:
        raise invalid("/body/camera_id", "not one of your cameras this request concerns")
    return camera_id
