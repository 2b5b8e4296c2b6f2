"""A footage request drawn along a route of travel: the owners of the cameras along it are asked, each only for
the minutes the path passed their cameras (geo_query's route search: passes_at ± the margin), stored per target,
shown to the owner and written in the mail; found again the same way when the request is sent."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pyproj import Geod

from services.requests_api import geo_client
from tests.conftest import Token
from tests.requests.conftest import Flow, NewOwner, Owner, iso, patch_registration, request_body
from tests.support import ROOT, Db, Mailbox


def _route(flow: Flow, start: datetime, **over: Any) -> dict[str, Any]:
    return {
        "path": {
            "type": "LineString",
            "coordinates": [flow.agency.near(dx=-0.004), flow.agency.near(dx=0.004)],
        },
        "buffer_m": 80,
        "start": iso(start),
        "speed": "walking",
        "margin_s": 60,
        **over,
    }


def _owners(flow: Flow, new_owner: NewOwner) -> tuple[Owner, Owner, Owner, Owner]:
    west = new_owner(flow.agency, flow.agency.near(dx=-0.003, dy=0.0003), cameras=2)
    middle = new_owner(flow.agency, flow.agency.near(dy=-0.0002))
    east = new_owner(flow.agency, flow.agency.near(dx=0.003, dy=0.0002))
    far = new_owner(flow.agency, flow.agency.near(dy=0.01))
    return west, middle, east, far


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_each_owner_along_a_route_is_asked_only_for_the_minutes_it_passed_their_cameras(
    flow: Flow, new_owner: NewOwner, geo: httpx.Client, auth: Token
) -> None:
    west, middle, east, far = _owners(flow, new_owner)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    route = _route(flow, start)
    req = flow.create(radius_m=None, route=route)
    assert req["area_kind"] == "route" and req["route"]["buffer_m"] == 80
    # The area is the path's 80 m buffer: a band along it and two half discs, to within the buffer's polygon.
    (lon0, lat0), (lon1, lat1) = route["path"]["coordinates"]
    length = Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)[2]
    assert req["area"]["type"] == "Polygon"
    assert req["area_m2"] == pytest.approx(2 * 80 * length + math.pi * 80**2, rel=0.01)
    # What geo_query answers for the same route: each camera's own window.
    along = geo.post(
        "/v1/cameras/route",
        json=route,
        params={"case_number": req["case_number"], "contacts": "false"},
        headers=auth("investigator", flow.agency.slug),
    ).json()["features"]
    windows = {f["id"]: f["properties"]["window"] for f in along}
    targets = {t["registration_id"]: t for t in req["targets"]}
    assert set(targets) == {west.registration_id, middle.registration_id, east.registration_id}
    for owner in (west, middle, east):
        t = targets[owner.registration_id]
        assert {c["camera_id"] for c in t["cameras"]} == set(owner.camera_ids)
        for c in t["cameras"]:
            assert c["window"] == windows[c["camera_id"]]
        assert _t(t["window"]["start"]) == min(_t(c["window"]["start"]) for c in t["cameras"])
        assert _t(t["window"]["end"]) == max(_t(c["window"]["end"]) for c in t["cameras"])
        assert _t(t["window"]["end"]) - _t(t["window"]["start"]) < timedelta(minutes=3)
    # West is passed first, east last, walking: about 4 minutes between them.
    assert _t(targets[west.registration_id]["window"]["start"]) < _t(
        targets[east.registration_id]["window"]["start"]
    )
    assert far.registration_id not in targets


def test_the_owner_sees_and_is_mailed_their_own_window(
    flow: Flow, new_owner: NewOwner, mailbox: Mailbox
) -> None:
    west, _, east, _ = _owners(flow, new_owner)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    req = flow.sent(radius_m=None, route=_route(flow, start))
    for owner in (west, east):
        view = flow.client.get(f"/v1/owner/requests/{req['id']}", headers=owner.headers)
        assert view.status_code == 200, view.text
        window = view.json()["window"]
        cams = view.json()["cameras"]
        assert window != req["window"]
        assert _t(window["start"]) == min(_t(c["window"]["start"]) for c in cams)
        assert _t(window["end"]) == max(_t(c["window"]["end"]) for c in cams)
        mail = mailbox.wait_for(
            owner.email, lambda m: "asks for camera footage" in str(m["Subject"]), timeout=15
        )
        text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
        shown = f"{_t(window['start']):%Y-%m-%d %H:%M} UTC to {_t(window['end']):%Y-%m-%d %H:%M} UTC"
        assert shown in text, text
        assert f"{_t(req['window']['start']):%Y-%m-%d %H:%M} UTC" not in text
        for c in cams:
            assert f"{c['window']['start']} to {c['window']['end']}" in text


def test_an_owner_who_stopped_sharing_is_dropped_at_send_and_the_others_keep_their_windows(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    west, middle, east, _ = _owners(flow, new_owner)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    req = flow.create(radius_m=None, route=_route(flow, start))
    before = {t["registration_id"]: t["window"] for t in req["targets"]}
    patch_registration(registry, middle, {"status": "paused"})
    assert flow.act(req["id"], "submit").status_code == 200
    assert flow.act(req["id"], "approve").status_code == 200
    rows = db.fetch(
        "SELECT registration_id::text AS reg, state, window_start, window_end FROM requests.targets"
        " WHERE request_id = $1",
        uuid.UUID(req["id"]),
    )
    states = {r["reg"]: r["state"] for r in rows}
    assert states[middle.registration_id] == "dropped"
    for owner in (west, east):
        row = next(r for r in rows if r["reg"] == owner.registration_id)
        assert row["state"] != "dropped"
        assert (row["window_start"], row["window_end"]) == (
            _t(before[owner.registration_id]["start"]),
            _t(before[owner.registration_id]["end"]),
        )


@pytest.mark.parametrize(
    ("over", "pointer"),
    [
        ({"radius_m": 200}, "/body/route"),
        ({"camera_ids": [str(uuid.uuid4())]}, "/body/camera_ids"),
        ({"window_shift_h": 3}, "/body/route"),  # the route's times fall outside the request's window
        ({"path": "zero"}, None),  # geo_query refuses the path: its detail names it
        ({"buffer_m": "80"}, "/body/route/buffer_m"),
    ],
)
def test_bad_route_requests_are_problems(flow: Flow, over: dict[str, Any], pointer: str | None) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    route = _route(flow, start)
    body = request_body(flow.agency, radius_m=None, route=route)
    if "radius_m" in over:
        body["radius_m"] = over["radius_m"]
    if "camera_ids" in over:
        body["camera_ids"] = over["camera_ids"]
    if "window_shift_h" in over:
        now = datetime.now(UTC)
        body["window"] = {"start": iso(now - timedelta(hours=3)), "end": iso(now - timedelta(hours=2))}
    if "path" in over:
        p = flow.agency.near()
        route["path"] = {"type": "LineString", "coordinates": [p, p]}
    if "buffer_m" in over:
        route["buffer_m"] = over["buffer_m"]
    r = flow.client.post("/v1/requests", json=body, headers=flow.inv())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if pointer is not None:
        assert any(e["pointer"].startswith(pointer) for e in r.json().get("errors", [])), r.json()
    else:
        assert "distinct points" in r.json()["detail"]


def test_the_route_fields_the_client_uses_are_in_geo_querys_contract() -> None:
    doc = json.loads((ROOT / "openapi" / "geo_query.json").read_text())
    schemas = doc["components"]["schemas"]
    assert set(geo_client.ROUTE_BODY_FIELDS) <= set(schemas["RouteSearch"]["properties"])
    assert set(geo_client.ROUTE_FEATURE_PROPERTIES) <= set(schemas["RouteCameraProperties"]["properties"])
    assert set(geo_client.FEATURE_PROPERTIES) <= set(schemas["RouteCameraProperties"]["properties"])
    assert set(geo_client.ROUTE_SUMMARY_FIELDS) <= set(schemas["RouteSummary"]["properties"])
    assert "route" in schemas["RouteCollection"]["properties"]
