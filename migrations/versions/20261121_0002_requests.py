"""Footage requests: requests and their targets, history events, evidence and its chain of custody, the
notification outbox, agencies' webhooks.

History and custody are append-only in the database (a trigger refuses UPDATE and DELETE).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agency_webhooks",
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("agency"),
        schema="requests",
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("agency_name", sa.Text(), nullable=False),
        sa.Column("case_number", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("incident_point", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("area_kind", sa.Text(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("area", Geometry(srid=4326, spatial_index=False), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'draft'"), nullable=False),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("evidence_retention_days", sa.Integer(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("creator_email_enc", sa.LargeBinary(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("area_kind IN ('radius', 'polygon')", name="ck_requests_area_kind"),
        sa.CheckConstraint(
            "state IN ('draft', 'pending_approval', 'approved', 'rejected', 'sent', 'closed', 'cancelled', 'expired')",
            name="ck_requests_state",
        ),
        sa.CheckConstraint("window_end > window_start", name="ck_requests_window"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency", "idempotency_key", name="uq_requests_idempotency_key"),
        schema="requests",
    )
    op.create_index(
        "ix_requests_agency_created",
        "requests",
        ["agency", "created_at", "id"],
        unique=False,
        schema="requests",
    )
    op.create_index("ix_requests_sent_at", "requests", ["agency", "sent_at"], unique=False, schema="requests")
    op.create_index("ix_requests_state_due", "requests", ["state", "due_at"], unique=False, schema="requests")
    op.create_table(
        "targets",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column(
            "cameras", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'"), nullable=False
        ),
        sa.Column("footage_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("state", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'notified', 'viewed', 'accepted', 'declined', 'uploaded', 'completed', 'expired', 'video_unavailable')",
            name="ck_targets_state",
        ),
        sa.ForeignKeyConstraint(["request_id"], ["requests.requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "registration_id", name="uq_targets_request_registration"),
        schema="requests",
    )
    op.create_index(
        "ix_targets_registration", "targets", ["registration_id", "state"], unique=False, schema="requests"
    )
    op.create_index("ix_targets_state", "targets", ["state"], unique=False, schema="requests")
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_id"], ["requests.targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="requests",
    )
    op.create_index("ix_events_request", "events", ["request_id", "id"], unique=False, schema="requests")
    op.create_table(
        "evidence",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("camera_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.requests.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["target_id"], ["requests.targets.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        schema="requests",
    )
    op.create_index("ix_evidence_request", "evidence", ["request_id"], unique=False, schema="requests")
    op.create_index("ix_evidence_sha256", "evidence", ["sha256"], unique=False, schema="requests")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("registration_id", sa.Uuid(), nullable=True),
        sa.Column("agency", sa.Text(), nullable=True),
        sa.Column(
            "payload", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "channel IN ('owner_email', 'agency_email', 'agency_webhook')", name="ck_outbox_channel"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed', 'undeliverable', 'cancelled')",
            name="ck_outbox_status",
        ),
        sa.ForeignKeyConstraint(["request_id"], ["requests.requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_id"], ["requests.targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        schema="requests",
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        unique=False,
        schema="requests",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_outbox_request", "outbox", ["request_id"], unique=False, schema="requests")
    op.create_table(
        "custody",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column(
            "details", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["evidence_id"], ["requests.evidence.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("evidence_id", "seq", name="uq_custody_evidence_seq"),
        schema="requests",
    )
    for statement in _APPEND_ONLY:
        op.execute(statement)


_APPEND_ONLY = [
    """
    CREATE FUNCTION requests.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER custody_append_only BEFORE UPDATE OR DELETE ON requests.custody
        FOR EACH ROW EXECUTE FUNCTION requests.refuse_change()
    """,
    """
    CREATE TRIGGER events_append_only BEFORE UPDATE ON requests.events
        FOR EACH ROW EXECUTE FUNCTION requests.refuse_change()
    """,
]


def downgrade() -> None:
    op.drop_table("custody", schema="requests")
    op.drop_index("ix_outbox_request", table_name="outbox", schema="requests")
    op.drop_index(
        "ix_outbox_due",
        table_name="outbox",
        schema="requests",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("outbox", schema="requests")
    op.drop_index("ix_evidence_sha256", table_name="evidence", schema="requests")
    op.drop_index("ix_evidence_request", table_name="evidence", schema="requests")
    op.drop_table("evidence", schema="requests")
    op.drop_index("ix_events_request", table_name="events", schema="requests")
    op.drop_table("events", schema="requests")
    op.drop_index("ix_targets_state", table_name="targets", schema="requests")
    op.drop_index("ix_targets_registration", table_name="targets", schema="requests")
    op.drop_table("targets", schema="requests")
    op.drop_index("ix_requests_state_due", table_name="requests", schema="requests")
    op.drop_index("ix_requests_sent_at", table_name="requests", schema="requests")
    op.drop_index("ix_requests_agency_created", table_name="requests", schema="requests")
    op.drop_table("requests", schema="requests")
    op.drop_table("agency_webhooks", schema="requests")
    op.execute("DROP FUNCTION IF EXISTS requests.refuse_change()")
