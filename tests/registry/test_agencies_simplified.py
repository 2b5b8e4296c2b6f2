"""The agencies' jurisdictions sized for a map (`simplify`, in metres): far fewer bytes, still valid and non-empty
polygons covering nearly the same ground, holes kept, a tiny jurisdiction still drawn; which programs cover a point
is still decided on the jurisdictions as stored."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import httpx
import orjson
from shapely.geometry import Point, shape

from tests.conftest import Token
from tests.registry.conftest import NewAgency
from tests.support import Db

PROBLEM = "application/problem+json"


def boundary(lon: float, lat: float, radius: float, vertices: int) -> list[list[float]]:
    """A ring drawn as a surveyed one is: thousands of vertices, each to seven decimals, wavering ~200 m."""
    ring = [
        [
            round(lon + (radius + 0.002 * math.sin(i * 7.3)) * math.cos(2 * math.pi * i / vertices), 7),
            round(lat + (radius + 0.002 * math.sin(i * 7.3)) * math.sin(2 * math.pi * i / vertices), 7),
        ]
        for i in range(vertices)
    ]
    return [*ring, ring[0]]


def publish(registry: httpx.Client, auth: Token, prefix: str, jurisdiction: dict[str, Any]) -> str:
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    body = {"slug": slug, "name": f"Program {slug}", "jurisdiction": jurisdiction}
    r = registry.post("/v1/agencies", json=body, headers=auth("agency_admin", slug))
    assert r.status_code == 201, r.text
    return slug


def ours(answer: httpx.Response, slugs: list[str]) -> dict[str, dict[str, Any]]:
    """The answer's features of the test's own agencies (the list holds other tests' too), by slug."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/geo+json"
    features = {f["properties"]["slug"]: f for f in answer.json()["features"]}
    return {s: features[s] for s in slugs}


def decimals(geometry: dict[str, Any]) -> int:
    """The most decimals any coordinate of a (Multi)Polygon is written with."""
    coords = [c for poly in geometry["coordinates"] for ring in poly for pos in ring for c in pos]
    return max(len(repr(c).split(".")[1]) if "." in repr(c) else 0 for c in coords)


def test_a_statewide_list_simplified_for_a_map_is_far_smaller_valid_and_covers_nearly_the_same_ground(
    registry: httpx.Client, auth: Token, db: Db
) -> None:
    # 36 counties of 3,000 vertices, ~40 km across, on a 6 x 6 grid: a state's programs.
    made = [
        publish(
            registry,
            auth,
            "t-state",
            {
                "type": "Polygon",
                "coordinates": [boundary(-101 + 0.45 * (i % 6), 38 + 0.45 * (i // 6), 0.2, 3000)],
            },
        )
        for i in range(36)
    ]
    full = ours(registry.get("/v1/agencies", params={"limit": 1000}), made)
    # A pixel of a 360 px map showing the whole state (~2.7 degrees) is ~800 m.
    simple = ours(registry.get("/v1/agencies", params={"limit": 1000, "simplify": 500}), made)

    size = sum(len(orjson.dumps(f)) for f in full.values())
    small = sum(len(orjson.dumps(f)) for f in simple.values())
    assert small * 50 < size, (small, size)
    for slug in made:
        stored, sent = full[slug], simple[slug]
        # Only the geometry differs.
        assert (sent["id"], sent["properties"]) == (stored["id"], stored["properties"])
        assert sent["geometry"]["type"] == "MultiPolygon"
        drawn, exact = shape(sent["geometry"]), shape(stored["geometry"])
        assert drawn.is_valid and not drawn.is_empty, slug
        assert db.fetchval("SELECT ST_IsValid(ST_GeomFromGeoJSON($1))", json.dumps(sent["geometry"])), slug
        # Nearly the same ground: what the simplified boundary gains or loses is a few percent of the area.
        assert drawn.symmetric_difference(exact).area < 0.05 * exact.area, slug
        # Written to what the tolerance makes meaningful (500 m: four decimals, 11 m), the stored one to seven.
        assert decimals(sent["geometry"]) <= 4 < decimals(stored["geometry"])
        # The right-hand rule, as every jurisdiction is written: the exterior ring counter-clockwise.
        assert all(poly.exterior.is_ccw for poly in drawn.geoms)


def test_one_agency_and_the_covering_ones_are_simplified_the_same_way(
    registry: httpx.Client, auth: Token
) -> None:
    slug = publish(
        registry, auth, "t-one", {"type": "Polygon", "coordinates": [boundary(-96, 31, 0.2, 3000)]}
    )
    listed = ours(registry.get("/v1/agencies", params={"limit": 1000, "simplify": 200}), [slug])[slug]
    one = registry.get(f"/v1/agencies/{slug}", params={"simplify": 200})
    assert one.status_code == 200, one.text
    assert one.json()["geometry"] == listed["geometry"]
    assert len(one.content) * 3 < len(registry.get(f"/v1/agencies/{slug}").content)
    covering = registry.get("/v1/agencies/covering", params={"lon": -96, "lat": 31, "simplify": 200})
    assert ours(covering, [slug])[slug]["geometry"] == listed["geometry"]
    # skipGeometry wins: no geometry at all.
    names = registry.get(f"/v1/agencies/{slug}", params={"simplify": 200, "skipGeometry": "true"})
    assert names.status_code == 200 and names.json()["geometry"] is None


def test_a_tiny_jurisdiction_stays_drawn_and_a_hole_stays_a_hole_at_any_tolerance(
    registry: httpx.Client, auth: Token, db: Db
) -> None:
    # A 20 m square (smaller than a tenth of the coarsest tolerance's grid), and a county with a city cut out.
    tiny_ring = [[-90.0, 35.0], [-89.9998, 35.0], [-89.9998, 35.0002], [-90.0, 35.0002], [-90.0, 35.0]]
    tiny = publish(registry, auth, "t-tiny", {"type": "Polygon", "coordinates": [tiny_ring]})
    hole = [list(reversed(boundary(-88, 36, 0.05, 500)))]
    county = publish(
        registry, auth, "t-donut", {"type": "Polygon", "coordinates": [boundary(-88, 36, 0.2, 3000), *hole]}
    )
    stored = ours(registry.get("/v1/agencies", params={"limit": 1000}), [tiny, county])
    for tolerance in (1, 100, 5000, 100_000):
        sent = ours(
            registry.get("/v1/agencies", params={"limit": 1000, "simplify": tolerance}), [tiny, county]
        )
        for slug in (tiny, county):
            drawn = shape(sent[slug]["geometry"])
            assert drawn.is_valid and not drawn.is_empty and drawn.area > 0, (slug, tolerance)
            assert db.fetchval(
                "SELECT ST_IsValid(ST_GeomFromGeoJSON($1))", json.dumps(sent[slug]["geometry"])
            ), (slug, tolerance)
        assert shape(sent[tiny]["geometry"]).equals(shape(stored[tiny]["geometry"])), tolerance
        (poly,) = shape(sent[county]["geometry"]).geoms
        assert len(poly.interiors) == 1, tolerance
        # The city in the hole is not drawn as covered.
        assert not poly.covers(Point(-88, 36)), tolerance


def test_which_programs_cover_a_point_is_decided_on_the_stored_jurisdiction_not_the_simplified_one(
    registry: httpx.Client, auth: Token
) -> None:
    # A square with a narrow spit (30 m wide, 450 m long) running east: a boundary simplified to 1 km leaves it out.
    w, s = -84.0, 33.0
    ring = [[w, s], [w + 0.1, s], [w + 0.1, s + 0.05], [w + 0.105, s + 0.05], [w + 0.105, s + 0.0503]]
    ring += [[w + 0.1, s + 0.0503], [w + 0.1, s + 0.1], [w, s + 0.1], [w, s]]
    slug = publish(registry, auth, "t-spit", {"type": "Polygon", "coordinates": [ring]})
    on_the_spit = (w + 0.104, s + 0.05015)

    answer = registry.get(
        "/v1/agencies/covering",
        params={"lon": on_the_spit[0], "lat": on_the_spit[1], "simplify": 1000},
    )
    feature = ours(answer, [slug])[slug]
    # The point is covered, though the boundary sent for drawing (simplified to 1 km) does not reach it.
    assert not shape(feature["geometry"]).covers(Point(*on_the_spit))
    # And one just beside the spit is not.
    beside = registry.get(
        "/v1/agencies/covering", params={"lon": on_the_spit[0], "lat": s + 0.0507, "simplify": 1000}
    )
    assert beside.status_code == 200
    assert slug not in {f["properties"]["slug"] for f in beside.json()["features"]}


def test_a_bad_simplify_is_a_400_problem(registry: httpx.Client, new_agency: NewAgency) -> None:
    agency = new_agency()
    lon, lat = agency.centre
    bad = ["0", "-1", "100001", "1.5", "abc", "", "nan", "inf", "1e999", "%00", "500&simplify=600"]
    for path, query in [
        ("/v1/agencies", ""),
        (f"/v1/agencies/{agency.slug}", ""),
        ("/v1/agencies/covering", f"lon={lon}&lat={lat}&"),
    ]:
        for value in bad:
            r = registry.get(f"{path}?{query}simplify={value}")
            assert r.status_code == 400, (path, value, r.status_code, r.text)
            assert r.headers["content-type"] == PROBLEM, (path, value)
            assert r.json()["status"] == 400
    # The bounds themselves are taken.
    for value in ("1", "100000"):
        r = registry.get(f"/v1/agencies/{agency.slug}?simplify={value}")
        assert r.status_code == 200, (value, r.text)
        assert shape(r.json()["geometry"]).is_valid
