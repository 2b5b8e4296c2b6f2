"""Bulk imports: jobs, their rejected features, credentials awaiting delivery, and the shape of the staging
tables.

Each job stages into UNLOGGED tables of its own in the `registry_import` schema (created LIKE the two
`registry.import_staging*` tables here, which stay empty), dropped by the job's merge.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS registry_import")
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("crs", sa.Text(), nullable=True),
        sa.Column("mode", sa.Text(), server_default=sa.text("'all'"), nullable=False),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("credentials", sa.Text(), server_default=sa.text("'email'"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("spool_path", sa.Text(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'queued'"), nullable=False),
        sa.Column("phase", sa.Text(), server_default=sa.text("'staging'"), nullable=False),
        sa.Column("read", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("valid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report_downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="ck_import_jobs_status"
        ),
        sa.CheckConstraint(
            "phase IN ('receiving', 'staging', 'merging', 'done')", name="ck_import_jobs_phase"
        ),
        sa.CheckConstraint("mode IN ('all', 'valid')", name="ck_import_jobs_mode"),
        sa.CheckConstraint("credentials IN ('email', 'report', 'none')", name="ck_import_jobs_credentials"),
        sa.ForeignKeyConstraint(["agency_id"], ["registry.agencies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "uq_import_jobs_idempotency",
        "import_jobs",
        ["principal", "idempotency_key"],
        unique=True,
        schema="registry",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index(
        "ix_import_jobs_agency_created", "import_jobs", ["agency_id", "created_at"], schema="registry"
    )
    op.create_index(
        "ix_import_jobs_unfinished",
        "import_jobs",
        ["status"],
        schema="registry",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )

    op.create_table(
        "import_rejections",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("pointer", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["registry.import_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "ordinal", "seq"),
        schema="registry",
    )

    op.create_table(
        "import_credentials",
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("delivery", sa.Text(), nullable=False),
        sa.Column("credential_enc", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("delivery IN ('email', 'report')", name="ck_import_credentials_delivery"),
        # No foreign keys: a per-row check on each of a million new owners' credentials costs as much as
        # writing them (measured: 4 s without, 12 s with ON DELETE CASCADE). Rows leave when delivered (mail
        # sent, report downloaded); the import runner purges those whose registration was deleted meanwhile,
        # or whose job ended more than 7 days ago, at each job's end, report download and periodic sweep.
        sa.PrimaryKeyConstraint("registration_id"),
        schema="registry",
    )
    op.create_index(
        "ix_import_credentials_job", "import_credentials", ["job_id", "delivery"], schema="registry"
    )

    op.create_table(
        "import_staging",
        sa.Column("ordinal", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("existing", sa.Boolean(), nullable=False),
        sa.Column("owner_kind", sa.Text(), nullable=False),
        sa.Column("business_name", sa.Text(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("contact_name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("contact_email_enc", sa.LargeBinary(), nullable=True),
        sa.Column("contact_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("contact_email_index", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("preferred_contact_method", sa.Text(), nullable=True),
        sa.Column("contact_hours", sa.Text(), nullable=True),
        sa.Column("notes_for_investigators", sa.Text(), nullable=True),
        sa.Column("terms_version", sa.Text(), nullable=True),
        sa.Column("terms_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("credential_hash", sa.LargeBinary(), nullable=False),
        sa.Column("credential_enc", sa.LargeBinary(), nullable=True),
        sa.Column("delivery", sa.Text(), nullable=True),
        sa.Column("share_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        # Set when the jurisdiction or duplicate check refuses a staged row: it is reported, never merged.
        sa.Column("rejected", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("ordinal"),
        schema="registry",
    )
    op.create_table(
        "import_staging_cameras",
        sa.Column("ordinal", sa.BigInteger(), nullable=False),
        sa.Column("i", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("direction_deg", sa.SmallInteger(), nullable=True),
        sa.Column("fov_deg", sa.SmallInteger(), nullable=True),
        sa.Column("range_m", sa.Float(), nullable=True),
        sa.Column("placement", sa.Text(), nullable=True),
        sa.Column("covers", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("retention_days", sa.SmallInteger(), nullable=True),
        sa.Column("recording", sa.Text(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("shares_history", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("ordinal", "i"),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_table("import_staging_cameras", schema="registry")
    op.drop_table("import_staging", schema="registry")
    op.drop_index("ix_import_credentials_job", table_name="import_credentials", schema="registry")
    op.drop_table("import_credentials", schema="registry")
    op.drop_table("import_rejections", schema="registry")
    op.drop_index(
        "ix_import_jobs_unfinished",
        table_name="import_jobs",
        schema="registry",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index("ix_import_jobs_agency_created", table_name="import_jobs", schema="registry")
    op.drop_index(
        "uq_import_jobs_idempotency",
        table_name="import_jobs",
        schema="registry",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_table("import_jobs", schema="registry")
    op.execute("DROP SCHEMA IF EXISTS registry_import CASCADE")
