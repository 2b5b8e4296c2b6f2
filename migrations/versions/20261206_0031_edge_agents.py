"""Edge agents: the program an owner runs at their site to share live video through Canvass's relay, enrolled
with a one-time code the owner asks for (`registry.edge_agent_enrolments`) and then holding a credential scoped to
live sharing for that one registration (`registry.edge_agents`). Codes and credentials are kept only as SHA-256
hashes; both go with their registration (ON DELETE CASCADE).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "edge_agent_enrolments",
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
        schema="registry",
    )
    op.create_index(
        "ix_edge_agent_enrolments_registration",
        "edge_agent_enrolments",
        ["registration_id"],
        schema="registry",
    )
    op.create_table(
        "edge_agents",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("credential_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["registration_id"], ["registry.registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index("ix_edge_agents_registration", "edge_agents", ["registration_id"], schema="registry")


def downgrade() -> None:
    op.drop_table("edge_agents", schema="registry")
    op.drop_table("edge_agent_enrolments", schema="registry")
