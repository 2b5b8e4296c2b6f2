"""The public transparency report: per agency and ended month, requests sent, owners contacted, owners who
provided footage and the median time owners who shared took to accept; anyone may read it; it carries no case
number and no owner. Nothing in it tells a decline from silence: declines are never timed, small months are
suppressed, and the current month waits until it ends."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

from services.requests_api.transparency import QUEUE_WAIT_S
from tests.requests.conftest import OFFSET, Flow, NewOwner, Owner
from tests.support import Db, eventually


def _month_before(when: datetime) -> datetime:
    return when.replace(day=1) - timedelta(days=1)


def _move_back(db: Db, rid: str, by: timedelta) -> None:
    """The request happened `by` earlier: its sending, its owners' notices, answers and uploads."""
    db.execute("UPDATE requests.requests SET sent_at = sent_at - CAST($2 AS interval) WHERE id = $1", rid, by)
    db.execute(
        "UPDATE requests.targets SET notified_at = notified_at - CAST($2 AS interval),"
        " answered_at = answered_at - CAST($2 AS interval), uploaded_at = uploaded_at - CAST($2 AS interval)"
        " WHERE request_id = $1",
        rid,
        by,
    )


def test_the_transparency_report_counts_without_personal_data(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    agency = flow.agency
    a, b, c, d, _silent = (
        new_owner(agency, agency.near(dx=dx, dy=dy))
        for dx, dy in ((OFFSET, 0), (0, OFFSET), (-OFFSET, 0), (0, -OFFSET), (OFFSET, OFFSET))
    )
    big = flow.sent()  # reaches the five owners
    small = flow.sent(camera_ids=[o.camera_ids[0] for o in (a, b, c, d)])  # reaches four
    current = flow.sent()  # stays in this month: not reported yet
    flow.create()  # a draft is never counted
    client = flow.client

    def answer(rid: str, owner: Owner, what: str) -> None:
        r = client.post(f"/v1/owner/requests/{rid}/answer", json={"answer": what}, headers=owner.headers)
        assert r.status_code == 200, r.text

    # In the five-owner request: a accepts and uploads (2 h after notice), b accepts (4 h), c declines (6 min),
    # d reads it, e stays silent. Two owners shared: too few for a median (see the test after this one).
    answer(big["id"], a, "accept")
    up = client.post(
        f"/v1/owner/evidence/{big['id']}",
        files={"file": ("a.mp4", b"a" * 10, "video/mp4")},
        headers=a.headers,
    )
    assert up.status_code == 201, up.text
    answer(big["id"], b, "accept")
    answer(big["id"], c, "decline")
    assert client.get(f"/v1/owner/requests/{big['id']}", headers=d.headers).status_code == 200
    db.execute(
        "UPDATE requests.targets SET notified_at = answered_at - CASE registration_id WHEN $2 THEN interval '2 hours'"
        " WHEN $3 THEN interval '4 hours' ELSE interval '6 minutes' END WHERE request_id = $1"
        " AND answered_at IS NOT NULL",
        big["id"],
        a.registration_id,
        b.registration_id,
    )
    # In the four-owner request: a accepts and uploads.
    answer(small["id"], a, "accept")
    assert (
        client.post(
            f"/v1/owner/evidence/{small['id']}",
            files={"file": ("b.mp4", b"b" * 10, "video/mp4")},
            headers=a.headers,
        ).status_code
        == 201
    )
    answer(current["id"], a, "accept")

    # Move the first two, with everything that happened to them, into ended months.
    now = datetime.now(UTC)
    last_month = _month_before(now)
    month_before = _month_before(last_month)
    for rid, when in ((big["id"], last_month), (small["id"], month_before)):
        _move_back(db, rid, now - when.replace(day=10))

    r = httpx.get(str(client.base_url) + f"/v1/transparency?agency={agency.slug}")  # no token
    assert r.status_code == 200, r.text
    report = r.json()
    assert [x["agency"] for x in report["agencies"]] == [agency.slug]
    assert report["agencies"][0]["months"] == [
        {
            "month": month_before.strftime("%Y-%m"),
            "requests_sent": 1,
            "owners_contacted": 4,
            "owners_fulfilled": None,  # fewer than 5 owners contacted: suppressed
            "median_hours_to_share": None,
        },
        {
            "month": last_month.strftime("%Y-%m"),
            "requests_sent": 1,
            "owners_contacted": 5,
            "owners_fulfilled": 1,
            "median_hours_to_share": None,  # only two owners shared: their median would be their own delays
        },
    ]
    for secret in (
        big["case_number"],
        small["case_number"],
        a.registration_id,
        c.registration_id,
        a.email,
    ):
        assert secret not in r.text
    one_month = httpx.get(str(client.base_url) + f"/v1/transparency?agency={agency.slug}&months=1").json()
    assert [m["month"] for m in one_month["agencies"][0]["months"]] == [last_month.strftime("%Y-%m")]
    assert httpx.get(str(client.base_url) + "/v1/transparency?agency=NOT_A_SLUG").status_code == 400


def test_the_median_time_to_share_is_published_only_over_five_owners_who_shared_and_never_times_a_decline(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    """A median over one owner who shared is that owner's own delay to the minute, and over a handful little
    more: it is published only when at least five owners shared that month. Declines are never timed."""
    agency = flow.agency
    offsets = ((OFFSET, 0), (0, OFFSET), (-OFFSET, 0), (0, -OFFSET), (OFFSET, OFFSET), (-OFFSET, -OFFSET))
    owners = [new_owner(agency, agency.near(dx=dx, dy=dy)) for dx, dy in offsets]
    lone = flow.sent(camera_ids=[o.camera_ids[0] for o in owners[:5]])  # five contacted, one shares
    many = flow.sent()  # six contacted: five share, one declines
    client = flow.client

    def answer(rid: str, owner: Owner, what: str) -> None:
        r = client.post(f"/v1/owner/requests/{rid}/answer", json={"answer": what}, headers=owner.headers)
        assert r.status_code == 200, r.text

    answer(lone["id"], owners[0], "accept")
    for o in owners[:5]:
        answer(many["id"], o, "accept")
    answer(many["id"], owners[5], "decline")
    # Delays of 1 to 5 hours for the five who shared, 6 minutes for the decline: the median to share is 3 h;
    # counting the decline it would be 2.5 h. The lone sharer took 7 h 13 min.
    for rid, delays in (
        (many["id"], {o.registration_id: timedelta(hours=i + 1) for i, o in enumerate(owners[:5])}),
        (lone["id"], {owners[0].registration_id: timedelta(hours=7, minutes=13)}),
    ):
        for registration_id, delay in delays.items():
            db.execute(
                "UPDATE requests.targets SET notified_at = answered_at - CAST($3 AS interval)"
                " WHERE request_id = $1 AND registration_id = $2",
                rid,
                registration_id,
                delay,
            )
    db.execute(
        "UPDATE requests.targets SET notified_at = answered_at - interval '6 minutes'"
        " WHERE request_id = $1 AND registration_id = $2",
        many["id"],
        owners[5].registration_id,
    )
    now = datetime.now(UTC)
    last_month = _month_before(now)
    month_before = _month_before(last_month)
    _move_back(db, lone["id"], now - month_before.replace(day=10))
    _move_back(db, many["id"], now - last_month.replace(day=10))

    r = httpx.get(str(client.base_url) + f"/v1/transparency?agency={agency.slug}")
    assert r.status_code == 200, r.text
    months = {m["month"]: m for m in r.json()["agencies"][0]["months"]}
    lone_month = months[month_before.strftime("%Y-%m")]
    assert (lone_month["owners_contacted"], lone_month["owners_fulfilled"]) == (5, 0)
    assert lone_month["median_hours_to_share"] is None  # it would be 7.22: that one owner's own delay
    many_month = months[last_month.strftime("%Y-%m")]
    assert many_month["owners_contacted"] == 6
    assert many_month["median_hours_to_share"] == 3.0


def test_a_published_month_does_not_change_when_owners_answer_after_it_ended(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    agency = flow.agency
    owners = [
        new_owner(agency, agency.near(dx=dx, dy=dy))
        for dx, dy in ((OFFSET, 0), (0, OFFSET), (-OFFSET, 0), (0, -OFFSET), (OFFSET, OFFSET))
    ]
    early, late = owners[0], owners[1]
    req = flow.sent()
    client = flow.client
    # One owner accepts and uploads within the month; the request is then moved back into last month.
    assert client.post(
        f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=early.headers
    ).is_success
    assert client.post(
        f"/v1/owner/evidence/{req['id']}",
        files={"file": ("a.mp4", b"a" * 10, "video/mp4")},
        headers=early.headers,
    ).is_success
    now = datetime.now(UTC)
    last_month = _month_before(now)
    _move_back(db, req["id"], now - last_month.replace(day=20))
    # An hour to share, within the month.
    db.execute(
        "UPDATE requests.targets SET notified_at = answered_at - interval '1 hour' WHERE request_id = $1"
        " AND answered_at IS NOT NULL",
        req["id"],
    )

    def published() -> dict[str, object]:
        r = httpx.get(str(client.base_url) + f"/v1/transparency?agency={agency.slug}&months=1")
        assert r.status_code == 200, r.text
        months = r.json()["agencies"][0]["months"]
        assert [m["month"] for m in months] == [last_month.strftime("%Y-%m")]
        return dict(months[0])

    before = published()
    assert before["owners_contacted"] == 5 and before["owners_fulfilled"] == 1
    assert before["median_hours_to_share"] is None  # one owner shared: their own delay is not published
    # This month, a second owner accepts (quickly after the notice, by the clock) and uploads: last month's
    # figures stay as published.
    assert client.post(
        f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=late.headers
    ).is_success
    assert client.post(
        f"/v1/owner/evidence/{req['id']}",
        files={"file": ("b.mp4", b"b" * 10, "video/mp4")},
        headers=late.headers,
    ).is_success
    assert published() == before


def test_one_computation_of_the_public_report_runs_at_a_time_and_a_caller_waits_a_bounded_time(
    flow: Flow, database_url: str, db: Db
) -> None:
    """Anyone may ask for the report without a token, and computing it reads every request of the months asked:
    a second caller waits for the first computation instead of starting its own beside it, and gets a 503 with
    Retry-After once it has waited `QUEUE_WAIT_S` (before the statement timeout would cut the first one off).
    The first computation is held in the database by a lock the test holds, so the order is deterministic."""
    url = str(flow.client.base_url) + "/v1/transparency"
    # The service's statements waiting for the test's lock (pg_locks and application_name are readable by anyone).
    blocked = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.relation = 'requests.targets'::regclass AND NOT l.granted"
        " AND a.application_name = 'canvass-requests_api'"
    )
    holder = Db(database_url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE requests.targets IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.get, url, params={"months": 120}, timeout=60)
            assert eventually(lambda: db.fetchval(blocked) == 1), "the first computation never started"
            started = time.monotonic()
            second = httpx.get(url, params={"months": 3}, timeout=60)
            waited = time.monotonic() - started
            # Refused by the queue (not cut off by the statement timeout, which would answer later and otherwise).
            assert second.status_code == 503, second.text
            assert second.headers["content-type"] == "application/problem+json"
            assert second.headers["retry-after"] == "5"
            assert "being computed" in second.json()["detail"]
            assert waited >= QUEUE_WAIT_S - 0.2
            # It waited in the service, not in the database: one computation ran all along.
            assert db.fetchval(blocked) == 1
            holder.execute("ROLLBACK")
            assert first.result().status_code == 200
        assert httpx.get(url, params={"months": 3}).status_code == 200  # the next caller is answered
    finally:
        holder.close()
