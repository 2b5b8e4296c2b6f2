"""An agency's program publishes its privacy notice: a plain text, a link to one, or both.

A resident asking "am I covered?" sees, beside each covering program's name, what that program does with a
registration; the agency's admin sets it when publishing or updating the program. The bounds the API checks are
also the table's, so no other writer can store a notice the portal was not built to show.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agencies", sa.Column("privacy_notice", sa.Text(), nullable=True), schema="registry")
    op.add_column("agencies", sa.Column("privacy_notice_url", sa.Text(), nullable=True), schema="registry")
    op.create_check_constraint(
        "ck_agencies_privacy_notice",
        "agencies",
        "char_length(privacy_notice) BETWEEN 1 AND 4000",
        schema="registry",
    )
    op.create_check_constraint(
        "ck_agencies_privacy_notice_url",
        "agencies",
        "char_length(privacy_notice_url) <= 2048 AND privacy_notice_url LIKE 'https://%'",
        schema="registry",
    )


def downgrade() -> None:
    op.drop_constraint("ck_agencies_privacy_notice_url", "agencies", schema="registry")
    op.drop_constraint("ck_agencies_privacy_notice", "agencies", schema="registry")
    op.drop_column("agencies", "privacy_notice_url", schema="registry")
    op.drop_column("agencies", "privacy_notice", schema="registry")
