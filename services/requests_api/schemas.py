"""The shapes requests_api accepts and answers with: requests and their targets as agencies and owners see
them, transitions, history, evidence and its custody record, webhooks, and the transparency report."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, WithJsonSchema, field_validator

from services.requests_api.config import config
from services.requests_api.models import Category, RequestState, TargetState
from services.requests_api.webhook_urls import check_webhook_url
from shared.errors import refused
from shared.geojson import Area, AreaGeometry, Point, PointGeometry
from shared.inputs import StrictInput
from shared.settings import get_settings
from shared.timestamps import Instant

CASE_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,63}$")
MAX_RADIUS_M = 5_000.0


EXAMPLE_ID = "7d3f0c52-6a1e-4a55-9f43-2f8d0c1b9a10"
EXAMPLE_TARGET_ID = "3b9e2a41-5d6c-4e7f-8a9b-0c1d2e3f4a5b"
EXAMPLE_REGISTRATION_ID = "0c6a7f4e-1b2d-4c3e-8f9a-0b1c2d3e4f50"
EXAMPLE_CAMERA_ID = "5b0e3f5e-8d44-4d39-9c52-2b1f0d3a9f10"


class Input(StrictInput):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refused here, as bad input, rather than failing the write.
        if isinstance(v, str) and "\x00" in v:
            raise refused("text_invalid", "must not contain NUL characters")
        return v


class Window(Input):
    start: Instant = Field(
        description="When the incident window begins (RFC 3339)", examples=["2026-11-20T21:30:00Z"]
    )
    end: Instant = Field(
        description="When it ends; the span is capped by agency policy, and it ended at most 3650 days ago (the"
        " longest a camera may keep footage)",
        examples=["2026-11-20T23:00:00Z"],
    )


_LINE: dict[str, Any] = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "number"}},
    "minItems": 2,
}


class RoutePath(Input):
    """A path of travel: GeoJSON LineString or MultiLineString (lon/lat, or x/y in the route's `crs`)."""

    type: Literal["LineString", "MultiLineString"]
    coordinates: Annotated[
        list[Any],
        WithJsonSchema({"type": "array", "minItems": 1, "items": {"anyOf": [_LINE["items"], _LINE]}}),
    ] = Field(examples=[[[-87.9065, 43.0389], [-87.9021, 43.0391], [-87.9019, 43.0425]]])


class RouteIn(Input):
    """A route of travel as a request's area: the owners of the cameras along it are asked, each only for the
    minutes the path passed their cameras (geo_query's `POST /v1/cameras/route` finds them and checks the
    route: see its contract for the rules)."""

    path: RoutePath
    crs: str | None = Field(None, max_length=200, description="The CRS of the path (EPSG code or OGC URI)")
    buffer_m: float = Field(gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, description="Metres either side")
    times: list[Instant] | None = Field(
        None,
        max_length=5000,
        description="An instant at each vertex, strictly increasing (or start and speed)",
    )
    start: Instant | None = Field(None, description="When the first vertex was passed (with speed)")
    speed: Literal["walking", "driving"] | Annotated[float, Strict(), Field(gt=0, le=100)] | None = Field(
        None, description="walking, driving or metres per second (with start)"
    )
    margin_s: int = Field(
        120, ge=0, le=3600, description="Each camera is asked for the minutes the path passed it ± this"
    )


class RequestCreate(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "case_number": "2026-004512",
                    "category": "burglary",
                    "incident": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
                    "radius_m": 150,
                    "window": {"start": "2026-11-20T21:30:00Z", "end": "2026-11-20T23:00:00Z"},
                    "message": "A burglary on this block between 9:30 and 11 pm. Footage of the street would help.",
                    "due_at": "2026-12-04T17:00:00Z",
                }
            ]
        },
    )

    case_number: str = Field(
        description="The case the request is for: 1-64 letters, digits, spaces or . _ : / # -",
        examples=["2026-004512"],
        json_schema_extra={"pattern": CASE_NUMBER.pattern},
    )
    category: Category = Field(description="Offence or reason category")
    incident: Point = Field(description="Where the incident happened (WGS84)")
    radius_m: Annotated[float, Field(gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, strict=True)] | None = Field(
        None, description="A circle around the incident (give this or `area`)", examples=[150]
    )
    area: Area | None = Field(
        None, description="A Polygon or MultiPolygon (give this, `radius_m` or `route`)"
    )
    route: RouteIn | None = Field(
        None,
        description="A route of travel (give this, `radius_m` or `area`): its buffer is the area, and each owner is"
        " asked only for the minutes the path passed their cameras (± `margin_s`), inside `window`, which must"
        " hold the route's times",
    )
    camera_ids: list[uuid.UUID] | None = Field(
        None,
        description="Ask only these cameras' owners (each must lie in the area and be one your agency may see); "
        "at most `CANVASS_REQUEST_MAX_CAMERAS` of them (50 by default), a figure of the deployment's",
    )
    window: Window
    message: str = Field(
        min_length=1,
        max_length=4000,
        description="What the owners read: what happened, what footage would help",
    )
    due_at: Instant | None = Field(
        None, description="When answers are due; by default the agency's default expiry from now"
    )

    @field_validator("case_number")
    @classmethod
    def _case(cls, v: str) -> str:
        if not CASE_NUMBER.match(v):
            raise ValueError("1-64 letters, digits, spaces or . _ : / # -, starting with a letter or digit")
        return v

    @field_validator("camera_ids")
    @classmethod
    def _few_enough_cameras(cls, v: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
        # The deployment's figure, read when a request arrives (so not a maxItems of the contract).
        cap = config().max_explicit_cameras
        if v is not None and len(v) > cap:
            raise ValueError(f"at most {cap} cameras (CANVASS_REQUEST_MAX_CAMERAS); {len(v)} listed")
        return v


class TransitionIn(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"action": "approve", "note": "Scope is proportionate."}]},
    )

    action: Literal["submit", "approve", "reject", "send", "cancel", "close"]
    note: str | None = Field(None, max_length=2000)


class OwnerAnswer(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"answer": "accept"}]})

    answer: Literal["accept", "decline", "unavailable"] = Field(
        description="accept (you will upload), decline (silently: the agency never learns who declined), or "
        "unavailable (the footage no longer exists; silent like a decline, except after you accepted: the "
        "agency, which saw you accept, then sees that your footage proved unavailable)"
    )
    note: str | None = Field(
        None,
        max_length=1000,
        description="Shown to the agency with an accept, until you delete your registration (it is then erased); "
        "with a decline or 'unavailable' it is not kept at all",
    )


class LegalHoldIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"legal_hold": True}]})

    legal_hold: bool
    note: str | None = Field(None, max_length=2000)


class WindowOut(BaseModel):
    start: datetime
    end: datetime


class CameraOut(BaseModel):
    camera_id: uuid.UUID
    window: WindowOut | None = Field(
        None,
        description="Along a route: the footage asked of this camera (when the path passed it ± the margin)",
    )
    footage_until: datetime | None = Field(
        None, description="When the owner's recorder overwrites the incident"
    )
    distance_m: float | None = None
    retention_days: int | None = None


class TargetOut(BaseModel):
    id: uuid.UUID
    registration_id: uuid.UUID
    state: TargetState
    footage_until: datetime | None = Field(
        None,
        description="The earliest of its cameras' footage_until; null once the owner deletes their registration",
    )
    distance_m: float | None = Field(
        None,
        description="Its nearest camera's distance from the incident; null once the owner deletes their registration",
    )
    window: WindowOut | None = Field(
        None,
        description="Along a route: the footage this owner is asked for (their cameras' windows); else none",
    )
    cameras: list[CameraOut] = Field(
        description="Its cameras the request asks about, most urgent first; empty once the owner deletes their "
        "registration (which cameras, and where they stood, are erased; the request's counts still include them)"
    )
    notified_at: datetime | None = None
    answered_at: datetime | None = None


class Summary(BaseModel):
    """What the agency may know of the answers: per-owner detail only for owners who chose to share."""

    targets: int = Field(description="Owners asked (or to be asked)", examples=[7])
    cameras: int = Field(examples=[11])
    notified: int = Field(description="Owners the request reached", examples=[7])
    accepted: int = Field(description="Owners who accepted (including those who have uploaded)", examples=[2])
    uploaded: int = Field(description="Owners who uploaded footage", examples=[1])
    not_fulfilled: int = Field(
        description="Owners reached who have not (or no longer) accepted: who declined, have not answered (yet), "
        "answered that no video exists, or let the request expire: one number, never broken down, so a decline "
        "stays silent (it does not move when an owner reads or declines the request)",
        examples=[5],
    )
    dropped: int = Field(
        0,
        description="Owners found when the request was drafted but no longer reachable when it was approved or "
        "sent (they paused, withdrew, deleted their registration, stopped sharing with the agency, or no longer "
        "have a camera there willing to share recorded footage): never contacted, not counted above; who they "
        "were is never shown",
        examples=[0],
    )


class RequestOut(BaseModel):
    id: uuid.UUID
    agency: str
    case_number: str
    category: Category
    state: RequestState
    incident: PointGeometry
    area: AreaGeometry = Field(description="The area asked about (a radius is given as its polygon)")
    area_kind: Literal["radius", "polygon", "route"]
    radius_m: float | None = None
    route: RouteIn | None = Field(None, description="The route the request was drawn along (area_kind route)")
    area_m2: float
    window: WindowOut
    message: str
    due_at: datetime
    requires_approval: bool
    legal_hold: bool
    evidence_retention_days: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    finished_at: datetime | None = None
    version: int
    summary: Summary
    targets: list[TargetOut] = Field(
        description="Before sending, every owner the request would reach (most urgent first); once sent, only "
        "the owners who accepted (still shown, in their later state, if their footage then proved unavailable "
        "or the request ended before they uploaded)"
    )
    allowed_actions: list[str] = Field(description="The transitions your role may take now")


REQUEST_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_ID,
    "agency": "milwaukee-pd",
    "case_number": "2026-004512",
    "category": "burglary",
    "state": "pending_approval",
    "incident": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "area": {
        "type": "Polygon",
        "coordinates": [[[-87.908, 43.038], [-87.905, 43.038], [-87.905, 43.04], [-87.908, 43.038]]],
    },
    "area_kind": "radius",
    "radius_m": 150,
    "area_m2": 70685.8,
    "window": {"start": "2026-11-20T21:30:00Z", "end": "2026-11-20T23:00:00Z"},
    "message": "A burglary on this block between 9:30 and 11 pm.",
    "due_at": "2026-12-04T17:00:00Z",
    "requires_approval": True,
    "legal_hold": False,
    "evidence_retention_days": 365,
    "created_by": "det-4411",
    "created_at": "2026-11-21T09:00:00Z",
    "updated_at": "2026-11-21T09:05:00Z",
    "sent_at": None,
    "finished_at": None,
    "version": 2,
    "summary": {"targets": 1, "cameras": 1, "notified": 0, "accepted": 0, "uploaded": 0, "not_fulfilled": 0},
    "targets": [
        {
            "id": EXAMPLE_TARGET_ID,
            "registration_id": EXAMPLE_REGISTRATION_ID,
            "state": "pending",
            "footage_until": "2026-12-20T21:30:00Z",
            "distance_m": 42.2,
            "cameras": [
                {
                    "camera_id": EXAMPLE_CAMERA_ID,
                    "footage_until": "2026-12-20T21:30:00Z",
                    "distance_m": 42.2,
                    "retention_days": 30,
                }
            ],
            "notified_at": None,
            "answered_at": None,
        }
    ],
    "allowed_actions": ["approve", "cancel", "reject"],
}


class RequestItem(BaseModel):
    id: uuid.UUID
    case_number: str
    category: Category
    state: RequestState
    due_at: datetime
    created_by: str
    created_at: datetime
    sent_at: datetime | None = None
    summary: Summary


class RequestList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            k: REQUEST_EXAMPLE[k]
                            for k in (
                                "id",
                                "case_number",
                                "category",
                                "state",
                                "due_at",
                                "created_by",
                                "created_at",
                            )
                        }
                        | {"sent_at": None, "summary": REQUEST_EXAMPLE["summary"]}
                    ],
                    "links": [],
                }
            ]
        }
    )

    items: list[RequestItem]
    links: list[dict[str, str]]


class EventOut(BaseModel):
    id: int = Field(description="The event's position in this history (1, 2, ...)", examples=[1])
    at: datetime
    subject: Literal["request", "target"]
    target_id: uuid.UUID | None = None
    actor: str
    actor_role: str
    action: str
    from_state: str | None = None
    to_state: str
    note: str | None = None


class History(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": EXAMPLE_ID,
                    "events": [
                        {
                            "id": 1,
                            "at": "2026-11-21T09:00:00Z",
                            "subject": "request",
                            "target_id": None,
                            "actor": "det-4411",
                            "actor_role": "investigator",
                            "action": "create",
                            "from_state": None,
                            "to_state": "draft",
                            "note": None,
                        }
                    ],
                }
            ]
        }
    )

    request_id: uuid.UUID
    events: list[EventOut] = Field(
        description="The request's own transitions and each sharing owner's from their accept onward; nothing "
        "of an owner who did not share, not even a count"
    )


class OwnerRequestOut(BaseModel):
    """A request as the owner it reached sees it: what is asked, of which of their cameras, until when."""

    request_id: uuid.UUID
    target_id: uuid.UUID
    agency: str
    agency_name: str
    category: Category
    message: str
    window: WindowOut = Field(
        description="The footage asked of you: the request's window, or along a route only the minutes it"
        " passed your cameras"
    )
    due_at: datetime
    request_state: RequestState
    state: TargetState
    cameras: list[CameraOut]
    footage_until: datetime | None = None
    allowed_answers: list[str]
    evidence: list[dict[str, Any]] = Field(default_factory=list, description="What you uploaded for it")


OWNER_EXAMPLE: dict[str, Any] = {
    "request_id": EXAMPLE_ID,
    "target_id": EXAMPLE_TARGET_ID,
    "agency": "milwaukee-pd",
    "agency_name": "Milwaukee Police Department",
    "category": "burglary",
    "message": "A burglary on this block between 9:30 and 11 pm.",
    "window": {"start": "2026-11-20T21:30:00Z", "end": "2026-11-20T23:00:00Z"},
    "due_at": "2026-12-04T17:00:00Z",
    "request_state": "sent",
    "state": "viewed",
    "cameras": [REQUEST_EXAMPLE["targets"][0]["cameras"][0]],
    "footage_until": "2026-12-20T21:30:00Z",
    "allowed_answers": ["accept", "decline", "unavailable"],
    "evidence": [],
}


class OwnerRequestList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [OWNER_EXAMPLE]}]})

    items: list[OwnerRequestOut]


class EvidenceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                    "request_id": EXAMPLE_ID,
                    "target_id": EXAMPLE_TARGET_ID,
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "size_bytes": 10485760,
                    "media_type": "video/mp4",
                    "filename": "front-door.mp4",
                    "camera_id": EXAMPLE_CAMERA_ID,
                    "description": None,
                    "uploaded_at": "2026-11-22T10:00:00Z",
                    "deleted_at": None,
                    "deleted_reason": None,
                }
            ]
        }
    )

    id: uuid.UUID
    request_id: uuid.UUID
    target_id: uuid.UUID
    sha256: str = Field(description="SHA-256 of the bytes as received, hex")
    size_bytes: int
    media_type: str
    filename: str | None = Field(
        None,
        description="The file's name as the owner uploaded it; null once the owner deletes their registration",
    )
    camera_id: uuid.UUID | None = Field(
        None,
        description="Which of the owner's cameras recorded it; null once the owner deletes their registration",
    )
    description: str | None = Field(
        None, description="The owner's description; null once the owner deletes their registration"
    )
    uploaded_at: datetime
    deleted_at: datetime | None = None
    deleted_reason: str | None = None


class EvidenceList(BaseModel):
    items: list[EvidenceOut]


class CustodyRecord(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_role: str
    agency: str | None = None
    action: str = Field(examples=["upload"])
    outcome: str = Field(examples=["ok"])
    sha256: str | None = None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class CustodyExport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "evidence": EvidenceOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                    "records": [
                        {
                            "seq": 1,
                            "at": "2026-11-22T10:00:00Z",
                            "actor": "owner:0c6a7f4e-1b2d-4c3e-8f9a-0b1c2d3e4f50",
                            "actor_role": "owner",
                            "agency": "milwaukee-pd",
                            "action": "upload",
                            "outcome": "ok",
                            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                            "details": {"size_bytes": 10485760},
                            "prev_hash": "00" * 32,
                            "hash": "ab" * 32,
                        }
                    ],
                    "chain_intact": True,
                    "exported_at": "2026-11-23T08:00:00Z",
                }
            ]
        }
    )

    evidence: EvidenceOut
    records: list[CustodyRecord]
    chain_intact: bool = Field(
        description="Every record's hash recomputed and linked to the previous one, and no access (this export "
        "included, which checks the file) found the file missing or altered"
    )
    exported_at: datetime


class VerifyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"evidence_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "sha256": "9f86...", "intact": True}
            ]
        }
    )

    evidence_id: uuid.UUID
    sha256: str
    intact: bool


class WebhookIn(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://rms.example.gov/canvass/events", "active": True}]},
    )

    url: str = Field(
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where answers are POSTed. In production: https only, and never to an inside address "
        "(loopback, private, link-local, unique-local, unspecified, multicast or otherwise not globally "
        "routable), whether the host is an IP address (refused here, 422) or a name that resolves to one "
        "(checked at each delivery, before connecting; the delivery is then undeliverable). Development and "
        "test also allow loopback, over http or https.",
    )
    secret: str | None = Field(
        None,
        min_length=32,
        max_length=200,
        description="The HMAC-SHA256 key; generated (and shown once) when omitted",
    )
    active: bool = True

    @field_validator("url")
    @classmethod
    def _allowed_destination(cls, v: str) -> str:
        return check_webhook_url(v, get_settings().env)


class WebhookOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agency": "milwaukee-pd",
                    "url": "https://rms.example.gov/canvass/events",
                    "active": True,
                    "secret": None,
                    "signature": "X-Canvass-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
                    "version": 1,
                }
            ]
        }
    )

    agency: str
    url: str
    active: bool
    secret: str | None = Field(None, description="Shown once, when generated")
    signature: str
    version: int


class TransparencyMonth(BaseModel):
    month: str = Field(examples=["2026-10"], description="A month that has ended (UTC)")
    requests_sent: int
    owners_contacted: int
    owners_fulfilled: int | None = Field(
        description="Owners who uploaded footage; null when fewer than 5 owners were contacted that month"
    )
    median_hours_to_share: float | None = Field(
        description="Median time from an owner being notified to their accepting, over the owners who shared "
        "only (declines and silence are not timed); null when fewer than 5 owners were contacted that month, "
        "or fewer than 5 shared (a median of fewer would tell one owner's own delay)"
    )


class TransparencyAgency(BaseModel):
    agency: str
    months: list[TransparencyMonth]


class TransparencyReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agencies": [
                        {
                            "agency": "milwaukee-pd",
                            "months": [
                                {
                                    "month": "2026-10",
                                    "requests_sent": 12,
                                    "owners_contacted": 58,
                                    "owners_fulfilled": 21,
                                    "median_hours_to_share": 5.5,
                                }
                            ],
                        }
                    ],
                    "generated_at": "2026-11-30T00:00:00Z",
                }
            ]
        }
    )

    agencies: list[TransparencyAgency]
    generated_at: datetime
