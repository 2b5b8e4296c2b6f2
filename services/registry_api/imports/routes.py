"""Bulk imports for integrators, over HTTP: `POST /v1/imports` spools the upload and answers 202 with a job; the
job (`GET /v1/imports/{job_id}`) shows its progress and outcome, and its report (`GET /v1/imports/{job_id}/report`)
lists every rejected feature and, once, the credentials of new owners the registry cannot mail (no email).

HTTP only: the handlers parse, authorise and answer, on the service's request pool (`database.db.pool()`, with
its statement timeout); the job itself runs in the background (`runner`).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.registry_api.database import db
from services.registry_api.dependencies import NO_STORE, IdempotencyKey
from services.registry_api.imports import delivery, jobs, retention
from services.registry_api.imports.formats import CSV, GEOJSON, GEOJSON_SEQ, media_type, parse_crs
from services.registry_api.imports.runner import runner
from services.registry_api.imports.schemas import (
    DESCRIPTION,
    JOB_EXAMPLE,
    REPORT_EXAMPLE,
    REQUEST_BODY,
    ImportJobOut,
    ImportReport,
    job_out,
)
from services.registry_api.imports.settings import import_settings
from shared.auth import Principal, require_roles
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import JSONResponse
from shared.links import CREATED_ID, link

router = APIRouter(prefix="/v1/imports", tags=["imports"])

Integrator = Annotated[Principal, require_roles("integrator", "agency_admin")]
MAX_UPLOAD_BYTES = 2 * 1024**3


def _job_response(row: Any, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(
        job_out(row),
        status_code=status,
        headers={"Location": f"/v1/imports/{row['id']}", **NO_STORE, **headers},
    )


def _principal_key(principal: Principal) -> str:
    return f"{principal.agency}:{principal.sub}"


@router.post(
    "",
    summary="Import registrations in bulk (GeoJSON, GeoJSON Text Sequences or CSV, any CRS) as a job",
    description=DESCRIPTION,
    status_code=202,
    response_model=ImportJobOut,
    responses={
        202: {
            "description": "The upload is stored and the job queued (or, with a replayed Idempotency-Key, the "
            "first job)",
            "headers": {"Location": {"description": "The job", "schema": {"type": "string"}}},
            "content": {"application/json": {"example": {**JOB_EXAMPLE, "status": "queued"}}},
            "links": {
                "ReadImport": link(
                    "read_import_v1_imports__job_id__get", "Follow the job", job_id=CREATED_ID
                ),
                "ReadImportReport": link(
                    "read_report_v1_imports__job_id__report_get", "Read the job's report", job_id=CREATED_ID
                ),
            },
        },
        **problem_responses(403, 413, 415),
    },
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def create_import(
    request: Request,
    principal: Integrator,
    crs: Annotated[
        str | None,
        Query(
            max_length=200,
            description="The CRS of the coordinates: an EPSG code or OGC URI (default WGS84 lon/lat)",
            examples=["EPSG:2263"],
        ),
    ] = None,
    mode: Annotated[
        Literal["all", "valid"],
        Query(description="all: write nothing if any feature is rejected; valid: write the valid features"),
    ] = "all",
    dry_run: Annotated[bool, Query(description="Validate and report, write nothing")] = False,
    credentials: Annotated[
        Literal["email", "report", "none"],
        Query(
            description="Where new owners without an email get their management credential: in the report "
            "(email, report) or nowhere (none); owners with an email are always mailed theirs"
        ),
    ] = "email",
    idempotency_key: IdempotencyKey = None,
) -> Response:
    kind = media_type(request.headers.get("content-type"))
    if kind is None:
        raise Problem(
            415,
            f"Content-Type '{request.headers.get('content-type', '')}' is not an import format: send "
            f"{GEOJSON}, {GEOJSON_SEQ} or {CSV}.",
        )
    if crs is not None:
        try:
            parse_crs(crs)
        except ValueError as exc:
            raise invalid("/query/crs", str(exc)) from exc
    pool = await db.pool()
    agency_id = await jobs.agency_id(pool, principal.agency)
    if agency_id is None:
        raise Problem(403, f"The token's agency '{principal.agency}' is not registered with Canvass.")
    job_id = uuid.uuid4()
    folder = import_settings().import_dir
    folder.mkdir(parents=True, exist_ok=True)
    spool = (folder / f"{job_id}.upload").resolve()
    size, digest = await _spool(request, spool)
    params = orjson.dumps([kind, crs, mode, dry_run, credentials]).decode()
    request_hash = hashlib.sha256(params.encode() + b"\x1f" + digest).digest()
    scope = _principal_key(principal)
    inserted = await jobs.insert_job(
        pool,
        job_id,
        agency_id,
        scope,
        kind,
        crs,
        mode,
        dry_run,
        credentials,
        idempotency_key,
        request_hash,
        str(spool),
        size,
        runner.instance,
    )
    if inserted is None:
        spool.unlink(missing_ok=True)
        assert idempotency_key is not None  # only a key names a job already
        return await _replay(pool, scope, idempotency_key, request_hash)
    runner.submit(job_id)
    return _job_response(await jobs.read_job(pool, job_id), 202)


async def _spool(request: Request, spool: Path) -> tuple[int, bytes]:
    """Write the request body to the spool file as it arrives: its size and SHA-256. An empty body is a 400."""
    digest = hashlib.sha256()
    size = 0
    try:
        with spool.open("wb") as f:
            async for block in request.stream():
                if block:
                    digest.update(block)
                    size += len(block)
                    f.write(block)
    except BaseException:
        await asyncio.to_thread(spool.unlink, missing_ok=True)
        raise
    if size == 0:
        await asyncio.to_thread(spool.unlink, missing_ok=True)
        raise Problem(400, "The request body is empty: send the file to import.")
    return size, digest.digest()


async def _replay(pool: asyncpg.Pool, scope: str, key: str, request_hash: bytes) -> Response:
    """The job a retried request's Idempotency-Key created, if the request is the same one."""
    first = await jobs.job_for_key(pool, scope, key)
    assert first is not None
    if bytes(first["request_hash"]) != request_hash:
        raise Problem(
            422,
            "This Idempotency-Key was used for a different import (another file or other parameters); use a "
            "new key for a new import.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused with another request",
        )
    row = await jobs.read_job(pool, first["id"])
    return _job_response(row, 202, **{"Idempotent-Replayed": "true"})


async def _job_for(pool: asyncpg.Pool, principal: Principal, job_id: uuid.UUID) -> Any:
    row = await jobs.read_job(pool, job_id)
    if row is None or row["agency"] != principal.agency:
        raise Problem(404, f"No import {job_id}.")
    if row["status"] in ("queued", "running") and await runner.claim_if_abandoned(job_id, pool):
        row = await jobs.read_job(pool, job_id)
    return row


@router.get(
    "/{job_id}",
    summary="An import job: its progress, counts and outcome",
    response_model=ImportJobOut,
    responses={
        200: {"content": {"application/json": {"example": JOB_EXAMPLE}}},
        **problem_responses(403, 404),
    },
)
async def read_import(job_id: uuid.UUID, principal: Integrator) -> Response:
    return _job_response(await _job_for(await db.pool(), principal, job_id))


@router.get(
    "/{job_id}/report",
    summary="An import's report: each rejected feature, and (once) the credentials delivered in the report",
    description=(
        "Rejected features in upload order, each with its index, line, the JSON Pointer of the offending member "
        "and the reason. The credentials of new owners without an email (never of an owner with one, who is "
        "mailed theirs) are in the first complete download only and are then deleted from the server; those "
        "not downloaded within 7 days are deleted too. Available while the job runs (rejections so far) and after it "
        "ends, for 30 days (`CANVASS_IMPORT_REPORT_TTL_S`): the reasons quote places and values of the upload, so "
        "an older report is deleted (410; the job and its counts stay)."
    ),
    response_model=ImportReport,
    responses={
        200: {"content": {"application/json": {"example": REPORT_EXAMPLE}}},
        **problem_responses(403, 404, 410),
    },
)
async def read_report(job_id: uuid.UUID, principal: Integrator) -> Response:
    pool = await db.pool()
    row = await _job_for(pool, principal, job_id)
    finished = row["status"] in ("succeeded", "failed")
    if retention.report_expired(row):
        await retention.purge_reports(pool)
        ttl_days = import_settings().report_ttl_s / 86400
        raise Problem(
            410,
            f"The report of import {job_id} was kept {ttl_days:g} days after the job ended and has been deleted; "
            f"the job and its counts remain at /v1/imports/{job_id}.",
            kind="gone",
        )
    if finished:
        await retention.purge_credentials(pool)
    body = delivery.report_body(pool, job_id, orjson.dumps(job_out(row)), finished)
    return StreamingResponse(body, media_type="application/json", headers=dict(NO_STORE))
