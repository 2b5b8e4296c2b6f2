"""`incident_at` across the whole RFC 3339 range on every search that takes it (radius, nearest, bbox, area, OGC
items): an instant whose UTC falls outside the calendar the services compute with is a 4xx problem; one inside it,
however far back, is answered, with `footage_until` counted from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Token
from tests.geo_query.conftest import Registry

PROBLEM = "application/problem+json"
LON, LAT = -73.975, 40.74
D = 0.01
AREA = {
    "type": "Polygon",
    "coordinates": [
        [[LON - D, LAT - D], [LON + D, LAT - D], [LON + D, LAT + D], [LON - D, LAT + D], [LON - D, LAT - D]]
    ],
}
ROUTES: dict[str, tuple[str, str, dict[str, Any], Any]] = {
    "radius": ("GET", "/v1/cameras/radius", {"lon": LON, "lat": LAT, "radius_m": 1500}, None),
    "nearest": ("GET", "/v1/cameras/nearest", {"lon": LON, "lat": LAT, "k": 20}, None),
    "bbox": ("GET", "/v1/cameras/bbox", {"bbox": f"{LON - D},{LAT - D},{LON + D},{LAT + D}"}, None),
    "area": ("POST", "/v1/cameras/area", {}, {"area": AREA}),
    "ogc items": (
        "GET",
        "/v1/ogc/collections/cameras/items",
        {"bbox": f"{LON - D},{LAT - D},{LON + D},{LAT + D}"},
        None,
    ),
}
# Written at the calendar's edge with an offset that carries them past it in UTC; or not instants at all.
REFUSED = [
    "0001-01-01T00:00:00Z",  # the database driver's -infinity
    "0001-01-01T14:00:00+14:00",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0000-12-31T23:00:00-01:00",
    "2026-02-30T10:00:00Z",
    "2016-12-31T23:59:60Z",
    "1763676900",
    "2026-11-20",
]
# At the calendar's other end, in the future: refused.
FUTURE = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59+14:00", "9999-12-31T23:59:59.999999999Z"]
# The earliest instants the services take (whatever the offset), and lower-case separators: answered.
ANSWERED = {
    "0001-01-01T00:00:00.000001Z": datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    "0001-01-01T00:00:00-01:00": datetime(1, 1, 1, 1, tzinfo=UTC),
    "0001-01-01T14:00:01+14:00": datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC),
    "2026-11-20t22:15:00z": datetime(2026, 11, 20, 22, 15, tzinfo=UTC),
}


def _send(geo: httpx.Client, h: dict[str, str], route: str, incident_at: str) -> httpx.Response:
    method, path, params, body = ROUTES[route]
    return geo.request(method, path, params={**params, "incident_at": incident_at}, json=body, headers=h)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("incident_at", REFUSED + FUTURE)
def test_an_incident_at_outside_the_calendar_or_in_the_future_is_a_4xx_problem(
    geo: httpx.Client, auth: Token, registry_data: Registry, route: str, incident_at: str
) -> None:
    r = _send(geo, auth("investigator", registry_data.x.slug), route, incident_at)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == r.status_code
    assert [e["pointer"] for e in body["errors"]] == ["/query/incident_at"]


@pytest.mark.parametrize("route", ROUTES)
def test_an_incident_tomorrow_is_refused_with_a_code_to_word_it(
    geo: httpx.Client, auth: Token, registry_data: Registry, route: str
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    r = _send(geo, auth("investigator", registry_data.x.slug), route, tomorrow)
    assert r.status_code == 400, r.text
    assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == [("/query/incident_at", "in_future")]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("incident_at", ANSWERED)
def test_an_incident_at_at_the_start_of_the_calendar_is_answered_with_footage_until_from_it(
    geo: httpx.Client, auth: Token, registry_data: Registry, route: str, incident_at: str
) -> None:
    r = _send(geo, auth("cad", registry_data.x.slug), route, incident_at)
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    assert features, "the search area holds cameras"
    by_id = {str(c.id): c for c in registry_data.cams}
    instant = ANSWERED[incident_at]
    for f in features:
        retention = by_id[f["id"]].retention_days
        props = f["properties"]
        if retention is None:
            assert props["footage_until"] is None and props["footage_likely_available"] is None
        else:
            until = instant + timedelta(days=retention)
            assert props["footage_until"] == until.replace(microsecond=0).isoformat().replace("+00:00", "Z")
            assert props["footage_likely_available"] is (until > datetime.now(UTC))
