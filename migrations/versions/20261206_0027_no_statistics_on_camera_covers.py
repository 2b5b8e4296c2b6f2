"""No planner statistics on what an owner writes a camera covers.

A camera's `covers` is an owner's own words (up to 12 of up to 60 characters each: "street", or "the Smiths'
backyard"), kept plain because geo_query's answers read it from SQL. Migration 0017 took the statistics off the
other owner-written columns but not this one, so ANALYZE copied its words into `pg_stats.most_common_elems`, where
the services' runtime role reads them, and a deleted owner's words stayed there until the next ANALYZE. No
statement filters or sorts on it, so its statistics target is 0; re-declaring the column's own type drops what an
earlier ANALYZE stored (no rewrite: the type does not change).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERS: tuple[str, ...] = ("registry.cameras", "registry.import_staging_cameras")


def upgrade() -> None:
    for table in COVERS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN covers SET STATISTICS 0")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN covers TYPE text[]")  # drops the stored statistics


def downgrade() -> None:
    for table in COVERS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN covers SET STATISTICS -1")
