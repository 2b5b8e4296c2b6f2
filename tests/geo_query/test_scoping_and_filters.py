"""Hand-made cases for `facing` and `incident_at`; scoping (agency, jurisdiction, paused registrations, roles);
contact details only with a case number; an audit record for every query."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from tests.conftest import Token
from tests.geo_query.conftest import (
    GEOD,
    AgencyFixture,
    Cam,
    Registry,
    insert_agency,
    insert_camera,
    insert_registration,
)
from tests.support import Db

P = (-104.99, 39.74)  # the incident


@pytest.fixture(scope="module")
def hand_made(db: Db) -> tuple[AgencyFixture, dict[str, Cam]]:
    """Cameras placed by bearing and distance from P: (bearing from P, metres, direction, fov, range, retention)."""
    agency = insert_agency(
        db,
        "gf-" + uuid.uuid4().hex[:8],
        {
            "type": "MultiPolygon",
            "coordinates": [
                [[[-105.05, 39.70], [-104.95, 39.70], [-104.95, 39.78], [-105.05, 39.78], [-105.05, 39.70]]]
            ],
        },
    )
    rid, _ = insert_registration(db, agency, *P)
    spec = {
        "south_facing_north": (180, 20, 0, 90, 40.0, 3),
        "south_facing_south": (180, 20, 180, 90, 40.0, 30),
        "south_too_short": (180, 20, 0, 90, 10.0, None),
        "east_all_around": (90, 30, 0, 360, 50.0, 0),
        "east_no_direction": (90, 30, None, 90, 50.0, 30),
        "wraps_north": (185, 20, 350, 40, 40.0, 14),
        "wraps_but_narrow": (185, 20, 340, 20, 40.0, 7),
        "north_out_of_range": (0, 35, 180, 60, 30.0, 30),
        "west_dead_on": (270, 25, 90, 2, 30.0, 30),
    }
    cams: dict[str, Cam] = {}
    for name, (bearing, dist, direction, fov, rng, retention) in spec.items():
        lon, lat, _ = GEOD.fwd(P[0], P[1], bearing, dist)
        cam = Cam(
            uuid.uuid4(),
            rid,
            float(lon),
            float(lat),
            {agency.id},
            "residential",
            "outdoor",
            "never",
            retention,
            direction,
            fov,
            rng,
        )
        insert_camera(db, cam)
        cams[name] = cam
    return agency, cams


FACING = {"south_facing_north", "east_all_around", "wraps_north", "west_dead_on"}


def _names(cams: dict[str, Cam], features: list[dict]) -> set[str]:
    by_id = {str(c.id): n for n, c in cams.items()}
    return {by_id[f["id"]] for f in features}


def test_facing_keeps_exactly_the_cameras_whose_sector_contains_the_point(
    geo: httpx.Client, auth: Token, hand_made: tuple[AgencyFixture, dict[str, Cam]]
) -> None:
    agency, cams = hand_made
    h = auth("investigator", agency.slug)
    point = {"lon": P[0], "lat": P[1]}
    radius = geo.get("/v1/cameras/radius", params={**point, "radius_m": 100, "facing": "true"}, headers=h)
    assert radius.status_code == 200, radius.text
    assert _names(cams, radius.json()["features"]) == FACING
    everything = geo.get("/v1/cameras/radius", params={**point, "radius_m": 100}, headers=h).json()[
        "features"
    ]
    assert _names(cams, everything) == set(cams)
    nearest = geo.get("/v1/cameras/nearest", params={**point, "k": 50, "facing": "true"}, headers=h).json()
    assert _names(cams, nearest["features"]) == FACING
    bbox = geo.get(
        "/v1/cameras/bbox",
        params={"bbox": "-105.0,39.73,-104.98,39.75", "point": f"{P[0]},{P[1]}", "facing": "true"},
        headers=h,
    ).json()
    assert _names(cams, bbox["features"]) == FACING


def test_incident_at_gives_footage_until_and_only_available_keeps_what_is_likely_kept(
    geo: httpx.Client, auth: Token, hand_made: tuple[AgencyFixture, dict[str, Cam]]
) -> None:
    agency, cams = hand_made
    h = auth("investigator", agency.slug)
    incident = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
    params: dict[str, str | float] = {
        "lon": P[0],
        "lat": P[1],
        "radius_m": 100,
        "incident_at": incident.isoformat().replace("+00:00", "Z"),
    }
    feats = geo.get("/v1/cameras/radius", params=params, headers=h).json()["features"]
    by_id = {str(c.id): n for n, c in cams.items()}
    by_name = {by_id[f["id"]]: f["properties"] for f in feats}
    for name, cam in cams.items():
        props = by_name[name]
        if cam.retention_days is None:
            assert props["footage_until"] is None and props["footage_likely_available"] is None
        else:
            until = incident + timedelta(days=cam.retention_days)
            assert props["footage_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert props["footage_likely_available"] is (cam.retention_days > 10)
    kept = geo.get("/v1/cameras/radius", params={**params, "only_available": "true"}, headers=h).json()[
        "features"
    ]
    assert _names(cams, kept) == {
        n for n, c in cams.items() if c.retention_days is not None and c.retention_days > 10
    }
    plain = geo.get(
        "/v1/cameras/radius", params={"lon": P[0], "lat": P[1], "radius_m": 100}, headers=h
    ).json()
    assert all("footage_until" not in f["properties"] for f in plain["features"])


def test_nearest_with_incident_at_gives_footage_until_and_only_available_keeps_what_is_likely_kept(
    geo: httpx.Client, auth: Token, hand_made: tuple[AgencyFixture, dict[str, Cam]]
) -> None:
    agency, cams = hand_made
    h = auth("cad", agency.slug)
    incident = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
    params: dict[str, str | float] = {
        "lon": P[0],
        "lat": P[1],
        "k": 50,
        "cad_incident": "F261120-0042",
        "incident_at": incident.isoformat().replace("+00:00", "Z"),
    }
    r = geo.get("/v1/cameras/nearest", params=params, headers=h)
    assert r.status_code == 200, r.text
    by_id = {str(c.id): n for n, c in cams.items()}
    by_name = {by_id[f["id"]]: f["properties"] for f in r.json()["features"]}
    assert set(by_name) == set(cams)
    for name, cam in cams.items():
        props = by_name[name]
        if cam.retention_days is None:
            assert props["footage_until"] is None and props["footage_likely_available"] is None
        else:
            until = incident + timedelta(days=cam.retention_days)
            assert props["footage_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert props["footage_likely_available"] is (cam.retention_days > 10)
    kept = geo.get("/v1/cameras/nearest", params={**params, "only_available": "true"}, headers=h)
    assert kept.status_code == 200, kept.text
    assert _names(cams, kept.json()["features"]) == {
        n for n, c in cams.items() if c.retention_days is not None and c.retention_days > 10
    }


def test_agency_y_never_sees_cameras_shared_only_with_x(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    h = auth("investigator", registry_data.y.slug)
    r = geo.get("/v1/cameras/bbox", params={"bbox": "-74.05,40.67,-73.90,40.81", "limit": 5000}, headers=h)
    got = {f["id"] for f in r.json()["features"]}
    expected = {str(c.id) for c in registry_data.visible(registry_data.y)}
    assert got == expected and got
    x_only = {str(c.id) for c in registry_data.cams if c.visible_to == {registry_data.x.id}}
    assert not got & x_only
    radius = geo.get(
        "/v1/cameras/radius",
        params={"lon": -73.975, "lat": 40.74, "radius_m": 2000, "limit": 1000},
        headers=h,
    )
    assert not {f["id"] for f in radius.json()["features"]} & x_only


def test_paused_and_withdrawn_and_out_of_jurisdiction_cameras_never_appear(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    h = auth("investigator", registry_data.x.slug)
    r = geo.get("/v1/ogc/collections/cameras/items", params={"limit": 100000}, headers=h)
    got = {f["id"] for f in r.json()["features"]}
    hidden = {str(c.id) for c in registry_data.cams if not c.visible_to}
    outside = {str(c.id) for c in registry_data.cams if registry_data.x.id in c.visible_to} - {
        str(c.id) for c in registry_data.visible(registry_data.x)
    }
    assert hidden and outside  # the fixture has both kinds
    assert not got & hidden and not got & outside
    assert got == {str(c.id) for c in registry_data.visible(registry_data.x)}


def test_contacts_appear_only_for_investigators_with_a_case_number(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Db
) -> None:
    params = {"lon": -73.975, "lat": 40.74, "radius_m": 800, "limit": 1000}
    bare = geo.get(
        "/v1/cameras/radius", params=params, headers=auth("investigator", registry_data.x.slug)
    ).json()
    assert bare["features"] and all("contact" not in f["properties"] for f in bare["features"])
    assert "example.org" not in orjson.dumps(bare).decode()
    cad = geo.get(
        "/v1/cameras/radius",
        params={**params, "case_number": "2026-77"},
        headers=auth("cad", registry_data.x.slug),
    ).json()
    assert all("contact" not in f["properties"] for f in cad["features"])
    sub = "inv-" + uuid.uuid4().hex[:8]
    full = geo.get(
        "/v1/cameras/radius",
        params={**params, "case_number": "2026-77"},
        headers=auth("investigator", registry_data.x.slug, sub=sub),
    ).json()
    assert [f["id"] for f in full["features"]] == [f["id"] for f in bare["features"]]
    for f in full["features"]:
        contact = f["properties"]["contact"]
        rid = uuid.UUID(f["properties"]["registration_id"])
        assert contact["email"] == registry_data.emails[rid]
        assert contact["phone"] == "+1 555 0100" and contact["notes"] == "Ring the side door"
    (record,) = _audit(db, sub)
    disclosed = record["details"]["contacts_disclosed"]
    assert set(disclosed) == {f["properties"]["registration_id"] for f in full["features"]}
    ids_only = geo.get(
        "/v1/cameras/radius",
        params={**params, "case_number": "2026-77", "contacts": "false"},
        headers=auth("investigator", registry_data.x.slug, sub=sub),
    ).json()
    assert ids_only["features"] and all("contact" not in f["properties"] for f in ids_only["features"])
    assert "contacts_disclosed" not in _audit(db, sub)[1]["details"]


@pytest.mark.parametrize(
    ("role", "agency", "status"),
    [("auditor", "x", 403), ("advocate", "x", 403), ("investigator", "nowhere", 403), (None, None, 401)],
)
def test_only_searching_roles_of_a_known_agency_may_search(
    geo: httpx.Client, auth: Token, registry_data: Registry, role: str | None, agency: str | None, status: int
) -> None:
    headers = {}
    if role is not None:
        headers = auth(
            role, registry_data.x.slug if agency == "x" else "no-such-agency-" + uuid.uuid4().hex[:6]
        )
    r = geo.get("/v1/cameras/radius", params={"lon": -73.975, "lat": 40.74, "radius_m": 100}, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"


def _audit(db: Db, sub: str) -> list[dict]:
    rows = db.fetch(
        "SELECT seq, action, actor_role, agency, case_number, subject_type, subject_id, details,"
        " ST_AsGeoJSON(area) AS area FROM audit.events WHERE actor = $1 ORDER BY seq",
        sub,
    )
    return [
        {
            **dict(r),
            "details": orjson.loads(r["details"]),
            "area": orjson.loads(r["area"]) if r["area"] else None,
        }
        for r in rows
    ]


def test_every_kind_of_query_writes_one_audit_record(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Db
) -> None:
    x = registry_data.x
    sub = "audit-" + uuid.uuid4().hex[:8]
    h = auth("investigator", x.slug, sub=sub)
    point = {"lon": -73.975, "lat": 40.74}
    answers = [
        geo.get(
            "/v1/cameras/radius",
            params={**point, "radius_m": 500, "case_number": "C-1", "placement": "outdoor"},
            headers=h,
        ),
        geo.get("/v1/cameras/nearest", params={**point, "k": 3, "cad_incident": "F-9"}, headers=h),
        geo.get("/v1/cameras/bbox", params={"bbox": "-73.99,40.72,-73.96,40.75"}, headers=h),
        geo.post(
            "/v1/cameras/area",
            json={
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[-73.99, 40.72], [-73.96, 40.72], [-73.96, 40.75], [-73.99, 40.72]]],
                }
            },
            headers=h,
        ),
        geo.get("/v1/ogc/collections/cameras/items", params={"limit": 2}, headers=h),
        geo.get("/v1/cameras/bbox", params={"bbox": "-74.05,40.67,-73.90,40.81", "limit": 3000}, headers=h),
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    first_id = answers[4].json()["features"][0]["id"]
    assert geo.get(f"/v1/ogc/collections/cameras/items/{first_id}", headers=h).status_code == 200
    records = _audit(db, sub)
    assert [r["action"] for r in records] == [
        "search.radius",
        "search.nearest",
        "search.bbox",
        "search.area",
        "ogc.items",
        "search.bbox",  # a streamed answer: audited before its first byte...
        "search.bbox",  # ...and again when it ended, with what was sent
        "ogc.item",
    ]
    for rec, answer in zip(records[:5], answers, strict=False):
        assert rec["agency"] == x.slug and rec["actor_role"] == "investigator"
        assert rec["details"]["results"] == answer.json()["numberReturned"]
    radius, nearest, bbox, area, items, started, streamed, item = records
    assert started["details"]["phase"] == "started" and started["details"]["results"] == 0
    assert streamed["details"]["results"] == answers[5].json()["numberReturned"]
    assert radius["case_number"] == "C-1"
    assert radius["area"] == {"type": "Point", "coordinates": [-73.975, 40.74]}
    assert radius["details"]["radius_m"] == 500 and radius["details"]["filters"] == {"placement": ["outdoor"]}
    assert nearest["case_number"] == "CAD F-9" and nearest["details"]["cad_incident"] == "F-9"
    assert nearest["details"]["k"] == 3
    assert bbox["area"]["type"] == "MultiPolygon" and area["area"]["type"] == "Polygon"
    assert items["area"] is None
    assert streamed["details"]["streamed"] is True and streamed["details"]["completed"] is True
    assert streamed["details"]["phase"] == "ended" and started["seq"] < streamed["seq"]
    assert (
        item["subject_type"] == "camera"
        and item["subject_id"] == first_id
        and item["details"]["results"] == 1
    )


def test_a_refused_query_reads_nothing_and_a_state_plane_query_is_audited_with_its_crs(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Db
) -> None:
    sub = "audit-" + uuid.uuid4().hex[:8]
    h = auth("cad", registry_data.x.slug, sub=sub)
    assert (
        geo.get(
            "/v1/cameras/radius", params={"lon": -73.975, "lat": 40.74, "radius_m": 10**7}, headers=h
        ).status_code
        == 400
    )
    r = geo.get(
        "/v1/cameras/radius",
        params={"x": 988217.0, "y": 211790.0, "crs": "EPSG:2263", "radius_m": 300},
        headers=h,
    )
    assert r.status_code == 200, r.text
    (rec,) = _audit(db, sub)
    assert rec["details"]["crs"] == "EPSG:2263" and rec["details"]["point_in_crs"] == [988217.0, 211790.0]
    lon, lat = rec["area"]["coordinates"]
    assert -74.0 < lon < -73.97 and 40.74 < lat < 40.76
