"""Who may see a registration, written once, in the database: `registry.visible_to` and `registry.sees`.

The rule has the owner's half and the agency's half, and every query that needs it calls these two functions:

- `registry.visible_to(status, shares)`: the agencies a registration's cameras are shown to, by the owner's
  choices: the agencies it is shared with while it is active; none while it is paused or withdrawn. A deleted
  registration has no cameras left to show. Each camera keeps the answer in `cameras.visible_to` (geo_query
  filters cameras without joining their registration): `registry.sync_cameras` (redefined here to call it) and
  the one-statement registration write it.
- `registry.sees(agency, jurisdiction, visible_to, geom)`: agency `agency` sees a camera when the owner's
  choices show it to the agency and it lies in the agency's `jurisdiction` (boundary included). Every
  agency-facing read of registrations, contacts, re-confirmations and live windows tests it.

Both are pure SQL expressions (immutable, no table read), so the planner inlines them into the calling query:
the plans and their indexes are those of the expressions written out in place.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYNC_CAMERAS = """
    CREATE OR REPLACE FUNCTION registry.sync_cameras(ids uuid[]) RETURNS integer
    LANGUAGE sql AS $$
        WITH mirrored AS (
            SELECT r.id, r.owner_kind, {visible_to} AS visible_to
            FROM registry.registrations r WHERE r.id = ANY(ids)),
        changed AS (
            UPDATE registry.cameras c SET owner_kind = m.owner_kind, visible_to = m.visible_to
            FROM mirrored m
            WHERE c.registration_id = m.id
              AND (c.owner_kind, c.visible_to) IS DISTINCT FROM (m.owner_kind, m.visible_to)
            RETURNING 1)
        SELECT count(*)::integer FROM changed
    $$
"""
SHARES = "ARRAY(SELECT s.agency_id FROM registry.registration_shares s WHERE s.registration_id = r.id)"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION registry.visible_to(status text, shares uuid[]) RETURNS uuid[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN CASE WHEN status = 'active'
                    THEN ARRAY(SELECT DISTINCT a FROM unnest(shares) a WHERE a IS NOT NULL ORDER BY a)
                    ELSE CAST('{}' AS uuid[]) END
        """
    )
    op.execute(
        """
        CREATE FUNCTION registry.sees(agency uuid, jurisdiction geometry, visible_to uuid[], geom geometry)
        RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN agency = ANY(visible_to) AND ST_Covers(jurisdiction, geom)
        """
    )
    op.execute(SYNC_CAMERAS.format(visible_to=f"registry.visible_to(r.status, {SHARES})"))


def downgrade() -> None:
    op.execute(
        SYNC_CAMERAS.format(
            visible_to="CASE WHEN r.status = 'active' THEN"
            " coalesce((SELECT array_agg(s.agency_id ORDER BY s.agency_id)"
            " FROM registry.registration_shares s WHERE s.registration_id = r.id), '{}')"
            " ELSE '{}' END"
        )
    )
    op.execute("DROP FUNCTION registry.sees(uuid, geometry, uuid[], geometry)")
    op.execute("DROP FUNCTION registry.visible_to(text, uuid[])")
