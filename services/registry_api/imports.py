"""Bulk imports for integrators: `POST /v1/imports` spools the upload and answers 202 with a job; the job
(`GET /v1/imports/{job_id}`) shows its progress and outcome, and its report (`GET /v1/imports/{job_id}/report`)
lists every rejected feature and, once, the credentials of new owners the registry cannot mail (no email)."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.registry_api.dependencies import NO_STORE, IdempotencyKey
from services.registry_api.import_jobs import (
    JOB_SQL,
    credential_context,
    import_dir,
    report_ttl_seconds,
    runner,
    stream_report_rows,
)
from services.registry_api.import_parsing import CSV, GEOJSON, GEOJSON_SEQ, media_type, parse_crs
from shared.auth import Principal, require_roles
from shared.crypto import keyring
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import JSONResponse
from shared.links import CREATED_ID, link

router = APIRouter(prefix="/v1/imports", tags=["imports"])

Integrator = Annotated[Principal, require_roles("integrator", "agency_admin")]
MAX_UPLOAD_BYTES = 2 * 1024**3

CSV_EXAMPLE = (
    "external_id,lon,lat,email,phone,owner_kind,business_name,direction_deg,fov_deg,range_m,placement,"
    "retention_days,recording\n"
    "shop-0001,-87.9065,43.0389,dana@example.org,,business,Water Street Bakery,90,110,20,outdoor,30,motion\n"
    "home-0002,-87.9071,43.0392,,(414) 555-0123,residential,,180,90,15,outdoor,14,continuous\n"
)
CSV_STATE_PLANE_EXAMPLE = "external_id,x,y,email\nshop-0001,2554412.3,385210.8,dana@example.org\n"
FEATURE_EXAMPLE: dict[str, Any] = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "properties": {
        "external_id": "shop-0001",
        "contact_email": "dana@example.org",
        "owner_kind": "business",
        "business_name": "Water Street Bakery",
        "direction_deg": 90,
        "fov_deg": 110,
        "range_m": 20,
        "placement": "outdoor",
        "retention_days": 30,
        "recording": "motion",
    },
}
FEATURE_CAMERAS_EXAMPLE: dict[str, Any] = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "properties": {
        "external_id": "school-0007",
        "contact": {"name": "Front office", "email": "office@school.example.org"},
        "owner_kind": "school",
        "cameras": [
            {"location": {"type": "Point", "coordinates": [-87.90655, 43.03895]}, "direction_deg": 0},
            {"location": {"type": "Point", "coordinates": [-87.90645, 43.03885]}, "direction_deg": 180},
        ],
    },
}

DESCRIPTION = f"""
Import registrations in bulk into **your agency's program** (the `agency` of your token; roles `integrator` or
`agency_admin`). The upload is streamed to disk and processed as a job: the answer is `202 Accepted` with the job
(`Location: /v1/imports/{{job_id}}`), which shows progress (`read`, `valid`, `rejected`, `written`) until it
`succeeded` or `failed`; `GET /v1/imports/{{job_id}}/report` then lists each rejected feature (index, line, JSON
pointer of the member, reason).

**Formats** (`Content-Type`):
- `application/geo+json`: a FeatureCollection, read a feature at a time (any size, up to 2 GB).
- `application/geo+json-seq`: GeoJSON Text Sequences (RFC 8142): each Feature preceded by RS (0x1E); without
  any RS, one Feature per line.
- `text/csv`: a header row, then one registration with one camera per row. Columns: `external_id`, `lon` and
  `lat` (or `x` and `y` with `?crs=`), `email`, `phone`, `phone_region`, `name`, `preferred_method`,
  `contact_hours`, `owner_kind`, `business_name`, `address`, `notes_for_investigators`, `terms_version`,
  `terms_accepted_at`, `share_with` (slugs separated by `;`), and the camera's `label`, `direction_deg`,
  `fov_deg`, `range_m`, `placement`, `covers` (separated by `;`), `retention_days`, `recording`, `schedule`,
  `shares_history`, `live_mode`, `live_endpoint`. Empty cells are absent values. For example:

```
{CSV_EXAMPLE}```

**A feature** is a registration: its Point geometry is where the property is, and its properties carry what the
body of `POST /v1/registrations` carries (`contact`, `owner_kind`, `business_name`, `address`, `cameras`,
`notes_for_investigators`, `terms`, `share_with`), plus **`external_id`**, your own id for the registration
(the Feature's `id` when the property is absent). Contact members may be flat (`contact_email`, `contact_phone`,
`contact_name`, ...), and one camera's members may be flat (`direction_deg`, `fov_deg`, ...). Each feature is
validated exactly as a single registration is, and every point must lie in your agency's jurisdiction.

**Idempotent**: a feature whose `external_id` was imported before updates that registration instead of creating
another. An update changes what the integrator keeps (location, owner kind, business name, address, notes,
terms, and each camera's physical description) and never what the owner controls: the registration's status
and credential, its **contact** (name, email, phone, contact hours and preferred method: the feature's contact
is validated but ignored on an update; the owner changes it with their credential), the agencies it is shared
with (`share_with` is ignored on an update), and each camera's live mode, live endpoint and `shares_history`.
Cameras are matched by their place in your list: the feature's camera *i* updates the camera an import created
as camera *i* of that registration, or is added when there is none — unless its owner removed the camera an
import created there: a removed camera is not added back. Cameras the owner added are never changed by an import,
and **no camera is ever removed** by one (a camera no longer listed stays; the owner removes cameras).
The owner's recorded consent (`terms.accepted_at`) is kept unless the feature's terms version differs from the
registration's, and a feature that changes nothing leaves its registration exactly as it was (its `version`
and ETag too; `updated` counts it all the same). A new `owner_kind` applies to every camera of the registration,
listed or not.
**An owner's deletion sticks**: a feature whose `external_id` names a registration its owner deleted is rejected
(the report says so; remove it from your list), so a nightly sync never registers that owner again; with
`mode=all` that fails the import, as any rejected feature does. Canvass keeps only a keyed hash of that
`external_id`. An `Idempotency-Key` makes a retried request return the first job
instead of starting a second one.

**Live sharing is never imported**: only an owner turns it on. A feature's `live_mode` and `live_endpoint` are
validated as a single registration's are, but new cameras start with live sharing off (`never`), and updated
cameras keep the owner's setting.

**CRS**: `?crs=` takes an EPSG code (`2263`, `EPSG:2263`) or an OGC URI; the default is WGS84 longitude/latitude.
A FeatureCollection's legacy `crs` member (before its features) is honoured; one that disagrees with `?crs=`
fails the job.

**Modes**: `mode=all` (default) writes nothing if any feature is rejected; `mode=valid` writes the valid ones.
`dry_run=true` validates everything and writes nothing. Either way the registrations are written by one
transaction, which merges each staged chunk as the upload is read and commits only at the end: a job that
fails, or whose process stops, leaves nothing half-written (a stopped job is resumed by the next process).

**Credentials**: each new registration gets a management credential, which belongs to its owner. **Every owner
with an email is mailed theirs** after the import commits, whatever `credentials=` says: the integrator never
receives it. Only owners without an email get theirs in the report: `credentials=email` (default) and
`credentials=report` return those once, in the first download of the report, after which they are deleted;
with `credentials=none` nobody receives them. A credential not delivered within 7 days of the job's end (a
report never downloaded) is deleted, and so is one whose registration was deleted meanwhile.
"""


class ImportCounts(BaseModel):
    read: int = Field(description="Features read from the upload so far", examples=[100000])
    valid: int = Field(description="Features that passed validation", examples=[99998])
    rejected: int = Field(description="Features refused (see the report)", examples=[2])
    created: int = Field(
        description="Registrations created (or that a dry run would create)", examples=[99000]
    )
    updated: int = Field(description="Registrations updated (or that a dry run would update)", examples=[998])
    written: int = Field(
        description="Registrations written: created + updated, 0 for a dry run", examples=[99998]
    )


class ImportJobOut(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed"]
    phase: Literal["receiving", "staging", "merging", "done"]
    agency: str = Field(examples=["milwaukee-pd"])
    media_type: str = Field(examples=["application/geo+json"])
    crs: str | None = Field(None, examples=["EPSG:2263"])
    mode: Literal["all", "valid"]
    dry_run: bool
    credentials: Literal["email", "report", "none"]
    bytes: int = Field(examples=[31457280])
    counts: ImportCounts
    error: str | None = Field(None, description="Why the job failed; nothing was written")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    links: list[dict[str, str]]


class ImportRejectionOut(BaseModel):
    index: int = Field(description="0-based position of the feature (or CSV data row) in the upload")
    line: int | None = Field(None, description="1-based line where it starts")
    external_id: str | None = None
    pointer: str = Field(description="JSON Pointer into the feature (or /column of a CSV row)")
    reason: str


class ImportCredentialOut(BaseModel):
    external_id: str
    registration_id: uuid.UUID
    credential: str


class ImportReport(BaseModel):
    job: ImportJobOut
    rejected: list[ImportRejectionOut]
    credentials: list[ImportCredentialOut] = Field(
        description="New owners without an email (unless credentials=none): shown in the first download only;"
        " owners with an email are mailed theirs"
    )


JOB_EXAMPLE: dict[str, Any] = {
    "id": "0b7e4c1a-2f5d-4e8b-9a61-3c2d1e0f9a8b",
    "status": "running",
    "phase": "staging",
    "agency": "milwaukee-pd",
    "media_type": "application/geo+json",
    "crs": None,
    "mode": "all",
    "dry_run": False,
    "credentials": "email",
    "bytes": 31457280,
    "counts": {"read": 40000, "valid": 39998, "rejected": 2, "created": 0, "updated": 0, "written": 0},
    "error": None,
    "created_at": "2026-11-21T15:00:00Z",
    "started_at": "2026-11-21T15:00:01Z",
    "finished_at": None,
    "links": [
        {
            "rel": "self",
            "href": "/v1/imports/0b7e4c1a-2f5d-4e8b-9a61-3c2d1e0f9a8b",
            "type": "application/json",
        },
        {
            "rel": "report",
            "href": "/v1/imports/0b7e4c1a-2f5d-4e8b-9a61-3c2d1e0f9a8b/report",
            "type": "application/json",
        },
    ],
}
REPORT_EXAMPLE: dict[str, Any] = {
    "job": {**JOB_EXAMPLE, "status": "succeeded", "phase": "done"},
    "rejected": [
        {
            "index": 17,
            "line": 19,
            "external_id": "shop-0018",
            "pointer": "/properties/contact_email",
            "reason": "not a valid email address: An email address must have an @-sign.",
        }
    ],
    "credentials": [
        {
            "external_id": "home-0002",
            "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
            "credential": "cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_Zx3...secret",
        }
    ],
}


def job_out(row: Any) -> dict[str, Any]:
    base = f"/v1/imports/{row['id']}"
    written = 0 if row["dry_run"] or row["status"] != "succeeded" else row["created"] + row["updated"]
    return {
        "id": str(row["id"]),
        "status": row["status"],
        "phase": row["phase"],
        "agency": row["agency"],
        "media_type": row["media_type"],
        "crs": row["crs"],
        "mode": row["mode"],
        "dry_run": row["dry_run"],
        "credentials": row["credentials"],
        "bytes": row["bytes_received"],
        "counts": {
            "read": row["read"],
            "valid": row["valid"],
            "rejected": row["rejected"],
            "created": row["created"],
            "updated": row["updated"],
            "written": written,
        },
        "error": row["error"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "links": [
            {"rel": "self", "href": base, "type": "application/json"},
            {"rel": "report", "href": base + "/report", "type": "application/json"},
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _job_response(row: Any, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(
        job_out(row),
        status_code=status,
        headers={"Location": f"/v1/imports/{row['id']}", **NO_STORE, **headers},
    )


def _principal_key(principal: Principal) -> str:
    return f"{principal.agency}:{principal.sub}"


REQUEST_BODY = {
    "required": True,
    "description": "The registrations to import (see the operation's description for each format)",
    "content": {
        GEOJSON: {
            "schema": {"type": "object", "description": "A GeoJSON FeatureCollection"},
            "examples": {
                "flat": {
                    "summary": "One camera per feature, flat properties",
                    "value": {"type": "FeatureCollection", "features": [FEATURE_EXAMPLE]},
                },
                "cameras": {
                    "summary": "Several cameras per registration",
                    "value": {"type": "FeatureCollection", "features": [FEATURE_CAMERAS_EXAMPLE]},
                },
            },
        },
        GEOJSON_SEQ: {
            "schema": {"type": "string", "description": "RFC 8142: RS, a GeoJSON Feature, LF; repeated"},
            "example": "\x1e" + orjson.dumps(FEATURE_EXAMPLE).decode() + "\n",
        },
        CSV: {
            "schema": {"type": "string", "description": "A header row, then one registration per row"},
            "examples": {
                "lonlat": {"summary": "WGS84 longitude/latitude", "value": CSV_EXAMPLE},
                "stateplane": {
                    "summary": "x/y in a State Plane CRS (with ?crs=EPSG:2263)",
                    "value": CSV_STATE_PLANE_EXAMPLE,
                },
            },
        },
    },
}


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
    pool = runner.db
    agency = await pool.fetchrow("SELECT id, slug FROM registry.agencies WHERE slug = $1", principal.agency)
    if agency is None:
        raise Problem(403, f"The token's agency '{principal.agency}' is not registered with Canvass.")
    job_id = uuid.uuid4()
    folder = import_dir()
    folder.mkdir(parents=True, exist_ok=True)
    spool = (folder / f"{job_id}.upload").resolve()
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
        spool.unlink(missing_ok=True)
        raise
    if size == 0:
        spool.unlink(missing_ok=True)
        raise Problem(400, "The request body is empty: send the file to import.")
    params = orjson.dumps([kind, crs, mode, dry_run, credentials]).decode()
    request_hash = hashlib.sha256(params.encode() + b"\x1f" + digest.digest()).digest()
    scope = _principal_key(principal)
    inserted = await pool.fetchval(
        """
        INSERT INTO registry.import_jobs (id, agency_id, principal, media_type, crs, mode, dry_run, credentials,
            idempotency_key, request_hash, spool_path, bytes_received, status, phase, lease_owner, heartbeat_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'queued', 'staging', $13, now())
        ON CONFLICT (principal, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id
        """,
        job_id,
        agency["id"],
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
        first = await pool.fetchrow(
            "SELECT id, request_hash FROM registry.import_jobs WHERE principal = $1 AND idempotency_key = $2",
            scope,
            idempotency_key,
        )
        assert first is not None
        if bytes(first["request_hash"]) != request_hash:
            raise Problem(
                422,
                "This Idempotency-Key was used for a different import (another file or other parameters); use a "
                "new key for a new import.",
                kind="idempotency-key-reused",
                title="Idempotency-Key reused with another request",
            )
        row = await pool.fetchrow(JOB_SQL, first["id"])
        return _job_response(row, 202, **{"Idempotent-Replayed": "true"})
    runner.submit(job_id)
    row = await pool.fetchrow(JOB_SQL, job_id)
    return _job_response(row, 202)


async def _job_for(principal: Principal, job_id: uuid.UUID) -> Any:
    row = await runner.db.fetchrow(JOB_SQL, job_id)
    if row is None or row["agency"] != principal.agency:
        raise Problem(404, f"No import {job_id}.")
    if row["status"] in ("queued", "running") and await runner.claim_if_abandoned(job_id):
        row = await runner.db.fetchrow(JOB_SQL, job_id)
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
    return _job_response(await _job_for(principal, job_id))


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
    row = await _job_for(principal, job_id)
    head = orjson.dumps(job_out(row))
    finished = row["status"] in ("succeeded", "failed")
    if finished and row["finished_at"] < datetime.now(UTC) - timedelta(seconds=report_ttl_seconds()):
        await runner.purge_reports()
        raise Problem(
            410,
            f"The report of import {job_id} was kept {report_ttl_seconds() / 86400:g} days after the job ended and "
            f"has been deleted; the job and its counts remain at /v1/imports/{job_id}.",
            kind="gone",
        )
    if finished:
        await runner.purge_credentials()
    return StreamingResponse(
        _report(job_id, head, finished), media_type="application/json", headers=dict(NO_STORE)
    )


async def _report(job_id: uuid.UUID, head: bytes, finished: bool) -> AsyncIterator[bytes]:
    pool = runner.db
    yield b'{"job":' + head + b',"rejected":['
    first = True
    async for rows in stream_report_rows(pool, job_id):
        parts = []
        for r in rows:
            parts.append(
                orjson.dumps(
                    {
                        "index": r["ordinal"],
                        "line": r["line"],
                        "external_id": r["external_id"],
                        "pointer": r["pointer"],
                        "reason": r["reason"],
                    }
                )
            )
        yield (b"" if first else b",") + b",".join(parts)
        first = False
    yield b'],"credentials":['
    if finished:
        async for chunk in _credentials_once(pool, job_id):
            yield chunk
    yield b"]}"


async def _credentials_once(pool: asyncpg.Pool, job_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The report's credentials, then deleted in the same transaction: a download that does not complete
    rolls back and leaves them for the next one."""
    ring = keyring()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            first = True
            async for batch in _credential_batches(conn, job_id):
                parts = []
                for r in batch:
                    rid = r["registration_id"]
                    credential = ring.open(r["credential_enc"], credential_context(rid))
                    parts.append(
                        orjson.dumps(
                            {
                                "external_id": r["external_id"],
                                "registration_id": str(rid),
                                "credential": credential,
                            }
                        )
                    )
                yield (b"" if first else b",") + b",".join(parts)
                first = False
            await conn.execute(
                "DELETE FROM registry.import_credentials WHERE job_id = $1 AND delivery = 'report'", job_id
            )
            await conn.execute(
                "UPDATE registry.import_jobs SET report_downloaded_at = now() WHERE id = $1", job_id
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            raise
        else:
            await tx.commit()


async def _credential_batches(conn: asyncpg.Connection, job_id: uuid.UUID) -> AsyncIterator[list[Any]]:
    last = -1
    while True:
        rows = await conn.fetch(
            "SELECT c.ordinal, c.external_id, c.registration_id, c.credential_enc FROM registry.import_credentials c"
            " WHERE c.job_id = $1 AND c.delivery = 'report' AND c.ordinal > $2"
            " AND EXISTS (SELECT 1 FROM registry.registrations r WHERE r.id = c.registration_id)"
            " ORDER BY c.ordinal LIMIT 2000 FOR UPDATE OF c",
            job_id,
            last,
        )
        if not rows:
            return
        yield rows
        last = rows[-1]["ordinal"]
