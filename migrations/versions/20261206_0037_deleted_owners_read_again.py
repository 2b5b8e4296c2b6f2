"""The requests worker reads registry_api's feed of deleted registrations again from its start, so that owners who
deleted before 0036 are forgotten as those deleting now are.

Until 0036 the worker, reading a deletion, erased the owner's notes and what they wrote of their footage; since, it
also erases which of their cameras each footage request asked about and where they stood (the target's `cameras`,
`distance_m`, `footage_until`, window), which camera an upload came from, the messages written to them and their
targets in the answers kept for a create's Idempotency-Key (worker.py, `erase_deleted_owners`). A deletion it had
read before the upgrade is behind its position and never read again: those owners' targets kept their cameras.
Setting the position back to 0 has the worker read every deletion once more, each page erased by today's rules; an
erasure repeated changes nothing, so the owners already forgotten stay as they are.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_AGAIN_SQL = (
    "UPDATE requests.feeds SET position = 0, updated_at = now() WHERE name = 'registry.deletions'"
)


def upgrade() -> None:
    op.execute(READ_AGAIN_SQL)


def downgrade() -> None:
    # What was erased stays erased; where the feed was read to is found again as the worker reads on.
    pass
