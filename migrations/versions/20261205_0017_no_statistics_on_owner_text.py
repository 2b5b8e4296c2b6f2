"""No planner statistics on the free texts an owner writes.

ANALYZE (autovacuum's included) copies sample values of every column into `pg_statistic`: the most common values
and a histogram, readable through `pg_stats` by any role that may read the table. For an owner's notes, business
name, contact hours, camera labels and schedules, answer notes and evidence descriptions and file names, that kept
copies of what the owner wrote after the owner had deleted it, until the next ANALYZE. No query plans on these
columns (searches filter on positions, agencies and enumerated properties), so their statistics target is 0: ANALYZE
no longer samples them. `SET STATISTICS 0` alone keeps what an earlier ANALYZE stored; re-declaring the column's own
type drops it (no rewrite: the type does not change).

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): every column holding text an owner wrote that no statement filters or sorts on.
OWNER_TEXT: tuple[tuple[str, str], ...] = (
    ("registry.registrations", "business_name"),
    ("registry.registrations", "contact_hours"),
    ("registry.registrations", "notes_for_investigators"),
    ("registry.cameras", "label"),
    ("registry.cameras", "schedule"),
    ("registry.import_staging", "business_name"),
    ("registry.import_staging", "contact_hours"),
    ("registry.import_staging", "notes_for_investigators"),
    ("registry.import_staging_cameras", "label"),
    ("registry.import_staging_cameras", "schedule"),
    ("requests.events", "note"),
    ("requests.evidence", "filename"),
    ("requests.evidence", "description"),
    ("requests.evidence", "original_filename"),
)


def upgrade() -> None:
    for table, column in OWNER_TEXT:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text")  # drops the stored statistics


def downgrade() -> None:
    for table, column in OWNER_TEXT:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1")
