"""Footage requests' lifecycle:

- `requests.idempotency_keys`: a create's answer kept for a retry by the same caller with the same body, within
  the replay window (shared/idempotency.py). It replaces `requests.requests.idempotency_key`, which was unique per
  agency (a colleague's key replayed another's request) and ignored the body; keys given before are not carried
  over (their replay window is the new rule's, and they named no caller).
- targets may be `dropped`: an owner no longer reachable when the request is approved or sent (paused,
  withdrawn, deleted, no longer sharing, camera removed or not sharing recorded footage) is never contacted.
- `requests.targets.agency_seq`: the number of the last message about the target sent to the agency, so each
  webhook delivery carries its per-target sequence number.
- `requests.targets.uploaded_at`: when the owner first uploaded (from the history for targets before this), so the
  transparency report counts a month as of its last instant.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_TARGET_STATES = (
    "'pending', 'notified', 'viewed', 'accepted', 'declined', 'uploaded', 'completed', 'expired', "
    "'video_unavailable'"
)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "principal"),
        schema="requests",
    )
    op.create_index(
        "ix_requests_idempotency_keys_created", "idempotency_keys", ["created_at"], schema="requests"
    )
    op.create_index(
        "ix_requests_idempotency_keys_request", "idempotency_keys", ["request_id"], schema="requests"
    )
    op.drop_constraint("uq_requests_idempotency_key", "requests", schema="requests", type_="unique")
    op.drop_column("requests", "idempotency_key", schema="requests")
    op.drop_constraint("ck_targets_state", "targets", schema="requests", type_="check")
    op.create_check_constraint(
        "ck_targets_state", "targets", f"state IN ({_OLD_TARGET_STATES}, 'dropped')", schema="requests"
    )
    op.add_column(
        "targets",
        sa.Column("agency_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        schema="requests",
    )
    op.add_column(
        "targets", sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True), schema="requests"
    )
    op.execute(
        "UPDATE requests.targets t SET uploaded_at = e.at FROM (SELECT target_id, min(at) AS at FROM requests.events"
        " WHERE action = 'upload' AND target_id IS NOT NULL GROUP BY target_id) e WHERE e.target_id = t.id"
    )


def downgrade() -> None:
    op.drop_column("targets", "uploaded_at", schema="requests")
    op.drop_column("targets", "agency_seq", schema="requests")
    op.drop_constraint("ck_targets_state", "targets", schema="requests", type_="check")
    op.execute("UPDATE requests.targets SET state = 'expired' WHERE state = 'dropped'")
    op.create_check_constraint(
        "ck_targets_state", "targets", f"state IN ({_OLD_TARGET_STATES})", schema="requests"
    )
    op.add_column("requests", sa.Column("idempotency_key", sa.Text(), nullable=True), schema="requests")
    op.create_unique_constraint(
        "uq_requests_idempotency_key", "requests", ["agency", "idempotency_key"], schema="requests"
    )
    op.drop_index("ix_requests_idempotency_keys_request", table_name="idempotency_keys", schema="requests")
    op.drop_index("ix_requests_idempotency_keys_created", table_name="idempotency_keys", schema="requests")
    op.drop_table("idempotency_keys", schema="requests")
