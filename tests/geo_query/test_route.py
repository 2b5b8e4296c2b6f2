"""The route canvass (`POST /v1/cameras/route`) against an independent model of the same data: the path sampled
every metre along its geodesics (pyproj), each camera's nearest sample by geodesic distance, its measure the
cumulative geodesic length to that sample, its time interpolated on the measure. Tolerances: distance 0.5 m, the
position along the path 1.5 m (the sampling step and the answer's 0.1 m rounding), the time one second.

Agency R's jurisdiction is a box over central Chicago; cameras are shared with R inside it, with R but outside it,
with agency S only, or paused (shared with none)."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from pyproj import Transformer

from tests.conftest import Token
from tests.geo_query.conftest import (
    GEOD,
    AgencyFixture,
    Cam,
    insert_agency,
    insert_camera,
    insert_registration,
)
from tests.support import Db

R_BOX = (-87.70, 41.85, -87.60, 41.92)
JURISDICTION = {
    "type": "MultiPolygon",
    "coordinates": [
        [
            [
                [R_BOX[0], R_BOX[1]],
                [R_BOX[2], R_BOX[1]],
                [R_BOX[2], R_BOX[3]],
                [R_BOX[0], R_BOX[3]],
                [R_BOX[0], R_BOX[1]],
            ]
        ]
    ],
}
# A 3.4 km route with a turn and a doubling back across itself.
PATH = [[-87.660, 41.870], [-87.640, 41.871], [-87.639, 41.884], [-87.650, 41.878], [-87.652, 41.866]]
START = datetime(2026, 11, 20, 22, 15, tzinfo=UTC)
DIST_TOL, ALONG_TOL = 0.5, 1.5


class World:
    def __init__(self, r: AgencyFixture, s: AgencyFixture, cams: list[Cam]) -> None:
        self.r, self.s, self.cams = r, s, cams

    def seen_by_r(self) -> list[Cam]:
        w, so, e, n = R_BOX
        return [c for c in self.cams if self.r.id in c.visible_to and w <= c.lon <= e and so <= c.lat <= n]


@pytest.fixture(scope="module")
def world(db: Db) -> World:
    rng = random.Random(20_2026)
    tag = uuid.uuid4().hex[:8]
    r = insert_agency(db, f"rr-{tag}", JURISDICTION, max_radius=500.0)
    s = insert_agency(db, f"rs-{tag}", JURISDICTION)
    cams: list[Cam] = []
    for i in range(160):
        roll = i % 8
        if roll == 6:
            visible: set[uuid.UUID] = {s.id}
        elif roll == 7:
            visible = set()
        else:
            visible = {r.id}
        outside = (
            i % 23 == 0
        )  # just west of R's jurisdiction, near the path's start... shared with R all the same
        lon = rng.uniform(-87.665, -87.632) if not outside else rng.uniform(-87.7040, -87.7005)
        lat = rng.uniform(41.862, 41.888)
        rid, _ = insert_registration(db, r, lon, lat, status="active" if visible else "paused")
        cam = Cam(
            id=uuid.uuid4(),
            registration_id=rid,
            lon=lon,
            lat=lat,
            visible_to=visible,
            owner_kind="residential",
            placement="outdoor",
            live_mode="never",
            retention_days=rng.choice([3, 30, None]),
            direction_deg=rng.randrange(360),
            fov_deg=rng.choice([60, 90, 360]),
            range_m=rng.choice([30.0, 60.0, None]),
        )
        insert_camera(db, cam)
        cams.append(cam)
    return World(r, s, cams)


# ------------------------------------------------------------------------------------------ the model


def sample(parts: list[list[list[float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """The path sampled about every metre: lon, lat, measure of each sample; and each part's vertex measures."""
    lons, lats, ms, vertex_m = [], [], [], []
    offset = 0.0
    for part in parts:
        vm = [offset]
        for (lo0, la0), (lo1, la1) in itertools.pairwise(part):
            length = GEOD.inv(lo0, la0, lo1, la1)[2]
            n = max(int(length), 1)
            pts = GEOD.npts(lo0, la0, lo1, la1, n - 1) if n > 1 else []
            seg = [(lo0, la0), *pts, (lo1, la1)]
            steps = np.linspace(0, length, len(seg))
            lons += [p[0] for p in seg]
            lats += [p[1] for p in seg]
            ms += list(vm[-1] + steps)
            vm.append(vm[-1] + length)
        vertex_m.append(np.array(vm))
        offset = vm[-1]
    return np.array(lons), np.array(lats), np.array(ms), vertex_m


def expected(
    cams: list[Cam], parts: list[list[list[float]]], buffer_m: float, times: list[float]
) -> tuple[list[tuple[float, float, float, Cam]], set[str]]:
    """(along, distance, epoch seconds, camera) within the buffer in path order; and ids too near its edge."""
    lons, lats, ms, vertex_m = sample(parts)
    vm = np.concatenate(vertex_m)
    out, edge = [], set()
    for c in cams:
        d = np.asarray(GEOD.inv(np.full(len(lons), c.lon), np.full(len(lats), c.lat), lons, lats)[2])
        k = int(np.argmin(d))
        if abs(d[k] - buffer_m) < DIST_TOL:
            edge.add(str(c.id))
        if d[k] <= buffer_m:
            out.append((float(ms[k]), float(d[k]), float(np.interp(ms[k], vm, times)), c))
    out.sort(key=lambda t: t[0])
    return out, edge


def post(geo: httpx.Client, h: dict[str, str], body: dict[str, Any], **params: Any) -> httpx.Response:
    return geo.post("/v1/cameras/route", json=body, params={"limit": 1000, **params}, headers=h)


def check_answer(features: list[dict], want: list[tuple[float, float, float, Cam]], edge: set[str]) -> None:
    got = {f["id"]: f["properties"] for f in features}
    want_ids = {str(c.id) for *_, c in want}
    assert set(got) - edge == want_ids - edge and len(want_ids) > 10
    alongs = [f["properties"]["along_m"] for f in features]
    assert alongs == sorted(alongs)
    for along, dist, at, c in want:
        p = got.get(str(c.id))
        if p is None:
            continue
        assert p["distance_m"] == pytest.approx(dist, abs=DIST_TOL)
        assert p["along_m"] == pytest.approx(along, abs=ALONG_TOL)
        passes = datetime.fromisoformat(p["passes_at"]).timestamp()
        assert passes == pytest.approx(at, abs=1.0)


# ------------------------------------------------------------------------------------------ the tests


def test_cameras_come_in_path_order_with_distances_and_times_from_per_vertex_times(
    geo: httpx.Client, auth: Token, world: World
) -> None:
    times = [START + timedelta(seconds=s) for s in (0, 200, 500, 640, 900)]
    body = {
        "path": {"type": "LineString", "coordinates": PATH},
        "buffer_m": 150,
        "times": [t.isoformat().replace("+00:00", "Z") for t in times],
        "margin_s": 90,
    }
    r = post(geo, auth("investigator", world.r.slug), body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    want, edge = expected(world.seen_by_r(), [PATH], 150, [t.timestamp() for t in times])
    check_answer(r.json()["features"], want, edge)
    for f in r.json()["features"]:
        p = f["properties"]
        at = datetime.fromisoformat(p["passes_at"])
        assert datetime.fromisoformat(p["window"]["start"]) == at - timedelta(seconds=90)
        assert datetime.fromisoformat(p["window"]["end"]) == at + timedelta(seconds=90)
        if p["retention_days"] is None:
            assert p["footage_until"] is None
        else:
            until = at - timedelta(seconds=90) + timedelta(days=p["retention_days"])
            assert datetime.fromisoformat(p["footage_until"]) == until
            assert p["footage_likely_available"] == (until > datetime.now(UTC))
    route = r.json()["route"]
    assert route["starts_at"] == "2026-11-20T22:15:00Z" and route["ends_at"] == "2026-11-20T22:30:00Z"
    assert route["length_m"] == pytest.approx(sample([PATH])[2][-1], abs=0.5)


@pytest.mark.parametrize(("speed", "mps"), [("walking", 1.4), ("driving", 13.9), (3.0, 3.0)])
def test_start_and_speed_time_the_path(
    geo: httpx.Client, auth: Token, world: World, speed: Any, mps: float
) -> None:
    body = {
        "path": {"type": "LineString", "coordinates": PATH},
        "buffer_m": 120,
        "start": "2026-11-20T22:15:00Z",
        "speed": speed,
    }
    r = post(geo, auth("supervisor", world.r.slug), body)
    assert r.status_code == 200, r.text
    vm = sample([PATH])[3][0]
    want, edge = expected(world.seen_by_r(), [PATH], 120, list(START.timestamp() + vm / mps))
    check_answer(r.json()["features"], want, edge)


def test_a_multilinestring_is_travelled_part_after_part_and_its_gap_is_not_searched(
    geo: httpx.Client, auth: Token, world: World
) -> None:
    parts = [PATH[:3], [[-87.645, 41.866], [-87.634, 41.866], [-87.634, 41.880]]]
    times = [START + timedelta(seconds=60 * i) for i in range(6)]
    body = {
        "path": {"type": "MultiLineString", "coordinates": parts},
        "buffer_m": 100,
        "times": [t.isoformat() for t in times],
    }
    r = post(geo, auth("investigator", world.r.slug), body)
    assert r.status_code == 200, r.text
    want, edge = expected(world.seen_by_r(), parts, 100, [t.timestamp() for t in times])
    check_answer(r.json()["features"], want, edge)


def test_a_projected_path_gives_the_answer_of_its_lonlat_twin(
    geo: httpx.Client, auth: Token, world: World
) -> None:
    to_sp = Transformer.from_crs(4326, 3435, always_xy=True)  # Illinois East State Plane, US feet
    projected = [list(to_sp.transform(lon, lat)) for lon, lat in PATH]
    base = {"buffer_m": 150, "start": "2026-11-20T22:15:00Z", "speed": "walking"}
    h = auth("cad", world.r.slug)
    a = post(geo, h, {**base, "path": {"type": "LineString", "coordinates": PATH}})
    b = post(geo, h, {**base, "path": {"type": "LineString", "coordinates": projected}, "crs": "EPSG:3435"})
    assert a.status_code == b.status_code == 200, b.text
    fa, fb = a.json()["features"], b.json()["features"]
    assert [f["id"] for f in fa] == [f["id"] for f in fb] and fa
    for x, y in zip(fa, fb, strict=True):
        assert x["properties"]["distance_m"] == pytest.approx(y["properties"]["distance_m"], abs=0.05)


def test_facing_keeps_the_cameras_whose_view_reaches_the_path(
    geo: httpx.Client, auth: Token, world: World
) -> None:
    import shapely
    from shapely.geometry import LineString, Polygon

    body = {
        "path": {"type": "LineString", "coordinates": PATH},
        "buffer_m": 100,
        "start": START.isoformat(),
        "speed": "driving",
    }
    h = auth("investigator", world.r.slug)
    everything = {f["id"] for f in post(geo, h, body).json()["features"]}
    r = post(geo, h, body, facing="true")
    assert r.status_code == 200, r.text
    facing = {f["id"] for f in r.json()["features"]}
    # The model: each camera's sector, 64 geodesic steps of its arc, in a local conformal projection.
    proj = Transformer.from_crs(4326, "+proj=tmerc +lat_0=41.875 +lon_0=-87.65 +ellps=WGS84", always_xy=True)
    line = LineString([proj.transform(lon, lat) for lon, lat in PATH])
    want, unsure = set(), set()
    for c in world.seen_by_r():
        if str(c.id) not in everything or c.direction_deg is None or c.fov_deg is None or c.range_m is None:
            continue
        span = 360.0 if c.fov_deg >= 360 else float(c.fov_deg)
        arc = [
            GEOD.fwd(c.lon, c.lat, c.direction_deg + span * (k / 64 - 0.5), c.range_m)[:2] for k in range(65)
        ]
        ring = [proj.transform(lo, la) for lo, la in arc]
        sector = Polygon(ring if c.fov_deg >= 360 else [proj.transform(c.lon, c.lat), *ring])
        if shapely.intersects(sector, line):
            want.add(str(c.id))
        if sector.exterior.distance(line) < 0.5:  # grazing: the service's 16-step arc may differ
            unsure.add(str(c.id))
    assert facing - unsure == want - unsure and want and facing < everything


def test_scoping_leaves_out_other_agencies_outside_jurisdiction_and_unshared(
    geo: httpx.Client, auth: Token, world: World
) -> None:
    path = [[-87.705, 41.862], *PATH]  # begins west of R's jurisdiction
    body = {
        "path": {"type": "LineString", "coordinates": path},
        "buffer_m": 500,
        "start": START.isoformat(),
        "speed": "walking",
    }
    got = {f["id"] for f in post(geo, auth("investigator", world.r.slug), body).json()["features"]}
    seen = {str(c.id) for c in world.seen_by_r()}
    assert got and got <= seen
    outside = [c for c in world.cams if world.r.id in c.visible_to and str(c.id) not in seen]
    others = [c for c in world.cams if world.r.id not in c.visible_to]
    assert outside and others
    assert not got & {str(c.id) for c in outside + others}
    near_outside = [c for c in outside if c.lon > -87.7040]
    assert near_outside  # they lie within the buffer: only the jurisdiction keeps them out
    s_got = {f["id"] for f in post(geo, auth("investigator", world.s.slug), body).json()["features"]}
    assert s_got == s_got & {str(c.id) for c in world.cams if world.s.id in c.visible_to} and s_got


def test_paging_follows_the_path_and_each_search_is_audited(
    geo: httpx.Client, auth: Token, world: World, db: Db
) -> None:
    sub = "route-" + uuid.uuid4().hex[:8]
    h = auth("investigator", world.r.slug, sub=sub)
    body = {
        "path": {"type": "LineString", "coordinates": PATH},
        "buffer_m": 150,
        "start": START.isoformat(),
        "speed": "walking",
    }
    whole = post(geo, h, body, case_number="2026-R1", contacts="false").json()
    pages, r = (
        [],
        geo.post(
            "/v1/cameras/route",
            json=body,
            params={"limit": 5, "case_number": "2026-R1", "contacts": "false"},
            headers=h,
        ),
    )
    asked = 1
    while True:
        assert r.status_code == 200, r.text
        pages += r.json()["features"]
        nxt = [link["href"] for link in r.json()["links"] if link["rel"] == "next"]
        if not nxt:
            break
        r = geo.post(nxt[0], json=body, headers=h)
        asked += 1
    assert [f["id"] for f in pages] == [f["id"] for f in whole["features"]]
    rows = db.fetch(
        "SELECT action, case_number, details, ST_GeometryType(area) AS kind FROM audit.events WHERE actor = $1"
        " ORDER BY seq",
        sub,
    )
    assert len(rows) == 1 + asked  # one record per answer: the whole route, then each page
    first = rows[0]
    details = orjson.loads(first["details"])
    assert first["action"] == "search.route" and first["case_number"] == "2026-R1"
    assert first["kind"] == "ST_Polygon" and details["buffer_m"] == 150 and details["timing"] == "speed"
    assert details["results"] == len(whole["features"]) and details["path"]["coordinates"] == PATH


def test_contacts_follow_the_case_number_rule(geo: httpx.Client, auth: Token, world: World, db: Db) -> None:
    body = {
        "path": {"type": "LineString", "coordinates": PATH},
        "buffer_m": 100,
        "start": START.isoformat(),
        "speed": "walking",
    }
    bare = post(geo, auth("investigator", world.r.slug), body).json()["features"]
    assert bare and all("contact" not in f["properties"] for f in bare)
    sub = "route-" + uuid.uuid4().hex[:8]
    full = post(geo, auth("investigator", world.r.slug, sub=sub), body, case_number="2026-R2").json()[
        "features"
    ]
    assert [f["id"] for f in full] == [f["id"] for f in bare]
    assert all(f["properties"]["contact"]["email"].startswith("owner-") for f in full)
    assert all(f["properties"]["passes_at"] for f in full)
    (details,) = [
        orjson.loads(v["details"]) for v in db.fetch("SELECT details FROM audit.events WHERE actor = $1", sub)
    ]
    assert set(details["contacts_disclosed"]) == {f["properties"]["registration_id"] for f in full}


VALID = {
    "path": {"type": "LineString", "coordinates": PATH},
    "buffer_m": 100,
    "start": "2026-11-20T22:15:00Z",
    "speed": "walking",
}


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (
            {"path": {"type": "LineString", "coordinates": [[-87.66, 41.87], [-87.66, 41.87]]}},
            "/body/path/coordinates",
        ),
        ({"path": {"type": "LineString", "coordinates": [[-87.66, 41.87]]}}, "/body/path/coordinates"),
        (
            {"path": {"type": "MultiLineString", "coordinates": [PATH, [[-87.6, 41.9], [-87.6, 41.9]]]}},
            "/body/path/coordinates/1",
        ),
        ({"path": {"type": "LineString", "coordinates": [[-87.66, 41.87], [-87.0, 41.87]]}}, "/body/path"),
        (
            {"path": {"type": "LineString", "coordinates": [[-87.66, 41.87], [-87.66, 95.0]]}},
            "/body/path/coordinates/1",
        ),
        (
            {"path": {"type": "LineString", "coordinates": [[-187.66, 41.87], [-87.66, 41.88]]}},
            "/body/path/coordinates/0",
        ),
        ({"path": {"type": "LineString", "coordinates": [[179.9, -16.8], [-179.9, -16.8]]}}, "/body/path"),
        ({"path": {"type": "LineString", "coordinates": [[179.9995, -16.8], [179.99, -16.8]]}}, "/body/path"),
        ({"path": {"type": "Polygon", "coordinates": [PATH]}}, "/body/path"),
        ({"buffer_m": 501}, "/body/buffer_m"),
        ({"buffer_m": 0}, "/body/buffer_m"),
        ({"margin_s": 4000}, "/body/margin_s"),
        ({"speed": None, "start": None}, "/body/start"),
        ({"speed": None}, "/body/speed"),
        ({"speed": -1}, "/body/speed"),
        ({"speed": "running"}, "/body/speed"),
        ({"speed": "3"}, "/body/speed"),
        ({"buffer_m": "100"}, "/body/buffer_m"),
        ({"times": ["2026-11-20T22:15:00Z"] * 5}, "/body/times"),
        (
            {"start": None, "speed": None, "times": ["2026-11-20T22:15:00Z", "2026-11-20T22:16:00Z"]},
            "/body/times",
        ),
        (
            {
                "start": None,
                "speed": None,
                "times": [f"2026-11-20T22:{m:02d}:00Z" for m in (15, 16, 18, 17, 19)],
            },
            "/body/times/3",
        ),
        ({"start": "1969-12-31T23:59:00Z"}, "/body/start"),
        ({"start": "9999-12-31T23:59:00Z"}, "/body/start"),
        (
            {"start": None, "speed": None, "times": [f"2099-11-20T22:{m:02d}:00Z" for m in range(15, 20)]},
            "/body/times",
        ),
        ({"crs": "EPSG:3435"}, "/body/path/coordinates/0"),
        ({"crs": "not a crs"}, "/body/crs"),
    ],
)
def test_bad_routes_are_problems(
    geo: httpx.Client, auth: Token, world: World, change: dict[str, Any], pointer: str
) -> None:
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    r = post(geo, auth("investigator", world.r.slug), body)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e["pointer"].startswith(pointer) for e in r.json()["errors"]), r.json()


def test_nan_coordinates_are_a_problem(geo: httpx.Client, auth: Token, world: World) -> None:
    raw = orjson.dumps(VALID).decode().replace("-87.66,", "NaN,", 1)
    r = geo.post(
        "/v1/cameras/route",
        content=raw,
        headers={**auth("investigator", world.r.slug), "content-type": "application/json"},
    )
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"


def test_a_path_that_crosses_itself_is_a_route(geo: httpx.Client, auth: Token, world: World) -> None:
    figure = [[-87.655, 41.870], [-87.640, 41.880], [-87.640, 41.870], [-87.655, 41.880]]
    body = {**VALID, "path": {"type": "LineString", "coordinates": figure}}
    r = post(geo, auth("investigator", world.r.slug), body)
    assert r.status_code == 200, r.text
    alongs = [f["properties"]["along_m"] for f in r.json()["features"]]
    assert alongs == sorted(alongs) and alongs


def test_a_route_longer_than_the_cap_is_a_problem(geo: httpx.Client, auth: Token, world: World) -> None:
    long = [[-87.69, 41.86], [-87.61, 41.86], [-87.61, 41.91], [-87.69, 41.91]] * 4
    body = {**VALID, "path": {"type": "LineString", "coordinates": long}}
    r = post(geo, auth("investigator", world.r.slug), body)
    assert r.status_code == 422 and "at most 50 km" in r.json()["detail"], r.text


def test_incident_at_is_refused_on_a_route(geo: httpx.Client, auth: Token, world: World) -> None:
    r = post(geo, auth("investigator", world.r.slug), VALID, incident_at="2026-11-20T22:15:00Z")
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/incident_at", r.text


def test_a_path_with_altitudes_gives_the_answer_of_the_same_path_without_them(
    geo: httpx.Client, auth: Token, world: World
) -> None:
    """A GPS track carries an altitude in each position: the route canvass searches where on the ground."""
    h = auth("investigator", world.r.slug)
    flat = {"path": {"type": "LineString", "coordinates": PATH}, "buffer_m": 150, "start": START.isoformat()}
    high = {
        **flat,
        "path": {"type": "LineString", "coordinates": [[*p, 176.0 + i] for i, p in enumerate(PATH)]},
    }
    answers = []
    for body in (flat, high):
        r = post(geo, h, {**body, "speed": "walking"})
        assert r.status_code == 200, r.text
        answers.append([f["id"] for f in r.json()["features"]])
    assert answers[0] == answers[1] and answers[0]
