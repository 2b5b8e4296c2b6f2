"""What the audit trail grows by per search: every search answered adds exactly one record, and the trail's tables
(the month's partition of audit.events with its indexes, and the oversight indexes' audit.event_places and
audit.event_refs) grow by a bounded number of bytes per record. The figure it prints is the one docs/scaling.md
turns into the trail's growth per day."""

from __future__ import annotations

import threading
import uuid

import httpx

from shared.audit import VERIFY_SQL
from tests.conftest import Suite, Token
from tests.geo_query.conftest import Registry
from tests.support import Db

SEARCHES = 1200
CLIENTS = 8
# Each search as the bench's mix asks it, each with a case number (as investigators give them).
SHAPES: list[tuple[str, dict[str, str | int | float]]] = [
    ("/v1/cameras/nearest", {"lon": -73.975, "lat": 40.74, "k": 20}),
    ("/v1/cameras/radius", {"lon": -73.975, "lat": 40.74, "radius_m": 500, "limit": 100}),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.73,-73.96,40.75", "limit": 100}),
]
TRAIL_BYTES_SQL = (
    "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'audit' AND c.relkind = 'r'"
)


def test_each_search_adds_one_record_and_the_trail_grows_by_a_bounded_size_per_record(
    suite: Suite, auth: Token, registry_data: Registry, db: Db
) -> None:
    run = uuid.uuid4().hex[:8]
    before_bytes = int(db.fetchval(TRAIL_BYTES_SQL))
    before_records = int(db.fetchval("SELECT count(*) FROM audit.events"))
    statuses: list[int] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=suite.geo.url, timeout=60) as c:
            for i in range(n, SEARCHES, CLIENTS):
                path, params = SHAPES[i % len(SHAPES)]
                headers = auth("investigator", registry_data.x.slug, sub=f"growth-{run}-{i % 50}")
                r = c.get(path, params={**params, "case_number": f"2026-{i:06d}"}, headers=headers)
                statuses.append(r.status_code)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert statuses.count(200) == SEARCHES, sorted(set(statuses))
    added = int(db.fetchval("SELECT count(*) FROM audit.events")) - before_records
    assert added == SEARCHES  # one record per search, none more (the suite runs one test at a time)
    grown = int(db.fetchval(TRAIL_BYTES_SQL)) - before_bytes
    per_record = grown / added
    assert 100 < per_record < 8000, per_record
    assert db.fetch(VERIFY_SQL) == []
    print(
        f"\naudit trail: {added} search records added {grown / 1024:,.0f} kB to the audit schema's tables and"
        f" indexes: {per_record:,.0f} bytes per record (nearest, radius and bbox in turn, each with a case number)"
    )
