"""Foundation: PostGIS, one schema per owning service, the registry tables, the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_ROLE = "canvass_read"
REGISTRY_READABLE = ("agencies", "registrations", "registration_shares", "cameras", "live_windows")


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    for schema in ("registry", "requests", "audit"):
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    # The read-only group role geo_query's login role belongs to. Creating it needs CREATEROLE; where the
    # migrating role lacks it, the deployment creates the role and the grants below still apply.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READ_ROLE}') THEN
                BEGIN
                    CREATE ROLE {READ_ROLE} NOLOGIN;
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE NOTICE 'cannot create role {READ_ROLE}; create it and re-run the grants';
                END;
            END IF;
        END $$;
        """
    )

    op.create_table(
        "agencies",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("jurisdiction", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("max_request_area_m2", sa.Float(), server_default=sa.text("1294994"), nullable=False),
        sa.Column("max_request_window_hours", sa.Float(), server_default=sa.text("12"), nullable=False),
        sa.Column("default_request_expiry_days", sa.Integer(), server_default=sa.text("14"), nullable=False),
        sa.Column("requires_approval", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("evidence_retention_days", sa.Integer(), server_default=sa.text("365"), nullable=False),
        sa.Column("max_search_radius_m", sa.Float(), server_default=sa.text("2000"), nullable=False),
        sa.Column("reconfirm_after_days", sa.Integer(), server_default=sa.text("365"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="ck_agencies_slug"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
        schema="registry",
    )
    op.create_index(
        "ix_agencies_jurisdiction", "agencies", ["jurisdiction"], schema="registry", postgresql_using="gist"
    )

    op.create_table(
        "registrations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("owner_kind", sa.Text(), server_default=sa.text("'residential'"), nullable=False),
        sa.Column("business_name", sa.Text(), nullable=True),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
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
        sa.Column("credential_issued_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("source", sa.Text(), server_default=sa.text("'owner'"), nullable=False),
        sa.Column("registered_by", sa.Text(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("last_confirmed_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'paused', 'withdrawn')", name="ck_registrations_status"),
        sa.CheckConstraint(
            "owner_kind IN ('residential', 'business', 'school', 'place_of_worship', 'nonprofit', 'government')",
            name="ck_registrations_owner_kind",
        ),
        sa.CheckConstraint("source IN ('owner', 'advocate', 'import')", name="ck_registrations_source"),
        sa.CheckConstraint(
            "contact_email_enc IS NOT NULL OR contact_phone_enc IS NOT NULL", name="ck_registrations_contact"
        ),
        sa.ForeignKeyConstraint(["agency_id"], ["registry.agencies.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "external_id", name="uq_registrations_external_id"),
        schema="registry",
    )
    op.create_index(
        "ix_registrations_agency_confirmed",
        "registrations",
        ["agency_id", "last_confirmed_at"],
        schema="registry",
    )
    op.create_index(
        "ix_registrations_email_index", "registrations", ["contact_email_index"], schema="registry"
    )

    op.create_table(
        "registration_shares",
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["registry.agencies.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registration_id", "agency_id"),
        schema="registry",
    )

    op.create_table(
        "cameras",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("direction_deg", sa.SmallInteger(), nullable=True),
        sa.Column("fov_deg", sa.SmallInteger(), nullable=True),
        sa.Column("range_m", sa.Float(), nullable=True),
        sa.Column("placement", sa.Text(), nullable=True),
        sa.Column("covers", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("retention_days", sa.SmallInteger(), nullable=True),
        sa.Column("recording", sa.Text(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("shares_history", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("live_mode", sa.Text(), server_default=sa.text("'never'"), nullable=False),
        sa.Column("live_endpoint_enc", sa.LargeBinary(), nullable=True),
        sa.Column("owner_kind", sa.Text(), nullable=False),
        sa.Column("visible_to", postgresql.ARRAY(sa.Uuid()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "direction_deg IS NULL OR direction_deg BETWEEN 0 AND 359", name="ck_cameras_direction"
        ),
        sa.CheckConstraint("fov_deg IS NULL OR fov_deg BETWEEN 1 AND 360", name="ck_cameras_fov"),
        sa.CheckConstraint("range_m IS NULL OR range_m > 0", name="ck_cameras_range"),
        sa.CheckConstraint(
            "retention_days IS NULL OR retention_days BETWEEN 0 AND 3650", name="ck_cameras_retention"
        ),
        sa.CheckConstraint(
            "placement IS NULL OR placement IN ('indoor', 'outdoor')", name="ck_cameras_placement"
        ),
        sa.CheckConstraint("live_mode IN ('never', 'on_alert', 'emergency')", name="ck_cameras_live_mode"),
        sa.CheckConstraint(
            "recording IS NULL OR recording IN ('continuous', 'motion', 'scheduled')",
            name="ck_cameras_recording",
        ),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index("ix_cameras_geom", "cameras", ["geom"], schema="registry", postgresql_using="gist")
    op.create_index("ix_cameras_registration", "cameras", ["registration_id"], schema="registry")

    op.create_table(
        "live_windows",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("camera_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("agency_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index("ix_live_windows_registration", "live_windows", ["registration_id"], schema="registry")

    op.create_table(
        "credential_resets",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
        schema="registry",
    )
    op.create_index(
        "ix_credential_resets_registration", "credential_resets", ["registration_id"], schema="registry"
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "principal"),
        schema="registry",
    )
    op.create_index(
        "ix_idempotency_keys_registration", "idempotency_keys", ["registration_id"], schema="registry"
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"], schema="registry")

    _create_audit()
    _grant_reads()


def _create_audit() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=True),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("case_number", sa.Text(), nullable=True),
        sa.Column("area", Geometry(srid=4326, spatial_index=False), nullable=True),
        sa.Column("details", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        schema="audit",
    )
    op.create_index("ix_audit_events_agency_at", "events", ["agency", "at"], schema="audit")
    op.create_index("ix_audit_events_subject", "events", ["subject_type", "subject_id"], schema="audit")
    for statement in _AUDIT_DDL:
        op.execute(statement)


_AUDIT_DDL = [
    """
    CREATE TABLE audit.chain_head (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        seq bigint NOT NULL,
        hash bytea NOT NULL
    )
    """,
    """
    INSERT INTO audit.chain_head VALUES (true, 0, '\\x'::bytea || sha256('canvass-audit-genesis'))
    """,
    """
    CREATE FUNCTION audit.canonical(e audit.events) RETURNS bytea
    LANGUAGE sql IMMUTABLE AS $$
        SELECT convert_to(concat_ws(chr(31),
            e.seq::text, e.id::text,
            to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            e.service, e.actor, e.actor_role, coalesce(e.agency, ''), e.action,
            coalesce(e.subject_type, ''), coalesce(e.subject_id, ''), coalesce(e.case_number, ''),
            coalesce(encode(ST_AsEWKB(e.area), 'hex'), ''), e.details::text), 'UTF8')
    $$
    """,
    """
    CREATE FUNCTION audit.append_event(
        p_service text, p_actor text, p_actor_role text, p_agency text, p_action text,
        p_subject_type text, p_subject_id text, p_case_number text, p_area_geojson text, p_details jsonb
    ) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
    DECLARE
        head audit.chain_head;
        rec audit.events;
    BEGIN
        -- One writer at a time extends the chain; the lock is held until the transaction ends.
        SELECT * INTO head FROM audit.chain_head FOR UPDATE;
        rec.seq := head.seq + 1;
        rec.id := gen_random_uuid();
        rec.at := clock_timestamp();
        rec.service := p_service; rec.actor := p_actor; rec.actor_role := p_actor_role;
        rec.agency := p_agency; rec.action := p_action; rec.subject_type := p_subject_type;
        rec.subject_id := p_subject_id; rec.case_number := p_case_number;
        rec.area := CASE WHEN p_area_geojson IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_GeomFromGeoJSON(p_area_geojson), 4326) END;
        rec.details := coalesce(p_details, '{}'::jsonb);
        rec.prev_hash := head.hash;
        rec.hash := sha256(head.hash || audit.canonical(rec));
        INSERT INTO audit.events VALUES (rec.*);
        UPDATE audit.chain_head SET seq = rec.seq, hash = rec.hash;
        RETURN rec.id;
    END $$
    """,
    """
    CREATE FUNCTION audit.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit trail is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events
        FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()
    """,
    """
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
        FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()
    """,
    """
    CREATE FUNCTION audit.verify_chain() RETURNS TABLE(seq bigint, ok boolean, reason text)
    LANGUAGE plpgsql STABLE AS $$
    DECLARE
        e audit.events;
        prev bytea := '\\x'::bytea || sha256('canvass-audit-genesis');
        expected_seq bigint := 1;
        head audit.chain_head;
    BEGIN
        FOR e IN SELECT * FROM audit.events ORDER BY events.seq LOOP
            IF e.seq <> expected_seq THEN
                seq := expected_seq; ok := false; reason := 'record missing'; RETURN NEXT;
            END IF;
            IF e.prev_hash <> prev THEN
                seq := e.seq; ok := false; reason := 'link to the previous record broken'; RETURN NEXT;
            END IF;
            IF e.hash <> sha256(e.prev_hash || audit.canonical(e)) THEN
                seq := e.seq; ok := false; reason := 'record altered'; RETURN NEXT;
            END IF;
            prev := e.hash;
            expected_seq := e.seq + 1;
        END LOOP;
        SELECT * INTO head FROM audit.chain_head;
        IF head.seq <> expected_seq - 1 OR head.hash <> prev THEN
            seq := head.seq; ok := false; reason := 'records missing at the end of the chain'; RETURN NEXT;
        END IF;
        seq := expected_seq - 1; ok := true; reason := 'chain intact'; RETURN NEXT;
    END $$
    """,
    """
    REVOKE ALL ON audit.events, audit.chain_head FROM PUBLIC
    """,
]


def _grant_reads() -> None:
    tables = ", ".join(f"registry.{t}" for t in REGISTRY_READABLE)
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{READ_ROLE}') THEN
                GRANT USAGE ON SCHEMA registry, audit TO {READ_ROLE};
                GRANT SELECT ON {tables} TO {READ_ROLE};
                GRANT SELECT ON public.alembic_version TO {READ_ROLE};
                GRANT EXECUTE ON FUNCTION audit.append_event(
                    text, text, text, text, text, text, text, text, text, jsonb) TO {READ_ROLE};
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS audit CASCADE")
    op.execute("DROP SCHEMA IF EXISTS requests CASCADE")
    op.execute("DROP SCHEMA IF EXISTS registry CASCADE")
