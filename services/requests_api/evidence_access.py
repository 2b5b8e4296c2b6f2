"""Agency access to evidence: only the request's own agency (investigators and supervisors) reads it. A download
is checked against the SHA-256 taken at upload before the first byte leaves, and again as it streams. A file found
missing or altered by any access (download, verification, custody export) is an integrity failure: refused,
recorded in the item's custody chain and audited as `evidence.integrity_failure`, after which the custody export
says the chain is not intact. Every access is a custody record; the chain is exportable as JSON with its
verification."""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api import service
from services.requests_api.database import SessionDep, db
from services.requests_api.dependencies import AgencyUser
from services.requests_api.evidence import (
    INTEGRITY_FAILURES,
    FileMissing,
    append_custody,
    content_disposition,
    custody_records,
    hash_of,
    store,
)
from services.requests_api.owner_texts import open_evidence
from services.requests_api.repository import evidence as evidence_repo
from services.requests_api.responses import example, json_response
from services.requests_api.schemas import CustodyExport, EvidenceOut, VerifyOut
from services.requests_api.states import Actor
from shared.errors import Problem, problem_responses

log = logging.getLogger("canvass.requests.evidence")
router = APIRouter(prefix="/v1/evidence", tags=["evidence"])
EVIDENCE_EXAMPLE = EvidenceOut.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
PUBLIC_FIELDS = (
    "id",
    "request_id",
    "target_id",
    "sha256",
    "size_bytes",
    "media_type",
    "filename",
    "camera_id",
    "description",
    "uploaded_at",
    "deleted_at",
    "deleted_reason",
)


async def evidence_row(session: AsyncSession, evidence_id: uuid.UUID, agency: str | None) -> dict[str, Any]:
    """The item, its owner's texts opened (see owner_texts), for its agency only."""
    row = await evidence_repo.for_access(session, evidence_id)
    if row is None or row["agency"] != agency:
        raise Problem(404, f"No evidence {evidence_id}.")
    return (await open_evidence([row]))[0]


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in PUBLIC_FIELDS}


async def _record(
    session: AsyncSession,
    row: Mapping[str, Any],
    actor: Actor,
    action: str,
    outcome: str,
    sha: str | None,
    **details: Any,
) -> None:
    await append_custody(session, row["id"], actor, action, outcome, sha, details)
    # Every kind of integrity failure under one audit action, whichever access found it.
    failed = outcome in INTEGRITY_FAILURES
    await service.audit(
        session,
        "evidence.integrity_failure"
        if failed
        else f"evidence.{action}" + ("" if outcome == "ok" else f".{outcome}"),
        actor,
        agency=row["agency"],
        subject_type="evidence",
        subject_id=row["id"],
        case_number=row["case_number"],
        details={"outcome": outcome, "sha256": sha, **({"access": action} if failed else {}), **details},
    )


async def _check_file(session: AsyncSession, row: Mapping[str, Any], actor: Actor, action: str) -> str | None:
    """Hash the stored file of a live item: its SHA-256 when it is the evidence. When it is missing or other
    bytes, the integrity failure is recorded in the item's custody chain and audited (committed at once, so
    the refusal that follows cannot undo it), and None is answered."""
    try:
        actual, size = await hash_of(row["storage_key"])
    except FileMissing:
        # Retention marks an item deleted (and commits) before it deletes the file: an item deleted since it
        # was read is gone, not damaged.
        _gone_if_deleted(await evidence_row(session, row["id"], row["agency"]))
        await _record(session, row, actor, action, "file_missing", None, expected=row["sha256"])
    else:
        if actual == row["sha256"]:
            return actual
        await _record(
            session, row, actor, action, "hash_mismatch", actual, expected=row["sha256"], size_bytes=size
        )
    await session.commit()
    log.error("evidence %s failed its integrity check on %s", row["id"], action)
    return None


def _integrity_problem() -> Problem:
    return Problem(
        500,
        "The stored file is missing or no longer matches the SHA-256 taken when it was uploaded; it is not "
        "served. The failure is recorded in its chain of custody.",
        kind="evidence-integrity",
        title="Evidence integrity check failed",
    )


def _gone_if_deleted(row: Mapping[str, Any]) -> None:
    if row["deleted_at"] is not None:
        raise Problem(410, f"This evidence was deleted ({row['deleted_reason']}).", kind="gone")


async def _verify(session: AsyncSession, row: Mapping[str, Any], actor: Actor, action: str) -> str:
    _gone_if_deleted(row)
    actual = await _check_file(session, row, actor, action)
    if actual is None:
        raise _integrity_problem()
    return actual


@router.get(
    "/{evidence_id}",
    summary="An evidence item's record: hash, size, media type, upload time",
    response_model=EvidenceOut,
    responses={**example(200, EVIDENCE_EXAMPLE), **problem_responses(401, 403, 404)},
)
async def read_evidence(evidence_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    return json_response(public(await evidence_row(session, evidence_id, principal.agency)))


@router.get(
    "/{evidence_id}/content",
    summary="Download the footage (its SHA-256 is checked before and while it streams)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file as uploaded",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}, "example": ""}
            },
        },
        **problem_responses(401, 403, 404, 410, 500, 507),
    },
)
async def download(evidence_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    row = await evidence_row(session, evidence_id, principal.agency)
    actor = service.actor_of(principal)
    expected = await _verify(session, row, actor, "download")
    await _record(session, row, actor, "download", "ok", expected, size_bytes=row["size_bytes"])
    await session.commit()

    async def body() -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        try:
            async for chunk in store().open(row["storage_key"]):
                digest.update(chunk)
                yield chunk
        except FileMissing:
            pass
        if digest.hexdigest() != expected:
            # Changed (or removed) between the check and the transfer: record it and break the transfer, so
            # the client never holds a complete file that is not the evidence.
            async with db.sessions() as s:
                await _record(s, row, actor, "download", "hash_mismatch_in_transfer", digest.hexdigest())
                await s.commit()
            raise RuntimeError("evidence changed during download")

    return StreamingResponse(
        body(),
        media_type=row["media_type"],
        headers={
            "Content-Length": str(row["size_bytes"]),
            # The name was cleaned at upload; the header still carries any script (RFC 6266 / RFC 8187).
            "Content-Disposition": content_disposition(row["filename"] or f"{row['id']}"),
            "ETag": f'"{expected}"',
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(expected)).decode()}:",
            "X-Content-SHA256": expected,
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/{evidence_id}/verification",
    summary="Re-check the stored file against its SHA-256 (recorded in its custody chain)",
    response_model=VerifyOut,
    responses={
        **example(200, VerifyOut.model_config["json_schema_extra"]["examples"][0]),  # type: ignore[index]
        **problem_responses(401, 403, 404, 410, 500, 507),
    },
)
async def verify(evidence_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    row = await evidence_row(session, evidence_id, principal.agency)
    actor = service.actor_of(principal)
    actual = await _verify(session, row, actor, "verify")
    await _record(session, row, actor, "verify", "ok", actual)
    await session.commit()
    return json_response({"evidence_id": row["id"], "sha256": actual, "intact": True})


@router.get(
    "/{evidence_id}/custody",
    summary="Export the item's chain of custody as JSON (every access, hash-chained, with its verification)",
    response_model=CustodyExport,
    responses={
        **example(200, CustodyExport.model_config["json_schema_extra"]["examples"][0]),  # type: ignore[index]
        **problem_responses(401, 403, 404, 507),
    },
)
async def custody(evidence_id: uuid.UUID, principal: AgencyUser, session: SessionDep) -> Response:
    row = await evidence_row(session, evidence_id, principal.agency)
    actor = service.actor_of(principal)
    if row["deleted_at"] is None:
        # The export attests the item: its file is checked first, and a failure recorded (the chain then
        # reports it: `chain_intact` is false).
        try:
            await _check_file(session, row, actor, "custody_export")
        except Problem as exc:
            if exc.status != 410:
                raise
            row = await evidence_row(session, evidence_id, principal.agency)  # deleted meanwhile
    await service.audit(
        session,
        "evidence.custody_export",
        actor,
        agency=row["agency"],
        subject_type="evidence",
        subject_id=row["id"],
        case_number=row["case_number"],
    )
    await session.commit()
    records, intact = await custody_records(session, evidence_id)
    return json_response(
        {
            "evidence": public(row),
            "records": records,
            "chain_intact": intact,
            "exported_at": datetime.now(UTC),
        },
        headers={"Content-Disposition": f'attachment; filename="custody-{evidence_id}.json"'},
    )
