"""The `registry` schema, which registry_api alone writes (geo_query reads it).

Personal data (contact name, email, phone, street address, live-stream endpoints) is stored only sealed
(`*_enc`, AES-GCM with a key id); `contact_email_index` is a keyed hash for exact-match look-ups.

`cameras.visible_to` lists the agencies that may find a camera right now: the registration's sharing choices
while it is active, empty while it is paused or withdrawn. registry_api recomputes it in the same transaction
as any change to status or sharing, so geo_query answers "what may this agency see" from the camera row and
its spatial index alone, without joins.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

OWNER_KINDS = ("residential", "business", "school", "place_of_worship", "nonprofit", "government")
REGISTRATION_STATUSES = ("active", "paused", "withdrawn")
PLACEMENTS = ("indoor", "outdoor")
LIVE_MODES = ("never", "on_alert", "emergency")
RECORDING = ("continuous", "motion", "scheduled")
SOURCES = ("owner", "advocate", "import")


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


class Agency(Base):
    __tablename__ = "agencies"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="ck_agencies_slug"),
        Index("ix_agencies_jurisdiction", "jurisdiction", postgresql_using="gist"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    jurisdiction: Mapped[str] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))
    max_request_area_m2: Mapped[float] = mapped_column(Float, server_default=text("1294994"))
    max_request_window_hours: Mapped[float] = mapped_column(Float, server_default=text("12"))
    default_request_expiry_days: Mapped[int] = mapped_column(Integer, server_default=text("14"))
    requires_approval: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    evidence_retention_days: Mapped[int] = mapped_column(Integer, server_default=text("365"))
    max_search_radius_m: Mapped[float] = mapped_column(Float, server_default=text("2000"))
    reconfirm_after_days: Mapped[int] = mapped_column(Integer, server_default=text("365"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (
        CheckConstraint(_in("status", REGISTRATION_STATUSES), name="ck_registrations_status"),
        CheckConstraint(_in("owner_kind", OWNER_KINDS), name="ck_registrations_owner_kind"),
        CheckConstraint(_in("source", SOURCES), name="ck_registrations_source"),
        CheckConstraint(
            "contact_email_enc IS NOT NULL OR contact_phone_enc IS NOT NULL", name="ck_registrations_contact"
        ),
        UniqueConstraint("agency_id", "external_id", name="uq_registrations_external_id"),
        Index("ix_registrations_agency_confirmed", "agency_id", "last_confirmed_at"),
        Index("ix_registrations_email_index", "contact_email_index"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registry.agencies.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(Text, server_default=text("'active'"))
    owner_kind: Mapped[str] = mapped_column(Text, server_default=text("'residential'"))
    business_name: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_email_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(Text)
    preferred_contact_method: Mapped[str | None] = mapped_column(Text)
    contact_hours: Mapped[str | None] = mapped_column(Text)
    notes_for_investigators: Mapped[str | None] = mapped_column(Text)
    terms_version: Mapped[str | None] = mapped_column(Text)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    credential_hash: Mapped[bytes] = mapped_column(LargeBinary)
    credential_issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    source: Mapped[str] = mapped_column(Text, server_default=text("'owner'"))
    registered_by: Mapped[str | None] = mapped_column(Text)  # the advocate's or integrator's subject
    external_id: Mapped[str | None] = mapped_column(Text)
    last_confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RegistrationShare(Base):
    """An agency the owner chose to share the registration with (the program's agency is always one)."""

    __tablename__ = "registration_shares"
    __table_args__ = ({"schema": "registry"},)

    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE"), primary_key=True
    )
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.agencies.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (
        CheckConstraint(
            "direction_deg IS NULL OR direction_deg BETWEEN 0 AND 359", name="ck_cameras_direction"
        ),
        CheckConstraint("fov_deg IS NULL OR fov_deg BETWEEN 1 AND 360", name="ck_cameras_fov"),
        CheckConstraint("range_m IS NULL OR range_m > 0", name="ck_cameras_range"),
        CheckConstraint(
            "retention_days IS NULL OR retention_days BETWEEN 0 AND 3650", name="ck_cameras_retention"
        ),
        CheckConstraint(f"placement IS NULL OR {_in('placement', PLACEMENTS)}", name="ck_cameras_placement"),
        CheckConstraint(_in("live_mode", LIVE_MODES), name="ck_cameras_live_mode"),
        CheckConstraint(f"recording IS NULL OR {_in('recording', RECORDING)}", name="ck_cameras_recording"),
        Index("ix_cameras_geom", "geom", postgresql_using="gist"),
        Index("ix_cameras_registration", "registration_id"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    geom: Mapped[str] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    label: Mapped[str | None] = mapped_column(Text)
    direction_deg: Mapped[int | None] = mapped_column(SmallInteger)
    fov_deg: Mapped[int | None] = mapped_column(SmallInteger)
    range_m: Mapped[float | None] = mapped_column(Float)
    placement: Mapped[str | None] = mapped_column(Text)
    covers: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    retention_days: Mapped[int | None] = mapped_column(SmallInteger)
    recording: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(Text)  # free text, e.g. "nights and weekends"
    shares_history: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    live_mode: Mapped[str] = mapped_column(Text, server_default=text("'never'"))
    live_endpoint_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Denormalised from the registration for filtering without joins (see the module docstring).
    owner_kind: Mapped[str] = mapped_column(Text)
    visible_to: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LiveWindow(Base):
    """A live-sharing window the owner opened: the endpoints of its cameras are visible to its agencies
    until it is closed or `expires_at` passes (it closes by itself: visibility is decided by the clock)."""

    __tablename__ = "live_windows"
    __table_args__ = (
        Index("ix_live_windows_registration", "registration_id"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    camera_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    agency_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    reason: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CredentialReset(Base):
    """A one-time link sent to the verified contact to re-issue a lost management credential."""

    __tablename__ = "credential_resets"
    __table_args__ = (
        Index("ix_credential_resets_registration", "registration_id"),
        {"schema": "registry"},
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(Base):
    """A create or import that was answered, so a retry with the same key gets the same answer.

    `body` is sealed (it carries the owner's contact details and credential); the row goes with the
    registration it created (cascade), and rows older than the replay window are purged."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("ix_idempotency_keys_registration", "registration_id"),
        Index("ix_idempotency_keys_created", "created_at"),
        {"schema": "registry"},
    )

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    principal: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'"))
    registration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
