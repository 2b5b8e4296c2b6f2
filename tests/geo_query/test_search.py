"""Radius, nearest K, bbox (antimeridian included) and polygon searches, checked against an independent computation
on the fixture: geodesic distances with pyproj, containment with shapely — exact sets and distance order."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

import httpx
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point as SPoint
from shapely.geometry import shape

from tests.conftest import Token
from tests.geo_query.conftest import GEOD, Cam, Registry, insert_agency, insert_camera, insert_registration
from tests.support import Db

GEOJSON = "application/geo+json"
# Points whose distance lies within this of the radius may fall either way (float rounding); none should exist.
EDGE_M = 0.01


def follow(
    geo: httpx.Client, first: httpx.Response, headers: dict[str, str], *, body: Any = None
) -> list[dict]:
    """Every Feature of every page, following `next` links."""
    features: list[dict] = []
    r = first
    while True:
        assert r.status_code == 200, r.text
        page = r.json()
        features += page["features"]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            return features
        r = (
            geo.post(nxt[0], json=body, headers=headers)
            if body is not None
            else geo.get(nxt[0], headers=headers)
        )


def radius_expectation(cams: list[Cam], lon: float, lat: float, r: float) -> tuple[set[str], set[str]]:
    """The ids that must be returned, and those too close to the edge to insist on either way."""
    must, edge = set(), set()
    for c in cams:
        d = c.distance(lon, lat)
        if d < r - EDGE_M:
            must.add(str(c.id))
        elif d <= r + EDGE_M:
            edge.add(str(c.id))
    return must, edge


CENTERS = [(-73.985, 40.74), (-73.96, 40.72), (-74.01, 40.71), (-73.945, 40.78), (-73.97, 40.755)]


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("radius", [250.0, 900.0, 2000.0])
def test_radius_returns_exactly_the_visible_cameras_within_the_geodesic_radius_nearest_first(
    geo: httpx.Client, auth: Token, registry_data: Registry, center: tuple[float, float], radius: float
) -> None:
    lon, lat = center
    h = auth("investigator", registry_data.x.slug)
    r = geo.get(
        "/v1/cameras/radius", params={"lon": lon, "lat": lat, "radius_m": radius, "limit": 1000}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == GEOJSON
    body = r.json()
    got = [f["id"] for f in body["features"]]
    must, edge = radius_expectation(registry_data.visible(registry_data.x), lon, lat, radius)
    assert must <= set(got) <= must | edge
    assert body["numberReturned"] == len(got) and body["numberMatched"] == len(got)
    by_id = {str(c.id): c for c in registry_data.cams}
    true_d = [by_id[i].distance(lon, lat) for i in got]
    assert true_d == sorted(true_d)
    for f, d in zip(body["features"], true_d, strict=True):
        assert f["properties"]["distance_m"] == pytest.approx(d, abs=0.02)
        c = by_id[f["id"]]
        fwd = GEOD.inv(lon, lat, c.lon, c.lat)[0] % 360
        assert abs((f["properties"]["bearing_deg"] - fwd + 180) % 360 - 180) <= 0.051
        assert f["geometry"]["coordinates"] == pytest.approx([c.lon, c.lat], abs=1e-7)


def test_radius_pages_follow_a_distance_cursor_without_gaps_or_repeats(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    h = auth("cad", registry_data.x.slug)
    params = {"lon": -73.97, "lat": 40.74, "radius_m": 2000}
    whole = geo.get("/v1/cameras/radius", params={**params, "limit": 1000}, headers=h).json()["features"]
    assert len(whole) > 20
    first = geo.get("/v1/cameras/radius", params={**params, "limit": 7}, headers=h)
    assert "numberMatched" not in first.json()
    paged = follow(geo, first, h)
    assert [f["id"] for f in paged] == [f["id"] for f in whole]
    counted = geo.get("/v1/cameras/radius", params={**params, "limit": 7, "count": "true"}, headers=h).json()
    assert counted["numberMatched"] == len(whole) and counted["numberReturned"] == 7


def test_a_radius_over_the_agencys_cap_is_refused_with_the_cap_to_word_it(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    """The cap is the agency's own (2,000 m here): a client can say it in its reader's language from the code."""
    h = auth("cad", registry_data.x.slug)
    r = geo.get("/v1/cameras/radius", params={"lon": -73.97, "lat": 40.74, "radius_m": 2001}, headers=h)
    assert r.status_code == 400, r.text
    [member] = r.json()["errors"]
    assert (member["pointer"], member["code"], member["params"]) == (
        "/query/radius_m",
        "less_than_equal",
        {"le": 2000},
    )


@pytest.mark.parametrize("center", [*CENTERS, (179.995, -16.8), (-179.99, -16.9)])
@pytest.mark.parametrize("k", [1, 5, 25])
def test_nearest_k_is_in_true_geodesic_order(
    geo: httpx.Client, auth: Token, registry_data: Registry, center: tuple[float, float], k: int
) -> None:
    lon, lat = center
    agency = registry_data.z if lon > 179 or lon < -179 else registry_data.x
    h = auth("cad", agency.slug)
    r = geo.get("/v1/cameras/nearest", params={"lon": lon, "lat": lat, "k": k}, headers=h)
    assert r.status_code == 200, r.text
    got = [f["id"] for f in r.json()["features"]]
    ranked = sorted(registry_data.visible(agency), key=lambda c: c.distance(lon, lat))
    assert got == [str(c.id) for c in ranked[:k]]


def test_nearest_k_crosses_the_antimeridian(geo: httpx.Client, auth: Token, registry_data: Registry) -> None:
    lon, lat = 179.999, -16.8
    h = auth("cad", registry_data.z.slug)
    got = geo.get("/v1/cameras/nearest", params={"lon": lon, "lat": lat, "k": 30}, headers=h).json()[
        "features"
    ]
    lons = [f["geometry"]["coordinates"][0] for f in got]
    assert any(v < 0 for v in lons) and any(v > 0 for v in lons)


def test_nearest_k_is_exact_next_to_a_pole(geo: httpx.Client, auth: Token, db: Db, slug: str) -> None:
    """Around a pole the index's planar order (degrees of longitude) is far from the true one and no longitude
    box holds the circle: the search's box becomes the band of latitudes, and the answer stays exact."""
    ring = [[-180.0, 89.9], [180.0, 89.9], [180.0, 90.0], [-180.0, 90.0], [-180.0, 89.9]]
    agency = insert_agency(db, slug, {"type": "Polygon", "coordinates": [ring]})
    rng = random.Random(7)
    cams = []
    for _ in range(40):
        lon, lat = rng.uniform(-179.9, 179.9), rng.uniform(89.92, 89.999)
        rid, _ = insert_registration(db, agency, lon, lat)
        cam = Cam(uuid.uuid4(), rid, lon, lat, {agency.id}, "residential", "outdoor", "never", 30)
        insert_camera(db, cam)
        cams.append(cam)
    lon, lat = 10.0, 89.97
    r = geo.get("/v1/cameras/nearest", params={"lon": lon, "lat": lat, "k": 7}, headers=auth("cad", slug))
    assert r.status_code == 200, r.text
    expected = [str(c.id) for c in sorted(cams, key=lambda c: c.distance(lon, lat))[:7]]
    assert [f["id"] for f in r.json()["features"]] == expected


def test_nearest_k_respects_the_maximum_distance(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    lon, lat, limit = -73.985, 40.74, 600.0
    h = auth("cad", registry_data.x.slug)
    params = {"lon": lon, "lat": lat, "k": 500, "max_distance_m": limit}
    got = [f["id"] for f in geo.get("/v1/cameras/nearest", params=params, headers=h).json()["features"]]
    must, edge = radius_expectation(registry_data.visible(registry_data.x), lon, lat, limit)
    assert must <= set(got) <= must | edge


def test_bbox_returns_exactly_the_visible_cameras_inside(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    w, s, e, n = -73.99, 40.71, -73.95, 40.76
    h = auth("investigator", registry_data.x.slug)
    first = geo.get("/v1/cameras/bbox", params={"bbox": f"{w},{s},{e},{n}", "limit": 9}, headers=h)
    got = follow(geo, first, h)
    expected = {
        str(c.id)
        for c in registry_data.visible(registry_data.x, lambda c: w <= c.lon <= e and s <= c.lat <= n)
    }
    ids = [f["id"] for f in got]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected and len(expected) > 15
    assert ids == sorted(ids)


def test_bbox_prev_link_returns_the_page_before(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    h = auth("investigator", registry_data.x.slug)
    params = {"bbox": "-74.05,40.67,-73.90,40.81", "limit": "5"}
    p1 = geo.get("/v1/cameras/bbox", params=params, headers=h).json()
    assert not [lk for lk in p1["links"] if lk["rel"] == "prev"]
    p2 = geo.get(next(lk["href"] for lk in p1["links"] if lk["rel"] == "next"), headers=h).json()
    back = geo.get(next(lk["href"] for lk in p2["links"] if lk["rel"] == "prev"), headers=h).json()
    assert [f["id"] for f in back["features"]] == [f["id"] for f in p1["features"]]
    assert not [lk for lk in back["links"] if lk["rel"] == "prev"]


def test_bbox_across_the_antimeridian_is_split_not_refused(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    w, s, e, n = 179.7, -17.3, -179.3, -16.2
    h = auth("investigator", registry_data.z.slug)
    r = geo.get("/v1/cameras/bbox", params={"bbox": f"{w},{s},{e},{n}", "limit": 1000}, headers=h)
    assert r.status_code == 200, r.text
    got = {f["id"] for f in r.json()["features"]}
    expected = {
        str(c.id)
        for c in registry_data.visible(
            registry_data.z, lambda c: (c.lon >= w or c.lon <= e) and s <= c.lat <= n
        )
    }
    assert got == expected
    lons = [c.lon for c in registry_data.cams if str(c.id) in expected]
    assert min(lons) < 0 < max(lons)


def _ring(points: list[tuple[float, float]]) -> list[list[float]]:
    return [list(p) for p in points] + [list(points[0])]


@pytest.mark.parametrize("clockwise", [False, True])
def test_polygon_returns_exactly_the_visible_cameras_inside_either_winding(
    geo: httpx.Client, auth: Token, registry_data: Registry, clockwise: bool
) -> None:
    pts = [(-73.99, 40.72), (-73.955, 40.725), (-73.965, 40.75), (-73.985, 40.748)]
    if clockwise:
        pts.reverse()
    area = {"type": "Polygon", "coordinates": [_ring(pts)]}
    poly = shape(area)
    h = auth("investigator", registry_data.x.slug)
    first = geo.post("/v1/cameras/area", params={"limit": 6}, json={"area": area}, headers=h)
    got = [f["id"] for f in follow(geo, first, h, body={"area": area})]
    expected = {
        str(c.id)
        for c in registry_data.visible(registry_data.x, lambda c: poly.contains(SPoint(c.lon, c.lat)))
    }
    assert set(got) == expected and len(got) == len(expected) and len(expected) > 5


def test_a_polygon_with_altitudes_finds_what_the_same_polygon_without_them_finds(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    """GeoJSON allows a third number (an altitude) in every position: a drawing tool or a GIS export may send one.
    It is dropped, never a 500."""
    pts = [(-73.99, 40.72), (-73.955, 40.725), (-73.965, 40.75), (-73.985, 40.748)]
    flat = {"type": "Polygon", "coordinates": [_ring(pts)]}
    high = {"type": "Polygon", "coordinates": [[[x, y, 12.5] for x, y in _ring(pts)]]}
    multi = {"type": "MultiPolygon", "coordinates": [high["coordinates"]]}
    h = auth("investigator", registry_data.x.slug)
    answers = []
    for area in (flat, high, multi):
        r = geo.post("/v1/cameras/area", params={"limit": 1000}, json={"area": area}, headers=h)
        assert r.status_code == 200, r.text
        answers.append(sorted(f["id"] for f in r.json()["features"]))
    assert answers[0] == answers[1] == answers[2] and len(answers[0]) > 5


def test_multipolygon_with_a_hole_and_a_point_gives_distances(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    outer = _ring([(-73.99, 40.70), (-73.96, 40.70), (-73.96, 40.73), (-73.99, 40.73)])
    hole = _ring([(-73.98, 40.71), (-73.97, 40.71), (-73.97, 40.72), (-73.98, 40.72)])
    other = _ring([(-73.97, 40.75), (-73.96, 40.75), (-73.96, 40.76), (-73.97, 40.76)])
    area = {"type": "MultiPolygon", "coordinates": [[outer, hole], [other]]}
    shp = shape(area)
    h = auth("investigator", registry_data.x.slug)
    body = {"area": area, "point": {"type": "Point", "coordinates": [-73.975, 40.715]}}
    r = geo.post("/v1/cameras/area", json=body, params={"limit": 1000, "count": "true"}, headers=h)
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    assert r.json()["numberMatched"] == len(feats)
    expected = {
        str(c.id)
        for c in registry_data.visible(registry_data.x, lambda c: shp.contains(SPoint(c.lon, c.lat)))
    }
    assert {f["id"] for f in feats} == expected
    by_id = {str(c.id): c for c in registry_data.cams}
    for f in feats:
        assert f["properties"]["distance_m"] == pytest.approx(
            by_id[f["id"]].distance(-73.975, 40.715), abs=0.02
        )


def test_polygon_crossing_the_antimeridian_as_a_multipolygon(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    east = _ring([(179.9, -16.9), (180.0, -16.9), (180.0, -16.7), (179.9, -16.7)])
    west = _ring([(-180.0, -16.9), (-179.9, -16.9), (-179.9, -16.7), (-180.0, -16.7)])
    area = {"type": "MultiPolygon", "coordinates": [[east], [west]]}
    shp = shape(area)
    h = auth("investigator", registry_data.z.slug)
    r = geo.post("/v1/cameras/area", json={"area": area}, params={"limit": 1000}, headers=h)
    assert r.status_code == 200, r.text
    expected = {
        str(c.id)
        for c in registry_data.visible(
            registry_data.z, lambda c: shapely.intersects(shp, SPoint(c.lon, c.lat))
        )
    }
    assert {f["id"] for f in r.json()["features"]} == expected


def test_state_plane_query_returns_the_same_cameras_as_its_wgs84_twin(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    lon, lat = -73.9857, 40.7484
    x, y = Transformer.from_crs(4326, 2263, always_xy=True).transform(lon, lat)
    h = auth("cad", registry_data.x.slug)
    wgs = geo.get("/v1/cameras/radius", params={"lon": lon, "lat": lat, "radius_m": 1500}, headers=h).json()
    assert len(wgs["features"]) > 5
    for crs in ("2263", "EPSG:2263", "http://www.opengis.net/def/crs/EPSG/0/2263"):
        sp = geo.get("/v1/cameras/radius", params={"x": x, "y": y, "crs": crs, "radius_m": 1500}, headers=h)
        assert sp.status_code == 200, sp.text
        assert [f["id"] for f in sp.json()["features"]] == [f["id"] for f in wgs["features"]]
    near_wgs = geo.get("/v1/cameras/nearest", params={"lon": lon, "lat": lat, "k": 12}, headers=h).json()
    near_sp = geo.get(
        "/v1/cameras/nearest", params={"x": x, "y": y, "crs": "EPSG:2263", "k": 12}, headers=h
    ).json()
    assert [f["id"] for f in near_sp["features"]] == [f["id"] for f in near_wgs["features"]]


def test_bbox_in_state_plane_covers_its_wgs84_footprint(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    to_sp = Transformer.from_crs(4326, 2263, always_xy=True)
    x0, y0 = to_sp.transform(-73.99, 40.72)
    x1, y1 = to_sp.transform(-73.96, 40.75)
    h = auth("investigator", registry_data.x.slug)
    r = geo.get(
        "/v1/cameras/bbox",
        params={"bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": "EPSG:2263", "limit": 1000},
        headers=h,
    )
    assert r.status_code == 200, r.text
    w, s, e, n = Transformer.from_crs(2263, 4326, always_xy=True).transform_bounds(
        x0, y0, x1, y1, densify_pts=21
    )
    expected = {
        str(c.id)
        for c in registry_data.visible(registry_data.x, lambda c: w <= c.lon <= e and s <= c.lat <= n)
    }
    assert {f["id"] for f in r.json()["features"]} == expected


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"owner_kind": "business,school"}, lambda c: c.owner_kind in ("business", "school")),
        ({"placement": "indoor"}, lambda c: c.placement == "indoor"),
        ({"live": "true"}, lambda c: c.live_mode != "never"),
        ({"live_mode": "emergency"}, lambda c: c.live_mode == "emergency"),
        (
            {"placement": "outdoor", "owner_kind": "residential", "live": "false"},
            lambda c: c.placement == "outdoor" and c.owner_kind == "residential" and c.live_mode == "never",
        ),
    ],
)
def test_filters_keep_exactly_the_matching_cameras(
    geo: httpx.Client, auth: Token, registry_data: Registry, params: dict[str, str], keep: Any
) -> None:
    lon, lat, radius = -73.975, 40.735, 2000.0
    h = auth("investigator", registry_data.x.slug)
    r = geo.get(
        "/v1/cameras/radius",
        params={"lon": lon, "lat": lat, "radius_m": radius, "limit": 1000, **params},
        headers=h,
    )
    assert r.status_code == 200, r.text
    must, edge = radius_expectation(registry_data.visible(registry_data.x, keep), lon, lat, radius)
    got = {f["id"] for f in r.json()["features"]}
    assert must <= got <= must | edge and must


def test_a_large_page_is_streamed_as_one_valid_collection(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    h = auth("investigator", registry_data.x.slug)
    r = geo.get("/v1/cameras/bbox", params={"bbox": "-74.05,40.67,-73.90,40.81", "limit": 5000}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == GEOJSON
    assert "content-length" not in r.headers  # chunked: it was streamed
    body = r.json()
    expected = {str(c.id) for c in registry_data.visible(registry_data.x)}
    assert {f["id"] for f in body["features"]} == expected
    assert body["numberReturned"] == len(expected) == body["numberMatched"]
    assert math.isfinite(body["features"][0]["geometry"]["coordinates"][0])
