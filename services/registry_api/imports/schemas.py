"""The import's contract: the bodies `routes` answers with (pydantic, for the published OpenAPI), their
examples, the operation's description and request body, and the job as JSON (`job_out`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from services.registry_api.imports.formats import CSV, GEOJSON, GEOJSON_SEQ

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
