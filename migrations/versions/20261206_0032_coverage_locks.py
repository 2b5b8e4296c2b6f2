"""The coverage counts under concurrent writes: a camera write and an agency's recount serialise on the agency.

A camera statement counted its cameras against the jurisdictions it saw, and a jurisdiction's recount counted the
cameras it saw: a camera written while its agency's jurisdiction changed was seen by neither (the camera's
statement read the old jurisdiction, the recount did not see the uncommitted camera) and stayed uncounted until
the next recount. And the recount's DELETE takes an agency's count rows in its own order while a camera transaction
holds some of them (the rows of its earlier statements: the bulk import's merge is many statements) and wants
others: a deadlock, answered 503.

Now each agency has a coverage lock, a transaction-scoped advisory lock keyed by its id (`coverage_key`):
- the camera triggers take it shared, for every agency the statement's changed cameras are visible to, in key
  order, before counting (in a statement of their own: the counting statement after it reads the jurisdictions
  and counts as they are once the lock is granted);
- the recount takes it exclusive before it deletes and recounts.
So a recount waits for every open transaction that has counted cameras of that agency to end, and then sees
their cameras; a camera write waits for a recount in progress to commit, and then counts against the new
jurisdiction. Camera writers share the lock and never wait for one another on it. A transaction holding one
agency's lock exclusively (a jurisdiction change) holds no other coverage lock, so no cycle forms; a transaction
changing two jurisdictions at once could meet a camera transaction taking the two in the other order over two
statements (PostgreSQL would break that deadlock): agencies are changed one at a time.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cells_migration() -> ModuleType:
    """Migration 0030, whose statements (the counting of a set of camera rows) these functions keep using."""
    path = Path(__file__).with_name("20261206_0030_coverage_cells.py")
    spec = importlib.util.spec_from_file_location("coverage_cells_0030", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The agencies a set of camera rows `src` (with `visible_to`) counts for, their coverage locks taken shared in key
# order (one order for every writer).
LOCK_SHARED = """
    PERFORM pg_advisory_xact_lock_shared(k) FROM (
        SELECT DISTINCT registry.coverage_key(a.id) AS k FROM ({src}) src, unnest(src.visible_to) a (id)
         ORDER BY 1) keys
"""


def _track(lock: bool) -> str:
    m = _cells_migration()
    steps = {"INSERT": m.INSERTED, "DELETE": m.DELETED, "UPDATE": m.UPDATED}

    def step(src: str) -> str:
        return (LOCK_SHARED.format(src=src) + ";" if lock else "") + m.APPLY.format(src=src, agency="") + ";"

    return f"""
        CREATE OR REPLACE FUNCTION registry.coverage_track() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {step(steps["INSERT"])}
            ELSIF TG_OP = 'DELETE' THEN
                {step(steps["DELETE"])}
            ELSE
                {step(steps["UPDATE"])}
            END IF;
            RETURN NULL;
        END $$
        """


def _recount(lock: bool) -> str:
    m = _cells_migration()
    take = "PERFORM pg_advisory_xact_lock(registry.coverage_key(a_id));" if lock else ""
    return f"""
        CREATE OR REPLACE FUNCTION registry.coverage_recount(a_id uuid) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            {take}
            DELETE FROM registry.coverage_counts WHERE agency_id = a_id;
            {m.APPLY.format(src=m.RECOUNT, agency="a.id = a_id AND")};
        END $$
        """


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION registry.coverage_key(agency uuid) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE"
        " RETURN hashtextextended('canvass-coverage:' || agency::text, 0)"
    )
    op.execute(_track(lock=True))
    op.execute(_recount(lock=True))


def downgrade() -> None:
    op.execute(_recount(lock=False))
    op.execute(_track(lock=False))
    op.execute("DROP FUNCTION registry.coverage_key(uuid)")
