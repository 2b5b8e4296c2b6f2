"""A footage request along a route of travel: `requests.requests.route` keeps the route the request was drawn
from (the path, its crs, buffer, timing and margin, as geo_query's `POST /v1/cameras/route` takes it) so its owners
are found again the same way at approval and send; `area_kind` 'route' (the area is the path's buffer). Each
target keeps its own footage window (`window_start`, `window_end`: from its cameras' passing times ± the margin);
NULL for a radius or polygon request, whose targets are asked for the request's one window.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE requests.requests ADD COLUMN route jsonb")
    op.execute("ALTER TABLE requests.requests DROP CONSTRAINT ck_requests_area_kind")
    op.execute(
        "ALTER TABLE requests.requests ADD CONSTRAINT ck_requests_area_kind"
        " CHECK (area_kind IN ('radius', 'polygon', 'route') AND (area_kind = 'route') = (route IS NOT NULL))"
    )
    op.execute(
        "ALTER TABLE requests.targets ADD COLUMN window_start timestamptz, ADD COLUMN window_end timestamptz"
    )
    op.execute(
        "ALTER TABLE requests.targets ADD CONSTRAINT ck_targets_window"
        " CHECK ((window_start IS NULL) = (window_end IS NULL) AND (window_start IS NULL OR window_end > window_start))"
    )


def downgrade() -> None:
    # A route request cannot be told as a radius or a polygon without losing what its owners were asked.
    if (
        op.get_bind()
        .execute(sa.text("SELECT EXISTS (SELECT 1 FROM requests.requests WHERE route IS NOT NULL)"))
        .scalar()
    ):
        raise RuntimeError(
            "requests along a route exist: the downgrade would lose what their owners were asked"
        )
    op.execute("ALTER TABLE requests.targets DROP CONSTRAINT ck_targets_window")
    op.execute("ALTER TABLE requests.targets DROP COLUMN window_start, DROP COLUMN window_end")
    op.execute("ALTER TABLE requests.requests DROP CONSTRAINT ck_requests_area_kind")
    op.execute(
        "ALTER TABLE requests.requests ADD CONSTRAINT ck_requests_area_kind CHECK (area_kind IN ('radius', 'polygon'))"
    )
    op.execute("ALTER TABLE requests.requests DROP COLUMN route")
