"""A footage request's targets forget a deleted owner's cameras; no planner statistics on where cameras stood.

A target kept, after its owner deleted the registration, the ids of the cameras the request asked about and how far
each stood from the incident (the target's `cameras`, `distance_m`, `footage_until`, and along a route the minutes
the path passed them): with the request's incident point, a ring the owner's camera stood on, and an id that links
the owner across requests. The requests worker now erases them when it reads the deletion (worker.py,
`erase_deleted_owners`); what the agency's counts need stays: the target's state and times, and how many cameras
it asked about (`cameras_erased`, added to the cameras still listed when the request is counted).

`cameras` and `distance_m` get no planner statistics: ANALYZE copied whole `cameras` values (ids and distances)
and distances into `pg_stats`, which the services' runtime role reads, where they outlived an erasure until the
next ANALYZE. No statement filters on either; the request's own targets are few, sorted without the planner's
help. Re-declaring a column's own type drops what an earlier ANALYZE stored (no rewrite: the type does not change).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_STATISTICS: tuple[tuple[str, str], ...] = (("cameras", "jsonb"), ("distance_m", "double precision"))


def upgrade() -> None:
    op.add_column(
        "targets",
        sa.Column("cameras_erased", sa.Integer(), server_default=sa.text("0"), nullable=False),
        schema="requests",
    )
    op.create_check_constraint(
        "ck_targets_cameras_erased", "targets", "cameras_erased >= 0", schema="requests"
    )
    for column, kind in NO_STATISTICS:
        op.execute(f"ALTER TABLE requests.targets ALTER COLUMN {column} SET STATISTICS 0")
        op.execute(
            f"ALTER TABLE requests.targets ALTER COLUMN {column} TYPE {kind}"
        )  # drops stored statistics


def downgrade() -> None:
    for column, _ in NO_STATISTICS:
        op.execute(f"ALTER TABLE requests.targets ALTER COLUMN {column} SET STATISTICS -1")
    op.drop_constraint("ck_targets_cameras_erased", "targets", schema="requests", type_="check")
    op.drop_column("targets", "cameras_erased", schema="requests")
