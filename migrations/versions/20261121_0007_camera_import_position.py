"""Imported cameras remember their place in the integrator's list (`registry.cameras.import_position`), so a
re-import updates the cameras it created and no other: a camera the owner added (position NULL) is never given an
imported camera's description, however many cameras a later file lists.

Cameras of registrations imported before this revision are numbered as re-imports matched them until now (in the
order they were added), so nothing changes for them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cameras", sa.Column("import_position", sa.SmallInteger(), nullable=True), schema="registry"
    )
    op.execute(
        """
        UPDATE registry.cameras c SET import_position = o.i
        FROM (SELECT c.id, row_number() OVER (PARTITION BY c.registration_id ORDER BY c.created_at, c.id) - 1 AS i
              FROM registry.cameras c JOIN registry.registrations r ON r.id = c.registration_id
              WHERE r.source = 'import') o
        WHERE c.id = o.id
        """
    )


def downgrade() -> None:
    op.drop_column("cameras", "import_position", schema="registry")
