"""The coverage map's counts: how many cameras each agency sees in each hexagonal cell, kept by triggers.

- `registry.agencies.coverage_min_cameras`: the agency's public threshold k (a public coverage cell is shown only
  when it holds at least k cameras); 5 by default, never below 5.
- `registry.coverage_col(x, y, size)`, `registry.coverage_row(col, y, size)`: the (i, j) of the hexagon of PostGIS's `ST_HexagonGrid(size, …)` tiling
  (edge `size` metres, origin 0,0) containing the point (x, y) of EPSG:6933 (the global equal-area grid: a cell
  covers the same ground area at every latitude) — the nearest hexagon centre, which is the containing hexagon.
- `registry.coverage_cells(geom)`: a camera's cell at each size, nested: the 250 m cell is the one containing the
  camera; the 1 km cell the one containing the 250 m cell's centre (nudged, see NUDGE); the 5 km cell the one
  containing the 1 km cell's centre. So every camera of a cell of one size is in one cell of each larger size, and what two sizes'
  answers say about a camera is never finer than what the smaller size says (see docs/decisions/0009).
- `registry.coverage_counts (agency_id, size_m, i, j, cameras)`: per agency, the cameras it sees
  (`registry.sees`) per cell. Statement triggers on `registry.cameras` add the rows a statement inserted and
  subtract those it deleted (an update does both), in the writer's transaction: the counts are exactly those of
  the committed cameras, never late. A change of an agency's jurisdiction recounts that agency.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_ROLE = "canvass_read"
SIZES = (250, 1000, 5000)
# A finer cell's centre, moved this much (metres east, north), is the point whose containing hexagon is its coarser
# cell: the centres of one grid fall exactly on edges of the next (a tie, decided by rounding noise); moved, they
# are never within 0.25 m of one.
NUDGE = (0.5, 0.25)

# The counts a set of camera rows `src` (geom, visible_to, d) adds: `d` is +1 for a row that now exists, -1 for one
# that no longer does. Rows are taken in key order so that concurrent writers lock shared cells in one order.
APPLY = """
    INSERT INTO registry.coverage_counts AS cc (agency_id, size_m, i, j, cameras)
    SELECT a.id, cell.size_m, cell.i, cell.j, sum(src.d)::integer
      FROM ({src}) src
      JOIN registry.agencies a
        ON {agency} a.id = ANY(src.visible_to) AND registry.sees(a.id, a.jurisdiction, src.visible_to, src.geom)
     CROSS JOIN LATERAL registry.coverage_cells(src.geom) cell
     GROUP BY a.id, cell.size_m, cell.i, cell.j
    HAVING sum(src.d) <> 0
     ORDER BY a.id, cell.size_m, cell.i, cell.j
    ON CONFLICT (agency_id, size_m, i, j) DO UPDATE SET cameras = cc.cameras + excluded.cameras
"""
INSERTED = "SELECT n.geom, n.visible_to, 1 AS d FROM new_rows n"
DELETED = "SELECT o.geom, o.visible_to, -1 AS d FROM old_rows o"
UPDATED = f"""
    SELECT n.geom, n.visible_to, 1 AS d FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE (n.geom, n.visible_to) IS DISTINCT FROM (o.geom, o.visible_to)
    UNION ALL
    SELECT o.geom, o.visible_to, -1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id
     WHERE (n.geom, n.visible_to) IS DISTINCT FROM (o.geom, o.visible_to)
    UNION ALL {INSERTED} WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.id = n.id)
    UNION ALL {DELETED} WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = o.id)
"""
RECOUNT = """
    SELECT c.geom, c.visible_to, 1 AS d FROM registry.cameras c
     WHERE a_id = ANY(c.visible_to)
"""


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE registry.agencies
            ADD COLUMN coverage_min_cameras integer NOT NULL DEFAULT 5,
            ADD CONSTRAINT ck_agencies_coverage_min_cameras CHECK (coverage_min_cameras BETWEEN 5 AND 1000)
        """
    )
    # Plain expressions (immutable SQL functions of one SELECT without FROM), which the planner inlines: a cell is
    # arithmetic, not a query per camera.
    functions = {
        "coverage_odd(col integer) RETURNS double precision": "CASE WHEN col % 2 <> 0 THEN 0.5 ELSE 0 END",
        # The row of column `col` whose hexagon centre is nearest to ordinate y.
        "coverage_row(col integer, y double precision, size double precision) RETURNS integer": (
            "floor(y / (sqrt(3) * size) - registry.coverage_odd(col) + 0.5)::integer"
        ),
        "coverage_cx(col integer, size double precision) RETURNS double precision": "1.5 * size * col",
        "coverage_cy(col integer, r integer, size double precision) RETURNS double precision": (
            "sqrt(3) * size * (r + registry.coverage_odd(col))"
        ),
        # The squared distance from (x, y) to the nearest hexagon centre of column `col`.
        "coverage_d2(col integer, x double precision, y double precision, size double precision)"
        " RETURNS double precision": (
            "(x - registry.coverage_cx(col, size)) ^ 2"
            " + (y - registry.coverage_cy(col, registry.coverage_row(col, y, size), size)) ^ 2"
        ),
        # The containing hexagon's column: of the two columns whose centres lie either side of x, the one with the
        # nearer centre (a hexagon is the set of points nearer its centre than any other's).
        "coverage_col(x double precision, y double precision, size double precision) RETURNS integer": (
            "floor(x / (1.5 * size))::integer"
            " + CASE WHEN registry.coverage_d2(floor(x / (1.5 * size))::integer, x, y, size)"
            " <= registry.coverage_d2(floor(x / (1.5 * size))::integer + 1, x, y, size) THEN 0 ELSE 1 END"
        ),
    }
    for signature, body in functions.items():
        op.execute(
            f"CREATE FUNCTION registry.{signature} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {body} $$"
        )
    # Each step's values are computed once (OFFSET 0 keeps a subquery from being folded into the next step, which
    # would repeat the previous steps' arithmetic inside every reference and stop the functions being inlined).
    op.execute(
        f"""
        CREATE FUNCTION registry.coverage_cells(geom geometry)
        RETURNS TABLE (size_m integer, i integer, j integer)
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT s.size_m, s.i, s.j
              FROM (SELECT ST_X(t.g) AS x, ST_Y(t.g) AS y
                      FROM (SELECT ST_Transform(geom, 6933) AS g) t OFFSET 0) p0
             CROSS JOIN LATERAL (SELECT registry.coverage_col(p0.x, p0.y, {SIZES[0]}) AS i OFFSET 0) c1
             CROSS JOIN LATERAL (SELECT registry.coverage_row(c1.i, p0.y, {SIZES[0]}) AS j OFFSET 0) r1
             CROSS JOIN LATERAL (SELECT registry.coverage_cx(c1.i, {SIZES[0]}) + {NUDGE[0]} AS x,
                                        registry.coverage_cy(c1.i, r1.j, {SIZES[0]}) + {NUDGE[1]} AS y OFFSET 0) p1
             CROSS JOIN LATERAL (SELECT registry.coverage_col(p1.x, p1.y, {SIZES[1]}) AS i OFFSET 0) c2
             CROSS JOIN LATERAL (SELECT registry.coverage_row(c2.i, p1.y, {SIZES[1]}) AS j OFFSET 0) r2
             CROSS JOIN LATERAL (SELECT registry.coverage_cx(c2.i, {SIZES[1]}) + {NUDGE[0]} AS x,
                                        registry.coverage_cy(c2.i, r2.j, {SIZES[1]}) + {NUDGE[1]} AS y OFFSET 0) p2
             CROSS JOIN LATERAL (SELECT registry.coverage_col(p2.x, p2.y, {SIZES[2]}) AS i OFFSET 0) c3
             CROSS JOIN LATERAL (SELECT registry.coverage_row(c3.i, p2.y, {SIZES[2]}) AS j OFFSET 0) r3
             CROSS JOIN LATERAL (VALUES ({SIZES[0]}, c1.i, r1.j), ({SIZES[1]}, c2.i, r2.j),
                                        ({SIZES[2]}, c3.i, r3.j)) s (size_m, i, j)
        $$
        """
    )
    op.execute(
        """
        CREATE TABLE registry.coverage_counts (
            agency_id uuid NOT NULL REFERENCES registry.agencies (id) ON DELETE CASCADE,
            size_m integer NOT NULL,
            i integer NOT NULL,
            j integer NOT NULL,
            -- No CHECK (cameras >= 0): PostgreSQL checks the proposed row of an upsert before finding the
            -- conflict, and a decrement is proposed as a negative row.
            cameras integer NOT NULL,
            PRIMARY KEY (agency_id, size_m, i, j)
        )
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION registry.coverage_track() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {APPLY.format(src=INSERTED, agency="")};
            ELSIF TG_OP = 'DELETE' THEN
                {APPLY.format(src=DELETED, agency="")};
            ELSE
                {APPLY.format(src=UPDATED, agency="")};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION registry.coverage_recount(a_id uuid) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            DELETE FROM registry.coverage_counts WHERE agency_id = a_id;
            {APPLY.format(src=RECOUNT, agency="a.id = a_id AND")};
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION registry.coverage_agency_changed() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            PERFORM registry.coverage_recount(NEW.id);
            RETURN NULL;
        END $$
        """
    )
    for statement in (
        "CREATE TRIGGER coverage_insert AFTER INSERT ON registry.cameras REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION registry.coverage_track()",
        "CREATE TRIGGER coverage_update AFTER UPDATE ON registry.cameras"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION registry.coverage_track()",
        "CREATE TRIGGER coverage_delete AFTER DELETE ON registry.cameras REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION registry.coverage_track()",
        "CREATE TRIGGER coverage_jurisdiction AFTER UPDATE OF jurisdiction ON registry.agencies"
        " FOR EACH ROW WHEN (OLD.jurisdiction IS DISTINCT FROM NEW.jurisdiction)"
        " EXECUTE FUNCTION registry.coverage_agency_changed()",
    ):
        op.execute(statement)
    # Existing cameras are counted once, agency by agency.
    op.execute("SELECT registry.coverage_recount(id) FROM registry.agencies")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{READ_ROLE}') THEN
                GRANT SELECT ON registry.coverage_counts TO {READ_ROLE};
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    for statement in (
        "DROP TRIGGER coverage_jurisdiction ON registry.agencies",
        "DROP TRIGGER coverage_delete ON registry.cameras",
        "DROP TRIGGER coverage_update ON registry.cameras",
        "DROP TRIGGER coverage_insert ON registry.cameras",
        "DROP FUNCTION registry.coverage_agency_changed()",
        "DROP FUNCTION registry.coverage_recount(uuid)",
        "DROP FUNCTION registry.coverage_track()",
        "DROP TABLE registry.coverage_counts",
        "DROP FUNCTION registry.coverage_cells(geometry)",
        "DROP FUNCTION registry.coverage_col(double precision, double precision, double precision)",
        "DROP FUNCTION registry.coverage_d2(integer, double precision, double precision, double precision)",
        "DROP FUNCTION registry.coverage_cy(integer, integer, double precision)",
        "DROP FUNCTION registry.coverage_cx(integer, double precision)",
        "DROP FUNCTION registry.coverage_row(integer, double precision, double precision)",
        "DROP FUNCTION registry.coverage_odd(integer)",
        "ALTER TABLE registry.agencies DROP COLUMN coverage_min_cameras",
    ):
        op.execute(statement)
