"""`registry.sees` tests the jurisdiction with ST_Intersects(geom, jurisdiction), as geo_query's searches do.

Migration 0025 wrote the agency's half of the visibility rule as `ST_Covers(jurisdiction, geom)`. For a camera
(a point: `registry.cameras.geom` is `geometry(Point, 4326)`) the two tests give the same answer everywhere, the
jurisdiction's boundary included. They do not plan alike once inlined: PostGIS derives the index condition
`geom && jurisdiction` from ST_Intersects and `geom @ jurisdiction` from ST_Covers, and `@` is estimated with a
fixed selectivity (contsel) where `&&` has the spatial estimator. For geo_query's nearest-K search that turns the
ordered walk of the GiST index (`ORDER BY geom <-> point LIMIT k`: a few pages) into a scan of every camera in the
jurisdiction and a sort (a hundred times the pages on the bench's data). Written with ST_Intersects, the rule's
one definition inlines into geo_query's searches and tiles with the plans they had with the test written in place,
and registry_api's queries that call it keep theirs (they find cameras by registration or window first).

Still a single SQL expression, immutable, without SET or SECURITY DEFINER: the planner inlines it.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEES = """
    CREATE OR REPLACE FUNCTION registry.sees(agency uuid, jurisdiction geometry, visible_to uuid[], geom geometry)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN agency = ANY(visible_to) AND {jurisdiction_test}
"""


def upgrade() -> None:
    op.execute(SEES.format(jurisdiction_test="ST_Intersects(geom, jurisdiction)"))


def downgrade() -> None:
    op.execute(SEES.format(jurisdiction_test="ST_Covers(jurisdiction, geom)"))
