"""Evidence keeps the file name an owner sent beside the cleaned one it is served under.

`requests.evidence.filename` is now the name cleaned at upload (no control characters or path separators,
bounded length): the one downloads use. `original_filename` is the name exactly as sent (bounded, NUL replaced),
kept as data only and erased with the owner's other words when they delete their registration.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("evidence", sa.Column("original_filename", sa.Text(), nullable=True), schema="requests")


def downgrade() -> None:
    op.drop_column("evidence", "original_filename", schema="requests")
