"""geo_query's group commit: searches that arrive together share one append (`audit.append_events`), and each
still gets exactly its own record, in the order the searches were queued, on one unbroken hash chain; a record
that cannot be written fails its own search only; and no input, a cursor or a token's claim, can make a record
unwritable."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from services.geo_query.audit_log import AuditLog
from services.geo_query.database import same_database
from shared.audit import VERIFY_SQL, AuditEvent, details_json, storable
from shared.db import make_pool
from shared.settings import get_settings
from tests.conftest import Suite, Token
from tests.geo_query.conftest import Registry
from tests.support import ROOT, Db

PROBLEM = "application/problem+json"
BBOX = "-74.05,40.67,-73.90,40.81"


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


def test_a_record_that_cannot_be_written_fails_its_own_search_and_no_other_in_its_batch(
    database_url: str, db: Db
) -> None:
    sub = "batch-" + uuid.uuid4().hex[:8]

    events = [_event(sub, i) for i in range(5)]
    events[1].area_geojson = '{"type":"Polygon"}'  # not a geometry: the database refuses this record
    outcomes = asyncio.run(_append_together(database_url, events))
    assert isinstance(outcomes[1], Exception), outcomes
    assert [o for i, o in enumerate(outcomes) if i != 1] == [None] * 4
    rows = db.fetch("SELECT case_number FROM audit.events WHERE actor = $1 ORDER BY seq", sub)
    assert [r["case_number"] for r in rows] == ["C-0", "C-2", "C-3", "C-4"]  # in the order they were queued
    assert db.fetch(VERIFY_SQL) == []


def test_characters_a_record_cannot_hold_are_written_as_replacement_characters(
    database_url: str, db: Db
) -> None:
    sub = "batch-" + uuid.uuid4().hex[:8]

    events = [_event(sub, i) for i in range(3)]
    events[0].case_number = "C-\x00"
    events[1].subject_id = "s\ud800"
    events[1].details = {"cursor": "abc\x00\x00", "k\x00": ["\udfff", 1]}
    events[2].actor = sub + "\x00"
    outcomes = asyncio.run(_append_together(database_url, events))
    assert outcomes == [None] * 3
    rows = db.fetch(
        "SELECT actor, case_number, subject_id, details FROM audit.events WHERE actor LIKE $1 ORDER BY seq",
        sub + "%",
    )
    assert [r["case_number"] for r in rows] == ["C-\ufffd", "C-1", "C-2"]
    assert rows[1]["subject_id"] == "s\ufffd"
    assert orjson.loads(rows[1]["details"]) == {"cursor": "abc\ufffd\ufffd", "k\ufffd": ["\ufffd", 1]}
    assert rows[2]["actor"] == sub + "\ufffd"
    assert db.fetch(VERIFY_SQL) == []


def test_a_search_cancelled_while_its_record_waits_still_has_its_record_appended(
    database_url: str, db: Db
) -> None:
    """A search that goes away (its task cancelled) while its record is queued cancels only its own wait: the
    record is appended with the others of its batch, in order, and the others' searches answer."""
    sub = "batch-" + uuid.uuid4().hex[:8]

    async def run() -> list[BaseException | None]:
        pool = await make_pool(database_url, get_settings(), "geo_query-audit", session_state=False)
        log = AuditLog()
        log.open(pool)
        try:
            tasks = [asyncio.create_task(log.append(_event(sub, i))) for i in range(4)]
            await asyncio.sleep(0)  # every search has queued its record; the writer has not run yet
            tasks[1].cancel()
            return list(await asyncio.gather(*tasks, return_exceptions=True))
        finally:
            await log.close()
            await pool.close()

    outcomes = asyncio.run(run())
    assert isinstance(outcomes[1], asyncio.CancelledError), outcomes
    assert [o for i, o in enumerate(outcomes) if i != 1] == [None] * 3
    rows = db.fetch("SELECT case_number FROM audit.events WHERE actor = $1 ORDER BY seq", sub)
    assert [r["case_number"] for r in rows] == ["C-0", "C-1", "C-2", "C-3"]
    assert db.fetch(VERIFY_SQL) == []


@pytest.mark.parametrize(
    "details",
    [
        {"results": 3, "filters": {"owner_kind": ["business"], "live": None}, "point": [-73.9, 40.7]},
        {"k": 20, "max_distance_m": 1500.5, "nested": [{"a": [1, 2.5, True, None]}, (3, "x")]},
        {"cursor": "abc\x00"},
        {"k\x00": 1},
        {"lone": "\ud800"},
        {"set": {"a"}},
        {1: "a key that is not a string"},
        {"id": uuid.UUID(int=7), "escaped": "a\\u0000 that is text, not a NUL"},
        {"unicode": "Gen\u00e8ve \u2013 \U0001f4f7", "empty": {}, "list": []},
    ],
)
def test_a_records_details_are_the_text_storable_details_give(details: dict[Any, Any]) -> None:
    """The details' JSON (written by orjson directly when they are plain) is exactly the text of the details made
    storable first, whatever they hold: characters a record cannot hold, keys that are not strings, values
    orjson does not know."""
    long_way = orjson.dumps(storable(details), default=lambda v: storable(str(v))).decode()
    assert details_json(details) == long_way


@pytest.mark.parametrize("n", [1, 2])
def test_small_batches_too(database_url: str, db: Db, n: int) -> None:
    sub = "batch-" + uuid.uuid4().hex[:8]

    assert asyncio.run(_append_together(database_url, [_event(sub, i) for i in range(n)])) == [None] * n
    assert db.fetchval("SELECT count(*) FROM audit.events WHERE actor = $1", sub) == n


def _poisoned_cursor(geo: httpx.Client, h: dict[str, str]) -> str:
    """A cursor this service issued (the `next` link of a one-camera page), with NULs appended."""
    first = geo.get("/v1/cameras/bbox", params={"bbox": BBOX, "limit": 1}, headers=h)
    assert first.status_code == 200, first.text
    (href,) = [link["href"] for link in first.json()["links"] if link["rel"] == "next"]
    return parse_qs(urlsplit(href).query)["cursor"][0] + "\x00\x00"


@pytest.mark.parametrize("poison", ["cursor with NULs", "sub with a NUL"])
def test_one_poisoned_search_among_forty_concurrent_ones_fails_alone_and_the_chain_verifies(
    suite: Suite,
    geo: httpx.Client,
    auth: Token,
    registry_data: Registry,
    database_url: str,
    db: Db,
    poison: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    x = registry_data.x.slug
    if poison == "cursor with NULs":
        bad_headers = auth("investigator", x, sub=f"poison-{run}")
        bad_params: dict[str, str | int] = {
            "bbox": BBOX,
            "limit": 1,
            "cursor": _poisoned_cursor(geo, bad_headers),
        }
        bad_status = 400
    else:
        bad_headers = auth("investigator", x, sub=f"poison-{run}\x00")
        bad_params = {"bbox": BBOX, "limit": 1}
        bad_status = 401
    n = 40
    barrier = threading.Barrier(n)
    answers: list[httpx.Response | None] = [None] * n

    def search(i: int) -> None:
        if i == n // 2:
            headers, params = bad_headers, bad_params
        else:  # another agency's investigators, each on the trail under a name of their own
            headers = auth("investigator", registry_data.y.slug, sub=f"good-{run}-{i}")
            params = {"bbox": BBOX, "limit": 5}
        with httpx.Client(base_url=suite.geo.url, timeout=60) as client:
            barrier.wait(timeout=60)
            answers[i] = client.get("/v1/cameras/bbox", params=params, headers=headers)

    threads = [threading.Thread(target=search, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    statuses = [a.status_code if a is not None else None for a in answers]
    assert statuses[: n // 2] + statuses[n // 2 + 1 :] == [200] * (n - 1), statuses
    refused = answers[n // 2]
    assert refused is not None and refused.status_code == bad_status, refused and refused.text
    assert refused.headers["content-type"] == PROBLEM
    # Every good search is on the trail once; the refused one is not (a cursor's first page is); the chain
    # verifies end to end.
    actors = [
        r["actor"] for r in db.fetch("SELECT actor FROM audit.events WHERE actor LIKE $1", f"good-{run}-%")
    ]
    assert sorted(actors) == sorted(f"good-{run}-{i}" for i in range(n) if i != n // 2)
    poisoned = db.fetchval("SELECT count(*) FROM audit.events WHERE actor LIKE $1", f"poison-{run}%")
    assert poisoned == (1 if poison == "cursor with NULs" else 0)
    verified = subprocess.run(
        [sys.executable, "scripts/audit_verify.py", "--url", database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _search_in_thread(url: str, headers: dict[str, str], params: dict[str, str | int]) -> tuple[Any, Any]:
    answer: list[httpx.Response] = []

    def run() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            answer.append(client.get("/v1/cameras/bbox", params=params, headers=headers))

    t = threading.Thread(target=run)
    t.start()
    return t, answer


def test_a_search_alone_sends_its_page_and_its_record_in_one_statement(
    suite: Suite, auth: Token, registry_data: Registry, database_url: str, db: Db
) -> None:
    """One round trip: while the test holds the chain's lock, the search waits on it in the very transaction (one
    statement) that read its page; once the lock is let go it commits, and the record carries the page's count.
    (With the group commit, the record's append waits in a transaction of its own that read no camera.)"""
    sub = "alone-" + uuid.uuid4().hex[:8]
    holder = Db(database_url)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM audit.chain_head FOR UPDATE")
        t, answer = _search_in_thread(
            suite.geo.url, auth("investigator", registry_data.x.slug, sub=sub), {"bbox": BBOX, "limit": 7}
        )
        holder_pid = holder.fetchval("SELECT pg_backend_pid()")
        blocked: list[int] = []
        deadline = time.monotonic() + 30
        while not blocked and time.monotonic() < deadline:
            blocked = [
                r["pid"]
                for r in db.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder_pid
                )
            ]
        assert len(blocked) == 1, blocked
        # What waits for the chain's lock (the append of the search's record) has read the page in the same
        # transaction: it holds the lock a query of the cameras takes until its transaction ends.
        held = {
            r["rel"]
            for r in db.fetch(
                "SELECT relation::regclass::text AS rel FROM pg_locks"
                " WHERE pid = $1 AND granted AND locktype = 'relation'",
                blocked[0],
            )
        }
        assert {"registry.cameras", "registry.agencies"} <= held, held
        assert not answer  # nothing answered before the record can be written
        holder.execute("ROLLBACK")
        t.join(60)
    finally:
        holder.close()
    assert answer and answer[0].status_code == 200, answer and answer[0].text
    returned = answer[0].json()["numberReturned"]
    (row,) = db.fetch("SELECT action, details FROM audit.events WHERE actor = $1", sub)
    assert row["action"] == "search.bbox"
    details = orjson.loads(row["details"])
    assert details["results"] == returned > 0
    assert details["limit"] == 7
    assert db.fetch(VERIFY_SQL) == []


def test_a_record_the_database_refuses_in_the_search_statement_fails_that_search_only(
    suite: Suite, auth: Token, registry_data: Registry, db: Db
) -> None:
    run = uuid.uuid4().hex[:8]
    refused_sub, next_sub = f"refused-{run}", f"after-{run}"
    db.execute(
        f"""CREATE FUNCTION audit.refuse_{run}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.actor = '{refused_sub}' THEN RAISE EXCEPTION 'this record is refused'; END IF;
            RETURN NEW;
        END $$"""
    )
    db.execute(
        f"CREATE TRIGGER refuse_{run} BEFORE INSERT ON audit.events FOR EACH ROW EXECUTE FUNCTION audit.refuse_{run}()"
    )
    try:
        with httpx.Client(base_url=suite.geo.url, timeout=60) as client:
            x = registry_data.x.slug
            refused = client.get(
                "/v1/cameras/bbox", params={"bbox": BBOX}, headers=auth("investigator", x, sub=refused_sub)
            )
            after = client.get(
                "/v1/cameras/bbox", params={"bbox": BBOX}, headers=auth("investigator", x, sub=next_sub)
            )
    finally:
        db.execute(f"DROP TRIGGER refuse_{run} ON audit.events")
        db.execute(f"DROP FUNCTION audit.refuse_{run}()")
    assert refused.status_code == 500 and refused.headers["content-type"] == PROBLEM, refused.text
    assert "features" not in refused.text  # no page leaves without its record
    assert after.status_code == 200, after.text
    assert db.fetchval("SELECT count(*) FROM audit.events WHERE actor = $1", refused_sub) == 0
    assert db.fetchval("SELECT count(*) FROM audit.events WHERE actor = $1", next_sub) == 1
    assert db.fetch(VERIFY_SQL) == []


@pytest.mark.parametrize(
    ("read", "audit", "same"),
    [
        ("postgresql://canvass_geo:x@db:5432/canvass", "postgresql://canvass_svc:y@db/canvass", True),
        (
            "postgresql://canvass_geo:x@replica:5432/canvass",
            "postgresql://canvass_svc:y@db:5432/canvass",
            False,
        ),
        ("postgresql://canvass_geo:x@db:5432/canvass", "postgresql://canvass_svc:y@db:5432/audit", False),
        ("postgresql://canvass_geo:x@db:5433/canvass", "postgresql://canvass_svc:y@db:5432/canvass", False),
    ],
)
def test_a_search_reads_its_page_with_its_record_only_where_both_pools_reach_one_database(
    read: str, audit: str, same: bool
) -> None:
    """Reads pointed at a replica, or a trail moved to its own database, keep the read pool and the group commit."""
    assert same_database(read, audit) is same


# Words an officer in a hurry might write, which the permanent trail must never keep (decision 0012).
WORDS = "Dana Reyes called from 414-555-0142"


def _forged(cursor: str) -> list[str]:
    """The cursor this service issued, rewritten three ways to carry words beside its position: a member of its
    own, the same member given twice (the words first, the position last, which a JSON reader keeps), and the
    page's direction given as words."""
    data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    first = next(iter(data))
    raws = [
        orjson.dumps({**data, "note": WORDS}),
        b'{"' + first.encode() + b'":"' + WORDS.encode() + b'",' + orjson.dumps(data)[1:],
        orjson.dumps({**data, "prev": WORDS}),
    ]
    return [base64.urlsafe_b64encode(raw).decode().rstrip("=") for raw in raws]


def test_a_cursor_carries_no_words_into_the_trail(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Db
) -> None:
    """A search's record keeps the cursor it was asked with: a cursor other than what the service wrote (words
    added to it, however) is refused, and nothing of it is recorded."""
    sub = f"cursor-{uuid.uuid4().hex[:8]}"
    h = auth("investigator", registry_data.x.slug, sub=sub)
    issued = _poisoned_cursor(geo, h).rstrip("\x00")
    forged = _forged(issued)
    for path in ["/v1/cameras/bbox", "/v1/ogc/collections/cameras/items"]:
        for cursor in forged:
            r = geo.get(path, params={"bbox": BBOX, "limit": 1, "cursor": cursor}, headers=h)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["errors"][0]["code"] == "cursor_invalid"
    assert (
        geo.get(
            "/v1/cameras/bbox", params={"bbox": BBOX, "limit": 1, "cursor": issued}, headers=h
        ).status_code
        == 200
    )
    kept = [str(r["details"]) for r in db.fetch("SELECT details FROM audit.events WHERE actor = $1", sub)]
    assert kept and not any(c in d for c in forged for d in kept), kept


def test_a_filters_typed_words_are_not_kept_in_the_trail_its_codes_ids_and_instants_are(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Db
) -> None:
    """An OGC filter's record keeps what the filter asked (its properties, operators, numbers, codes, ids and
    instants) and masks the text a person typed in it (a label, a schedule, a LIKE pattern): the search runs
    with them all the same."""
    sub = f"filter-{uuid.uuid4().hex[:8]}"
    h = auth("investigator", registry_data.x.slug, sub=sub)
    cam = str(uuid.uuid4())
    typed = (
        f"(label = '{WORDS}' OR schedule LIKE '%Reyes%' OR id = '{cam}') AND owner_kind IN ('business',"
        " 'residential') AND registered_at < TIMESTAMP('2030-01-01T00:00:00Z') AND range_m > 10"
    )
    r = geo.get("/v1/ogc/collections/cameras/items", params={"filter": typed, "limit": 5}, headers=h)
    assert r.status_code == 200, r.text
    kept = db.fetchval("SELECT details->>'filter' FROM audit.events WHERE actor = $1", sub)
    assert kept == (
        f"(label = '…' OR schedule LIKE '…' OR id = '{cam}') AND owner_kind IN ('business', 'residential')"
        " AND registered_at < TIMESTAMP('2030-01-01T00:00:00Z') AND range_m > 10"
    ), kept
