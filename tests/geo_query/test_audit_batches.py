"""geo_query's group commit: searches that arrive together share one append (`audit.append_events`), and each
still gets exactly its own record, in the order the searches were queued, on one unbroken hash chain; a batch
that cannot be written fails every search waiting on it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.geo_query.audit_log import AuditLog
from shared.audit import VERIFY_SQL, AuditEvent
from shared.db import make_pool
from shared.settings import get_settings
from tests.support import Db


async def _append_together(database_url: str, events: list[AuditEvent]) -> list[BaseException | None]:
    """Queue every event before the writer first runs (they go out as one batch); what each append returned."""
    pool = await make_pool(database_url, get_settings(), "geo_query-audit", session_state=False)
    log = AuditLog()
    log.open(pool)
    try:
        return list(await asyncio.gather(*(log.append(e) for e in events), return_exceptions=True))
    finally:
        await log.close()
        await pool.close()


def _event(sub: str, i: int) -> AuditEvent:
    return AuditEvent(
        service="geo_query",
        actor=sub,
        actor_role="investigator",
        action="search.radius",
        agency="x",
        case_number=f"C-{i}",
        area_geojson='{"type":"Point","coordinates":[-73.975,40.74]}' if i % 2 else None,
        details={"results": i},
    )


def test_searches_queued_together_share_one_transaction_with_a_record_each(database_url: str, db: Db) -> None:
    sub = "batch-" + uuid.uuid4().hex[:8]
    n = 12

    outcomes = asyncio.run(_append_together(database_url, [_event(sub, i) for i in range(n)]))
    assert outcomes == [None] * n
    rows = db.fetch(
        "SELECT seq, xmin::text AS tx, case_number, area IS NOT NULL AS has_area, details FROM audit.events"
        " WHERE actor = $1 ORDER BY seq",
        sub,
    )
    assert [r["case_number"] for r in rows] == [f"C-{i}" for i in range(n)]
    assert [r["has_area"] for r in rows] == [bool(i % 2) for i in range(n)]
    assert [r["details"] for r in rows] == [f'{{"results": {i}}}' for i in range(n)]
    assert len({r["tx"] for r in rows}) == 1  # one transaction for the batch
    seqs = [r["seq"] for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + n))  # contiguous on the chain
    assert db.fetch(VERIFY_SQL) == []


def test_a_batch_that_cannot_be_written_fails_every_search_waiting_on_it(database_url: str, db: Db) -> None:
    sub = "batch-" + uuid.uuid4().hex[:8]

    events = [_event(sub, i) for i in range(3)]
    events[1].area_geojson = '{"type":"Polygon"}'  # not a geometry: the whole batch is refused
    outcomes = asyncio.run(_append_together(database_url, events))
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert db.fetchval("SELECT count(*) FROM audit.events WHERE actor = $1", sub) == 0


@pytest.mark.parametrize("n", [1, 2])
def test_small_batches_too(database_url: str, db: Db, n: int) -> None:
    sub = "batch-" + uuid.uuid4().hex[:8]

    assert asyncio.run(_append_together(database_url, [_event(sub, i) for i in range(n)])) == [None] * n
    assert db.fetchval("SELECT count(*) FROM audit.events WHERE actor = $1", sub) == n
