"""Audit records appended a batch at a time: `audit.append_events` extends the hash chain with many records under
one lock of its head, in one INSERT and one update of the head, where calling `audit.append_event` once per record
took the lock, inserted and moved the head once per record (about 100 µs of the database each; a batch of six now
costs about as much as two single records). The records, their order and their hashes are exactly those the single
function would write one after the other: `audit.verify_chain` checks both alike.

Also: neither function may be called by just any role of the database. PostgreSQL grants EXECUTE on a new
function to PUBLIC; a role that may log in but was not given the right (a reporting role, say) could otherwise add
records to the trail. Only the roles 0001 and 0005 grant it to keep it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONE = "audit.append_event(text, text, text, text, text, text, text, text, text, jsonb)"
APPEND_MANY = (
    "audit.append_events(text[], text[], text[], text[], text[], text[], text[], text[], text[], jsonb[])"
)
ROLES = ("canvass_app", "canvass_read")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION audit.append_events(
            p_service text[], p_actor text[], p_actor_role text[], p_agency text[], p_action text[],
            p_subject_type text[], p_subject_id text[], p_case_number text[], p_area_geojson text[],
            p_details jsonb[]
        ) RETURNS SETOF uuid
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
        DECLARE
            head audit.chain_head;
            pending audit.events[];
            rec audit.events;
            chained audit.events[] := '{}';
            h bytea;
        BEGIN
            -- One writer at a time extends the chain; the lock is held until the transaction ends.
            SELECT * INTO head FROM audit.chain_head FOR UPDATE;
            SELECT array_agg(ROW(
                       head.seq + t.n, gen_random_uuid(), clock_timestamp(), t.service, t.actor, t.actor_role,
                       t.agency, t.action, t.subject_type, t.subject_id, t.case_number,
                       CASE WHEN t.area IS NULL THEN NULL ELSE ST_SetSRID(ST_GeomFromGeoJSON(t.area), 4326) END,
                       coalesce(t.details, '{}'::jsonb), NULL, NULL)::audit.events ORDER BY t.n)
              INTO pending
              FROM unnest(p_service, p_actor, p_actor_role, p_agency, p_action, p_subject_type, p_subject_id,
                          p_case_number, p_area_geojson, p_details)
                   WITH ORDINALITY AS t(service, actor, actor_role, agency, action, subject_type, subject_id,
                                        case_number, area, details, n);
            IF pending IS NULL THEN
                RETURN;
            END IF;
            h := head.hash;
            FOREACH rec IN ARRAY pending LOOP
                rec.prev_hash := h;
                rec.hash := sha256(h || audit.canonical(rec));
                h := rec.hash;
                chained := chained || rec;
            END LOOP;
            INSERT INTO audit.events SELECT * FROM unnest(chained);
            UPDATE audit.chain_head SET seq = head.seq + cardinality(chained), hash = h;
            RETURN QUERY SELECT c.id FROM unnest(chained) AS c ORDER BY c.seq;
        END $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {APPEND_ONE}, {APPEND_MANY} FROM PUBLIC")
    for role in ROLES:
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    GRANT EXECUTE ON FUNCTION {APPEND_MANY} TO {role};
                END IF;
            END $$;
            """
        )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {APPEND_MANY}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {APPEND_ONE} TO PUBLIC")
