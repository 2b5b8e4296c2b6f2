"""A footage request's targets forget a deleted owner's cameras; no planner statistics on where cameras stood; the
trail is found by actor and by case number through indexes.

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

An auditor's search of the trail by actor or by case number without a time range walked the agency's whole trail
newest first, testing each record: on a shared two-core machine 150-240 ms per 300,000 records of the agency when
none matched (a trail of 10 million records over 7 years: seconds). Two indexes answer it from the first page:
`(agency, actor, seq)`, and `(agency, case_number, seq)` over the records that carry a case number (the same
searches: 0.5-1 ms). Each append then also writes two index entries, a cost lost in the noise of the append's own
work (its hash, the chain's head row, the oversight index): measured alternately with and without them, 400-1,600
records/s one per transaction and 4,200-6,900/s in one transaction, either way. On an existing trail the indexes
are built at upgrade, a partition at a time, while appends wait (a few seconds per million records).

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
        # Re-declaring its own type drops what an earlier ANALYZE stored.
        op.execute(f"ALTER TABLE requests.targets ALTER COLUMN {column} TYPE {kind}")
    # Newest first within an agency's actor or case: the search's ORDER BY seq DESC LIMIT reads its page off them.
    op.execute("CREATE INDEX ix_audit_events_agency_actor ON audit.events (agency, actor, seq)")
    op.execute(
        "CREATE INDEX ix_audit_events_agency_case ON audit.events (agency, case_number, seq)"
        " WHERE case_number IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX audit.ix_audit_events_agency_case")
    op.execute("DROP INDEX audit.ix_audit_events_agency_actor")
    for column, _ in NO_STATISTICS:
        op.execute(f"ALTER TABLE requests.targets ALTER COLUMN {column} SET STATISTICS -1")
    op.drop_constraint("ck_targets_cameras_erased", "targets", schema="requests", type_="check")
    op.drop_column("targets", "cameras_erased", schema="requests")
