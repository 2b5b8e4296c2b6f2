"""One place keeps each camera's copy of its registration's properties: `registry.sync_cameras(ids)`.

geo_query filters cameras without joining their registration, so each camera carries what those filters ask of
the registration: `owner_kind`, and `visible_to` (the agencies of its shares while it is active, none otherwise).
Every writer that changes a registration's owner kind, status or shares calls this function in the same
transaction: the owner's API and the import alike, for every camera of the registration (imported or the
owner's, listed in the file or not). It rewrites only the cameras whose copy differs.

The upgrade repairs the cameras left with an old owner kind by re-imports before this revision.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION registry.sync_cameras(ids uuid[]) RETURNS integer
        LANGUAGE sql AS $$
            WITH mirrored AS (
                SELECT r.id, r.owner_kind,
                       CASE WHEN r.status = 'active' THEN
                           coalesce((SELECT array_agg(s.agency_id ORDER BY s.agency_id)
                                     FROM registry.registration_shares s WHERE s.registration_id = r.id), '{}')
                       ELSE '{}' END AS visible_to
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
    )
    op.execute("REVOKE ALL ON FUNCTION registry.sync_cameras(uuid[]) FROM PUBLIC")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT EXECUTE ON FUNCTION registry.sync_cameras(uuid[]) TO {APP_ROLE};
            END IF;
        END $$;
        """
    )
    op.execute("SELECT registry.sync_cameras(array_agg(id)) FROM registry.registrations")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS registry.sync_cameras(uuid[])")
