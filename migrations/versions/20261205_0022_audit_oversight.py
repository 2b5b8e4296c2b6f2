"""Oversight reads the audit trail: each record's places and targets indexed beside it, and a program's
disclosure delay.

`audit.event_places` holds, for each record, the places it touched: its searched area or point, and where the
cameras it names stood (a live view's cameras, the cameras of a footage request's targets, the registrations
whose contact details a search listed). `audit.event_refs` holds the ids it touched: its subject, the
registration and cameras in its details, the registrations and cameras of a footage request's targets, and the
registration of every camera named. Both are filled by a trigger on `audit.events` from what was
appended, so every writer — `append_event`, `append_events`, or whatever statement appends next — is covered
without being changed, and a place search is answered from a GiST index instead of reading the trail.

The side tables are derived (they can be rebuilt from the trail) and hold nothing the trail does not already
say; like the trail, the services may read them and not write them.

`registry.agencies.disclosure_delay_days` (0 to 90, default 0): how long after an access an owner's access report
shows it; public, so a resident knows it before registering.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"

# What a record's details name, for the records from `lo` to `hi`: the cameras and registrations (and a footage
# request's targets), their registrations, and where those cameras stand. One definition, used by the trigger and
# the backfill. A record's own area and subject are indexed apart, by simpler statements (most records have no
# more than those, and this statement is the costly part).
_INDEX_DETAILS = """
CREATE FUNCTION audit.index_details(lo bigint, hi bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
BEGIN
    -- PL/pgSQL keeps this statement's plan for the session: a SQL function would plan it on every append.
    WITH e AS MATERIALIZED (
        SELECT seq, agency, action, subject_type, subject_id, details
        FROM audit.events WHERE seq BETWEEN lo AND hi
    ),
    named(seq, agency, target, camera) AS (
        SELECT seq, agency, subject_id, true FROM e WHERE subject_type = 'camera' AND subject_id IS NOT NULL
        UNION ALL
        SELECT seq, agency, details->>'registration_id', false FROM e WHERE details ? 'registration_id'
        UNION ALL
        SELECT e.seq, e.agency, c.v, true
        FROM e, jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(e.details->'cameras') = 'array' THEN e.details->'cameras' END) AS c(v)
        UNION ALL
        SELECT e.seq, e.agency, c.v, false
        FROM e, jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(e.details->'contacts_disclosed') = 'array'
                 THEN e.details->'contacts_disclosed' END) AS c(v)
        UNION ALL
        SELECT e.seq, e.agency, t.registration_id::text, false
        FROM e JOIN requests.targets t ON t.request_id::text = e.subject_id
        WHERE e.action = 'request.create' AND e.subject_type = 'request'
        UNION ALL
        SELECT e.seq, e.agency, c->>'camera_id', true
        FROM e JOIN requests.targets t ON t.request_id::text = e.subject_id,
             jsonb_array_elements(t.cameras) AS c
        WHERE e.action = 'request.create' AND e.subject_type = 'request'
    ),
    -- Only well-formed ids are looked up: a detail is whatever its writer put there.
    ids AS (
        SELECT DISTINCT seq, agency, target, camera,
               CASE WHEN target ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    THEN target::uuid END AS id
        FROM named WHERE target IS NOT NULL AND char_length(target) <= 200
    ),
    cams AS (
        SELECT i.seq, i.agency, c.id, c.registration_id, c.geom
        FROM ids i JOIN registry.cameras c ON c.id = i.id WHERE i.camera
    ),
    regs AS (
        SELECT i.seq, i.agency, r.location AS geom
        FROM ids i JOIN registry.registrations r ON r.id = i.id WHERE NOT i.camera
    ),
    refs AS (
        INSERT INTO audit.event_refs (seq, target)
        SELECT seq, target FROM ids
        UNION SELECT seq, registration_id::text FROM cams
        ON CONFLICT DO NOTHING
    )
    INSERT INTO audit.event_places (seq, agency, geom)
    SELECT seq, agency, geom FROM cams
    UNION ALL SELECT seq, agency, geom FROM regs WHERE geom IS NOT NULL;
END $$
"""

# A record's own area and subject, and, only for a record whose details name more, `index_details`. A row trigger:
# most records need two small inserts, and a statement trigger's transition table cost more than they do.
_TRIGGER_FUNCTION = """
CREATE FUNCTION audit.index_appended() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
BEGIN
    IF NEW.area IS NOT NULL AND NOT ST_IsEmpty(NEW.area) THEN
        INSERT INTO audit.event_places (seq, agency, geom) VALUES (NEW.seq, NEW.agency, NEW.area);
    END IF;
    IF NEW.subject_id IS NOT NULL AND char_length(NEW.subject_id) <= 200 THEN
        INSERT INTO audit.event_refs (seq, target) VALUES (NEW.seq, NEW.subject_id) ON CONFLICT DO NOTHING;
    END IF;
    IF NEW.subject_type = 'camera' OR NEW.action = 'request.create'
       OR NEW.details ?| ARRAY['registration_id', 'cameras', 'contacts_disclosed'] THEN
        PERFORM audit.index_details(NEW.seq, NEW.seq);
    END IF;
    RETURN NULL;
END $$
"""

# The records already in the trail, indexed as the trigger would have.
_BACKFILL = [
    """
    INSERT INTO audit.event_places (seq, agency, geom)
    SELECT seq, agency, area FROM audit.events WHERE area IS NOT NULL AND NOT ST_IsEmpty(area)
    """,
    """
    INSERT INTO audit.event_refs (seq, target)
    SELECT seq, subject_id FROM audit.events WHERE subject_id IS NOT NULL AND char_length(subject_id) <= 200
    ON CONFLICT DO NOTHING
    """,
    "SELECT audit.index_details(1, (SELECT coalesce(max(seq), 0) FROM audit.events))",
]


def upgrade() -> None:
    op.add_column(
        "agencies",
        sa.Column("disclosure_delay_days", sa.Integer(), server_default=sa.text("0"), nullable=False),
        schema="registry",
    )
    op.create_check_constraint(
        "ck_agencies_disclosure_delay",
        "agencies",
        "disclosure_delay_days BETWEEN 0 AND 90",
        schema="registry",
    )
    op.create_table(
        "event_places",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=True),
        sa.Column("geom", Geometry(srid=4326, spatial_index=False), nullable=False),
        schema="audit",
    )
    op.create_index(
        "ix_audit_event_places_geom", "event_places", ["geom"], schema="audit", postgresql_using="gist"
    )
    op.create_index("ix_audit_event_places_seq", "event_places", ["seq"], schema="audit")
    op.create_table(
        "event_refs",
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("target", "seq"),
        schema="audit",
    )
    op.execute(_INDEX_DETAILS)
    op.execute(_TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER events_indexed AFTER INSERT ON audit.events"
        " FOR EACH ROW EXECUTE FUNCTION audit.index_appended()"
    )
    for statement in _BACKFILL:
        op.execute(statement)
    op.execute("REVOKE ALL ON audit.event_places, audit.event_refs FROM PUBLIC")
    op.execute(
        "REVOKE ALL ON FUNCTION audit.index_details(bigint, bigint), audit.index_appended() FROM PUBLIC"
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT SELECT ON audit.event_places, audit.event_refs TO {APP_ROLE};
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_indexed ON audit.events")
    op.execute("DROP FUNCTION audit.index_appended()")
    op.execute("DROP FUNCTION audit.index_details(bigint, bigint)")
    op.drop_table("event_refs", schema="audit")
    op.drop_index("ix_audit_event_places_seq", "event_places", schema="audit")
    op.drop_index("ix_audit_event_places_geom", "event_places", schema="audit")
    op.drop_table("event_places", schema="audit")
    op.drop_constraint("ck_agencies_disclosure_delay", "agencies", schema="registry")
    op.drop_column("agencies", "disclosure_delay_days", schema="registry")
