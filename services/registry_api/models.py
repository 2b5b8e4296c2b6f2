"""The `registry` schema, which registry_api alone writes (geo_query reads it).

Personal data (contact name, email, phone, street address, live-stream endpoints) is stored only sealed
(`*_enc`, AES-GCM with a key id); `contact_email_index` is a keyed hash for exact-match look-ups. What the owner
writes that no search reads (business name, contact hours, notes for investigators) is sealed under the
registration's own data key, kept in the key store apart from this database (shared/keystore.py).

`cameras.visible_to` lists the agencies that may find a camera right now: the registration's sharing choices
while it is active, empty while it is paused or withdrawn. registry_api recomputes it in the same transaction
as any change to status or sharing, so geo_query answers "what may this agency see" from the camera row and
its spatial index alone, without joins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
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
from shared.vocabulary import LIVE_MODES, OWNER_KINDS, PLACEMENTS, RECORDING
from shared.vocabulary import Placement as Placement
from shared.vocabulary import Recording as Recording

# registry_api's enumerations, each written once: the API's models (schemas.py) take these Literals, the tables'
# CHECK constraints their values. Owner kinds and live modes are geo_query's words too (shared/vocabulary.py).
Status = Literal["active", "paused", "withdrawn"]
REGISTRATION_STATUSES: tuple[str, ...] = get_args(Status)
Source = Literal["owner", "advocate", "import"]
SOURCES: tuple[str, ...] = get_args(Source)


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


class Agency(Base):
    __tablename__ = "agencies"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="ck_agencies_slug"),
        CheckConstraint("char_length(privacy_notice) BETWEEN 1 AND 4000", name="ck_agencies_privacy_notice"),
        CheckConstraint(
            "char_length(privacy_notice_url) <= 2048 AND privacy_notice_url LIKE 'https://%'",
            name="ck_agencies_privacy_notice_url",
        ),
        CheckConstraint("disclosure_delay_days BETWEEN 0 AND 90", name="ck_agencies_disclosure_delay"),
        CheckConstraint("coverage_min_cameras BETWEEN 5 AND 1000", name="ck_agencies_coverage_min_cameras"),
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
    # What the program does with a registration, shown to residents beside its name: a text, a link, or both.
    privacy_notice: Mapped[str | None] = mapped_column(Text)
    privacy_notice_url: Mapped[str | None] = mapped_column(Text)
    # How long after an agency's access to a registration its owner's access report shows it (public policy).
    disclosure_delay_days: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The public coverage map's k: a cell is shown only when it holds at least this many cameras.
    coverage_min_cameras: Mapped[int] = mapped_column(Integer, server_default=text("5"))
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
    business_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    location: Mapped[str] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_email_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(Text)
    preferred_contact_method: Mapped[str | None] = mapped_column(Text)
    contact_hours_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    notes_for_investigators_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    terms_version: Mapped[str | None] = mapped_column(Text)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    credential_hash: Mapped[bytes] = mapped_column(LargeBinary)
    credential_issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    source: Mapped[str] = mapped_column(Text, server_default=text("'owner'"))
    registered_by: Mapped[str | None] = mapped_column(Text)  # the advocate's or integrator's subject
    external_id: Mapped[str | None] = mapped_column(Text)
    # Places in the integrator's list of imported cameras the owner removed: a re-import does not add them back.
    removed_import_positions: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), server_default=text("'{}'")
    )
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
    # Its place in the integrator's list when an import created it (a re-import updates it by this); NULL for
    # the cameras the owner added.
    import_position: Mapped[int | None] = mapped_column(SmallInteger)
    # Denormalised from the registration for filtering without joins (see the module docstring).
    owner_kind: Mapped[str] = mapped_column(Text)
    visible_to: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CoverageCount(Base):
    """Cameras an agency sees per hexagonal cell of each size: kept by triggers on the cameras (migration 0030),
    read by geo_query's coverage map. Never written by the services."""

    __tablename__ = "coverage_counts"
    __table_args__ = ({"schema": "registry"},)

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.agencies.id", ondelete="CASCADE"), primary_key=True
    )
    size_m: Mapped[int] = mapped_column(Integer, primary_key=True)
    i: Mapped[int] = mapped_column(Integer, primary_key=True)
    j: Mapped[int] = mapped_column(Integer, primary_key=True)
    cameras: Mapped[int] = mapped_column(Integer)


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


class EdgeAgentEnrolment(Base):
    """A one-time code the owner asked for to enrol an edge agent for the registration (kept only as a hash;
    it expires within minutes and works once)."""

    __tablename__ = "edge_agent_enrolments"
    __table_args__ = (
        Index("ix_edge_agent_enrolments_registration", "registration_id"),
        {"schema": "registry"},
    )

    code_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EdgeAgent(Base):
    """An edge agent enrolled for a registration: its credential (only as a hash) is good for live sharing of that
    registration alone, until the owner revokes it or deletes the registration (the row goes with it)."""

    __tablename__ = "edge_agents"
    __table_args__ = (
        Index("ix_edge_agents_registration", "registration_id"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    credential_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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


# --- bulk imports ------------------------------------------------------------------------------------------

IMPORT_STATUSES = ("queued", "running", "succeeded", "failed")
IMPORT_PHASES = ("receiving", "staging", "merging", "done")


class ImportJob(Base):
    """An integrator's bulk import: the spooled upload, its options, progress and outcome.

    A job belongs to the process that holds its lease (`lease_owner`, renewed in `heartbeat_at`); a job whose
    heartbeat is older than the lease was left by a process that died, and the next process to look at it
    resumes it from the upload (or fails it cleanly when the upload is gone). Its registrations are written
    only by the final merge, in one transaction with `status = 'succeeded'`."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", IMPORT_STATUSES), name="ck_import_jobs_status"),
        CheckConstraint(_in("phase", IMPORT_PHASES), name="ck_import_jobs_phase"),
        CheckConstraint("mode IN ('all', 'valid')", name="ck_import_jobs_mode"),
        CheckConstraint("credentials IN ('email', 'report', 'none')", name="ck_import_jobs_credentials"),
        Index(
            "uq_import_jobs_idempotency",
            "principal",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_import_jobs_agency_created", "agency_id", "created_at"),
        Index(
            "ix_import_jobs_unfinished", "status", postgresql_where=text("status IN ('queued', 'running')")
        ),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registry.agencies.id", ondelete="CASCADE"))
    principal: Mapped[str] = mapped_column(Text)  # the integrator's subject
    media_type: Mapped[str] = mapped_column(Text)
    crs: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text, server_default=text("'all'"))
    dry_run: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    credentials: Mapped[str] = mapped_column(Text, server_default=text("'email'"))
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    spool_path: Mapped[str] = mapped_column(Text)
    bytes_received: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    status: Mapped[str] = mapped_column(Text, server_default=text("'queued'"))
    phase: Mapped[str] = mapped_column(Text, server_default=text("'staging'"))
    read: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    valid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report_downloaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportRejection(Base):
    """One feature an import refused: where it was in the upload, which member, and why (no personal data)."""

    __tablename__ = "import_rejections"
    __table_args__ = ({"schema": "registry"},)

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    ordinal: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # the feature's 0-based index
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # several problems of one feature
    line: Mapped[int | None] = mapped_column(BigInteger)
    external_id: Mapped[str | None] = mapped_column(Text)
    pointer: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class ImportCredential(Base):
    """A management credential an import issued, sealed, until it is delivered: mailed to the owner (then
    deleted), or shown once in the job's report (then deleted)."""

    __tablename__ = "import_credentials"
    __table_args__ = (
        CheckConstraint("delivery IN ('email', 'report')", name="ck_import_credentials_delivery"),
        Index("ix_import_credentials_job", "job_id", "delivery"),
        {"schema": "registry"},
    )

    # No foreign keys: checking one per row would cost the merge as much as writing the rows; a credential
    # whose registration was deleted meanwhile is skipped and deleted at delivery.
    registration_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    ordinal: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    delivery: Mapped[str] = mapped_column(Text)
    credential_enc: Mapped[bytes] = mapped_column(LargeBinary)


class ImportStaging(Base):
    """The shape of a job's staging table: each job COPYs its validated registrations into an UNLOGGED table
    of its own created LIKE this one (`registry.import_stage_<job>`), dropped by the merge. This one stays
    empty."""

    __tablename__ = "import_staging"
    __table_args__ = ({"schema": "registry"},)

    ordinal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line: Mapped[int | None] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    id: Mapped[uuid.UUID] = mapped_column(Uuid)
    existing: Mapped[bool] = mapped_column(Boolean)
    owner_kind: Mapped[str] = mapped_column(Text)
    business_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_email_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(Text)
    preferred_contact_method: Mapped[str | None] = mapped_column(Text)
    contact_hours_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    notes_for_investigators_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    terms_version: Mapped[str | None] = mapped_column(Text)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    credential_hash: Mapped[bytes] = mapped_column(LargeBinary)
    credential_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    delivery: Mapped[str | None] = mapped_column(Text)
    share_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    rejected: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class ImportStagingCamera(Base):
    """The shape of a job's staging table of cameras (`registry.import_stage_cam_<job>`)."""

    __tablename__ = "import_staging_cameras"
    __table_args__ = ({"schema": "registry"},)

    ordinal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    i: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid)
    registration_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(Text)
    direction_deg: Mapped[int | None] = mapped_column(SmallInteger)
    fov_deg: Mapped[int | None] = mapped_column(SmallInteger)
    range_m: Mapped[float | None] = mapped_column(Float)
    placement: Mapped[str | None] = mapped_column(Text)
    covers: Mapped[list[str]] = mapped_column(ARRAY(Text))
    retention_days: Mapped[int | None] = mapped_column(SmallInteger)
    recording: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(Text)
    shares_history: Mapped[bool | None] = mapped_column(Boolean)


class ImportTombstone(Base):
    """A registration an integrator imported and its owner deleted: a later import of the same external id is
    reported, not written. The external id is kept only as a keyed hash."""

    __tablename__ = "import_tombstones"
    __table_args__ = ({"schema": "registry"},)

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.agencies.id", ondelete="CASCADE"), primary_key=True
    )
    external_id_index: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Deletion(Base):
    """A deleted registration, in the order of deletion: the feed other services read to erase what they hold of
    its owner. The registration's random id and the time, nothing else."""

    __tablename__ = "deletions"
    __table_args__ = ({"schema": "registry"},)

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    registration_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OwnerNotice(Base):
    """A message to a registration's owner written in the transaction of the change it announces (the registry's
    outbox), delivered after the commit and by a periodic sweep (services/registry_api/notices.py). It names the
    registration, never the owner's address, which is opened only to send."""

    __tablename__ = "owner_notices"
    __table_args__ = (
        CheckConstraint(_in("status", ("pending", "sent", "undeliverable")), name="ck_owner_notices_status"),
        Index("ix_owner_notices_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_owner_notices_registration_id", "registration_id"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    registration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("registry.registrations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GuessCount(Base):
    """Failed guesses of owner credentials and reset codes (and checks under way), per client, for one window
    (services/registry_api/abuse.py). A client is kept only as a keyed hash of its address, and only until its
    window ends: expired rows are deleted as new checks are counted."""

    __tablename__ = "guess_counts"
    __table_args__ = (Index("ix_guess_counts_window_ends", "window_ends"), {"schema": "registry"})

    bucket: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_ends: Mapped[datetime] = mapped_column(DateTime(timezone=True))
