"""Owner notices and guess limits.

- `registry.owner_notices`: the registry's outbox of messages to owners, written in the transaction of the change
  they announce (a jurisdiction that shrank away from their cameras), delivered after it commits.
- `registry.guess_counts`: failed guesses of owner credentials and reset codes per registration and per client
  (a keyed hash of the address), kept only until the window they count for ends.

A downgrade drops both: pending notices are then lost, and the guess counts start afresh.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owner_notices",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent', 'undeliverable')", name="ck_owner_notices_status"),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_owner_notices_registration_id", "owner_notices", ["registration_id"], schema="registry"
    )
    op.create_index(
        "ix_owner_notices_due",
        "owner_notices",
        ["next_attempt_at"],
        schema="registry",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "guess_counts",
        sa.Column("bucket", sa.LargeBinary(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_ends", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
        schema="registry",
    )
    op.create_index("ix_guess_counts_window_ends", "guess_counts", ["window_ends"], schema="registry")


def downgrade() -> None:
    op.drop_index("ix_guess_counts_window_ends", table_name="guess_counts", schema="registry")
    op.drop_table("guess_counts", schema="registry")
    op.drop_index("ix_owner_notices_due", table_name="owner_notices", schema="registry")
    op.drop_index("ix_owner_notices_registration_id", table_name="owner_notices", schema="registry")
    op.drop_table("owner_notices", schema="registry")
