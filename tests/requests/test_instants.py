"""The instants of a footage request's body (`window.start`, `window.end`, `due_at`) across the whole RFC 3339
range: one whose UTC leaves the calendar the services compute with, or that is not an RFC 3339 instant, is a 422
problem naming the member; an incident window at the calendar's very start is accepted and kept as given."""

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


def test_an_incident_window_at_the_start_of_the_calendar_is_accepted_and_kept(
    flow: Flow, new_owner: NewOwner
) -> None:
    owner = new_owner(flow.agency, flow.agency.centre, retention_days=7)
    start = "0001-01-01T14:00:00.000001+14:00"  # 0001-01-01T00:00:00.000001Z
    due = datetime.now(UTC) + timedelta(days=3)
    created = flow.create(window={"start": start, "end": "0001-01-01T01:30:00Z"}, due_at=iso(due))
    assert created["window"] == {"start": "0001-01-01T00:00:00.000001Z", "end": "0001-01-01T01:30:00Z"}
    read = flow.read(created["id"])
    assert read["window"] == created["window"]
    (target,) = read["targets"]
    assert target["registration_id"] == owner.registration_id
    assert target["footage_until"] == "0001-01-08T00:00:00Z"  # geo_query counts it in whole seconds
