"""The `requests` schema, which requests_api alone writes.

Personal data stays in the registry: a target names its owner by registration id and its cameras by camera id
(pseudonymous), never by name, email or address. The exceptions: the creating investigator's own email (from
their token), kept sealed so the agency can be told of answers; and what an owner writes (a note with an answer,
an upload's description and file name), sealed under the data key of the owner's registration (shared/keystore.py),
destroyed when the owner deletes it, and erased by the worker too.

`events` is each request's history (every state transition, who, when, from, to, note); `outbox` holds the
notifications written in the same transaction as the change they announce, delivered later by the worker;
`custody` is each evidence item's chain of custody, every record chained to the previous one's hash.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

RequestState = Literal[
    "draft",
    "pending_approval",
    "approved",
    "rejected",
    "sent",
    "closed",
    "cancelled",
    "expired",
]
REQUEST_STATES: tuple[str, ...] = get_args(RequestState)
TargetState = Literal[
    "pending",
    "notified",
    "viewed",
    "accepted",
    "declined",
    "uploaded",
    "completed",
    "expired",
    "video_unavailable",
    "dropped",
]
TARGET_STATES: tuple[str, ...] = get_args(TargetState)
OUTBOX_CHANNELS = ("owner_email", "agency_email", "agency_webhook")
OUTBOX_STATUSES = ("pending", "delivered", "failed", "undeliverable", "cancelled")
Category = Literal[
    "homicide",
    "assault",
    "robbery",
    "burglary",
    "theft",
    "vehicle_crime",
    "vandalism",
    "shooting",
    "traffic_collision",
    "missing_person",
    "fraud",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(Category)


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


class FootageRequest(Base):
    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint(_in("state", REQUEST_STATES), name="ck_requests_state"),
        CheckConstraint("window_end > window_start", name="ck_requests_window"),
        CheckConstraint(
            "area_kind IN ('radius', 'polygon', 'route') AND (area_kind = 'route') = (route IS NOT NULL)",
            name="ck_requests_area_kind",
        ),
        Index("ix_requests_agency_created", "agency", "created_at", "id"),
        Index("ix_requests_state_due", "state", "due_at"),
        Index("ix_requests_sent_at", "agency", "sent_at"),
        {"schema": "requests"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    agency: Mapped[str] = mapped_column(Text)  # the agency's slug
    agency_name: Mapped[str] = mapped_column(Text)
    case_number: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    incident_point: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    area_kind: Mapped[str] = mapped_column(Text)
    radius_m: Mapped[float | None] = mapped_column(Float)
    area: Mapped[Any] = mapped_column(Geometry(srid=4326, spatial_index=False))
    area_m2: Mapped[float] = mapped_column(Float)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text, server_default=text("'draft'"))
    # The agency's policy when the request was made: it governs the request for its whole life.
    requires_approval: Mapped[bool] = mapped_column(Boolean)
    evidence_retention_days: Mapped[int] = mapped_column(Integer)
    legal_hold: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_by: Mapped[str] = mapped_column(Text)
    creator_email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A request along a route: the route as geo_query's route search takes it (its owners are found again so).
    route: Mapped[Any | None] = mapped_column(JSONB)


class Target(Base):
    """One owner asked for footage: their registration id and the cameras of theirs the request covers."""

    __tablename__ = "targets"
    __table_args__ = (
        CheckConstraint(_in("state", TARGET_STATES), name="ck_targets_state"),
        CheckConstraint(
            "(window_start IS NULL) = (window_end IS NULL) AND (window_start IS NULL OR window_end > window_start)",
            name="ck_targets_window",
        ),
        CheckConstraint("cameras_erased >= 0", name="ck_targets_cameras_erased"),
        UniqueConstraint("request_id", "registration_id", name="uq_targets_request_registration"),
        Index("ix_targets_registration", "registration_id", "state"),
        Index("ix_targets_state", "state"),
        {"schema": "requests"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.requests.id", ondelete="CASCADE"))
    registration_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # [{camera_id, footage_until, distance_m, retention_days(, window)}], most urgent first
    cameras: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'"))
    # How many cameras were asked of an owner who since deleted their registration: their ids, distances and
    # windows are erased (worker.erase_deleted_owners), the request's counts still include them.
    cameras_erased: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    footage_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    distance_m: Mapped[float | None] = mapped_column(Float)
    # Along a route: the footage this owner is asked for (their cameras' windows); NULL: the request's window.
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the first upload
    # How many messages about this target the agency has been sent: each carries the next number, so a
    # receiver orders them whatever order retries deliver them in.
    agency_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(Base):
    """A request created under an Idempotency-Key: its first answer (sealed), replayed to a retry by the same
    caller with the same body within the replay window (shared/idempotency.py)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("ix_requests_idempotency_keys_created", "created_at"),
        Index("ix_requests_idempotency_keys_request", "request_id"),
        {"schema": "requests"},
    )

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    principal: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.requests.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Event(Base):
    """A state transition of a request or of one of its targets: the request's history."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_request", "request_id", "id"), {"schema": "requests"})

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.requests.id", ondelete="CASCADE"))
    target_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("requests.targets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    actor_role: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    from_state: Mapped[str | None] = mapped_column(Text)
    to_state: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)  # the agency's own
    # An owner's note, sealed under their registration's data key (owner_texts.py)
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class Evidence(Base):
    """An uploaded file: its SHA-256 (computed while it streamed in) is also its storage key."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_request", "request_id"),
        Index("ix_evidence_sha256", "sha256"),
        {"schema": "requests"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.requests.id", ondelete="RESTRICT"))
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.targets.id", ondelete="RESTRICT"))
    sha256: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(Text)
    # What the owner wrote, sealed under their registration's data key (owner_texts.py): the name cleaned at
    # upload (the name downloads use), the name as sent (data only), the description.
    filename_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    original_filename_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    camera_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    description_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    storage_key: Mapped[str] = mapped_column(Text)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_reason: Mapped[str | None] = mapped_column(Text)


class Custody(Base):
    """One access to an evidence item (upload, download, verify, delete), chained to the item's previous record."""

    __tablename__ = "custody"
    __table_args__ = (
        UniqueConstraint("evidence_id", "seq", name="uq_custody_evidence_seq"),
        {"schema": "requests"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.evidence.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    actor_role: Mapped[str] = mapped_column(Text)
    agency: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text)
    details: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'"))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class Outbox(Base):
    """A notification to deliver, written in the transaction of the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("channel", OUTBOX_CHANNELS), name="ck_outbox_channel"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="ck_outbox_status"),
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_outbox_request", "request_id"),
        {"schema": "requests"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    channel: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.requests.id", ondelete="CASCADE")
    )
    target_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("requests.targets.id", ondelete="CASCADE"))
    registration_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    agency: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'"))
    dedupe_key: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AgencyWebhook(Base):
    """Where an agency wants to be told of answers by webhook (HMAC-SHA256 signed with its secret)."""

    __tablename__ = "agency_webhooks"
    __table_args__ = ({"schema": "requests"},)

    agency: Mapped[str] = mapped_column(Text, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Feed(Base):
    """How far this service has read a feed of another service (e.g. registry_api's deleted registrations)."""

    __tablename__ = "feeds"
    __table_args__ = ({"schema": "requests"},)

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
