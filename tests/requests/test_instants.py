"""The instants of a footage request's body (`window.start`, `window.end`, `due_at`) across the whole RFC 3339
range: one whose UTC leaves the calendar the services compute with, or that is not an RFC 3339 instant, is a 422
problem naming the member; an incident window that ended longer ago than any camera keeps footage is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.requests.conftest import Flow, NewOwner, iso, request_body

PROBLEM = "application/problem+json"
REFUSED = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00Z",  # the database driver's -infinity
    "9999-12-31T23:59:59.999999Z",  # and its infinity
    "2016-12-31T23:59:60Z",
    "2026-11-20T22:15:00",
    "1763676900",
]


@pytest.mark.parametrize("member", ["start", "end", "due_at"])
@pytest.mark.parametrize("value", REFUSED)
def test_a_body_instant_outside_the_calendar_or_not_rfc3339_is_a_422_problem_naming_it(
    flow: Flow, member: str, value: str
) -> None:
    body = request_body(flow.agency)
    if member == "due_at":
        body["due_at"] = value
        pointer = "/body/due_at"
    else:
        body["window"] = {**body["window"], member: value}
        pointer = f"/body/window/{member}"
    r = flow.client.post("/v1/requests", json=body, headers=flow.inv())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert [e["pointer"] for e in r.json()["errors"]] == [pointer]


def test_an_incident_window_older_than_any_footage_is_refused_at_its_end(
    flow: Flow, new_owner: NewOwner
) -> None:
    """A window that ended longer ago than the longest retention a camera may declare (3650 days) asks for
    footage no owner can have: a 422 problem at /body/window/end, reaching no owner. One just inside is kept."""
    owner = new_owner(flow.agency, flow.agency.centre, retention_days=3650)
    for start, end in (
        ("0001-01-01T14:00:00.000001+14:00", "0001-01-01T01:30:00Z"),  # the calendar's very start
        (
            iso(datetime.now(UTC) - timedelta(days=3651, hours=2)),
            iso(datetime.now(UTC) - timedelta(days=3651)),
        ),
    ):
        body = request_body(flow.agency, window={"start": start, "end": end})
        r = flow.client.post("/v1/requests", json=body, headers=flow.inv())
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert [(e["pointer"], e["code"], e["params"]) for e in r.json()["errors"]] == [
            ("/body/window/end", "too_old", {"days": 3650})
        ]
    # One that starts tomorrow: no footage of it exists yet.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    body = request_body(
        flow.agency, window={"start": iso(tomorrow), "end": iso(tomorrow + timedelta(hours=1))}
    )
    r = flow.client.post("/v1/requests", json=body, headers=flow.inv())
    assert r.status_code == 422, r.text
    assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == [("/body/window/start", "in_future")]
    kept_end = (datetime.now(UTC) - timedelta(days=3649)).replace(microsecond=0)
    window = {"start": iso(kept_end - timedelta(hours=1)), "end": iso(kept_end)}
    created = flow.create(window=window, due_at=iso(datetime.now(UTC) + timedelta(days=3)))
    assert created["window"] == window
    (target,) = flow.read(created["id"])["targets"]
    assert target["registration_id"] == owner.registration_id
