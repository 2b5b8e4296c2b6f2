"""OGC API – Features read by a real client (OWSLib), the standard's paging and negotiation; bad input of every kind
is a 4xx problem, never a 5xx; and geo_query's database login cannot write."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import asyncpg
import httpx
import pytest
from owslib.ogcapi.features import Features

from shared.db import server_settings
from shared.settings import Settings
from tests.conftest import Suite, Token
from tests.geo_query.conftest import Registry

PROBLEM = "application/problem+json"


def test_owslib_reads_the_collection_with_a_bearer_token(
    suite: Suite, auth: Token, registry_data: Registry
) -> None:
    api = Features(suite.geo.url + "/v1/ogc/", headers=auth("investigator", registry_data.x.slug))
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    assert api.feature_collections() == ["cameras"]
    info = api.collection("cameras")
    w, s, e, n = info["extent"]["spatial"]["bbox"][0]
    assert (w, s, e, n) == pytest.approx((-74.03, 40.69, -73.93, 40.79))
    items = api.collection_items("cameras", bbox=[-73.99, 40.72, -73.96, 40.75], limit=1000)
    expected = {
        str(c.id)
        for c in registry_data.visible(
            registry_data.x, lambda c: -73.99 <= c.lon <= -73.96 and 40.72 <= c.lat <= 40.75
        )
    }
    assert {f["id"] for f in items["features"]} == expected
    one = api.collection_item("cameras", items["features"][0]["id"])
    assert one["id"] == items["features"][0]["id"] and one["type"] == "Feature"
    # OWSLib's api() looks for an OpenAPI 3.0 description only; this one is 3.1 and says so.
    desc = [link for link in api.links if link["rel"] == "service-desc"]
    assert [link["type"] for link in desc] == ["application/vnd.oai.openapi+json;version=3.1"]
    document = httpx.get(desc[0]["href"], headers=auth("investigator", registry_data.x.slug)).json()
    assert document["openapi"].startswith("3.1.")


def test_ogc_landing_and_items_follow_part_1_core(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    h = auth("investigator", registry_data.x.slug)
    landing = geo.get("/v1/ogc", headers=h).json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    expected = [str(c.id) for c in sorted(registry_data.visible(registry_data.x), key=lambda c: str(c.id))]
    first = geo.get("/v1/ogc/collections/cameras/items", params={"limit": 10}, headers=h)
    assert first.headers["content-type"] == "application/geo+json"
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert body["numberReturned"] == 10 and body["timeStamp"].endswith("Z") and "numberMatched" not in body
    ids = [f["id"] for f in body["features"]]
    while True:
        nxt = [lk["href"] for lk in body["links"] if lk["rel"] == "next"]
        if not nxt:
            break
        body = geo.get(nxt[0], headers=h).json()
        ids += [f["id"] for f in body["features"]]
    assert ids == expected
    clamped = geo.get("/v1/ogc/collections/cameras/items", params={"limit": 10**9}, headers=h)
    assert clamped.status_code == 200 and clamped.json()["numberReturned"] == len(expected)
    assert clamped.json()["numberMatched"] == len(expected)


def test_ogc_item_of_another_agency_is_not_found(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    y_only = next(c for c in registry_data.visible(registry_data.y) if c.visible_to == {registry_data.y.id})
    r = geo.get(
        f"/v1/ogc/collections/cameras/items/{y_only.id}", headers=auth("investigator", registry_data.x.slug)
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    ok = geo.get(
        f"/v1/ogc/collections/cameras/items/{y_only.id}", headers=auth("investigator", registry_data.y.slug)
    )
    assert ok.status_code == 200 and ok.json()["id"] == str(y_only.id)


def test_ogc_content_negotiation(geo: httpx.Client, auth: Token, registry_data: Registry) -> None:
    h = auth("investigator", registry_data.x.slug)
    assert geo.get("/v1/ogc/conformance", params={"f": "json"}, headers=h).status_code == 200
    assert geo.get("/v1/ogc/conformance", headers={**h, "Accept": "application/json"}).status_code == 200
    assert geo.get("/v1/ogc/conformance", headers={**h, "Accept": "text/html,*/*;q=0.8"}).status_code == 200
    assert geo.get("/v1/ogc/conformance", headers={**h, "Accept": "text/html"}).status_code == 406
    assert geo.get("/v1/ogc/conformance", params={"f": "html"}, headers=h).status_code == 400
    assert geo.get("/v1/ogc/conformance", headers={}).status_code == 401


SQLI = "1; DROP TABLE registry.cameras; --"
OPEN_RING = {
    "type": "Polygon",
    "coordinates": [[[-73.99, 40.72], [-73.96, 40.72], [-73.96, 40.75], [-73.99, 40.75]]],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[-73.99, 40.72], [-73.96, 40.75], [-73.96, 40.72], [-73.99, 40.75], [-73.99, 40.72]]],
}
HUGE = {
    "type": "Polygon",
    "coordinates": [[[-74.5, 40.5], [-73.5, 40.5], [-73.5, 41.0], [-74.5, 41.0], [-74.5, 40.5]]],
}
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[-73.99, 40.72], [-73.98, 40.72], [-73.98, 40.73], [-73.99, 40.72]]],
}
R = {"lon": "-73.975", "lat": "40.74", "radius_m": "300"}

# An invalid query parameter is a 400 on REST and OGC routes alike (OGC API – Features requires it).
BAD_GETS: list[tuple[str, dict[str, str], int]] = [
    ("/v1/cameras/radius", {**R, "lon": "nan"}, 400),
    ("/v1/cameras/radius", {**R, "lat": "inf"}, 400),
    ("/v1/cameras/radius", {**R, "lat": "90.5"}, 400),
    ("/v1/cameras/radius", {**R, "lon": "180.01"}, 400),
    ("/v1/cameras/radius", {**R, "radius_m": "inf"}, 400),
    ("/v1/cameras/radius", {**R, "radius_m": "1e12"}, 400),
    ("/v1/cameras/radius", {**R, "radius_m": "-1"}, 400),
    ("/v1/cameras/radius", {**R, "radius_m": "5000"}, 400),  # over the agency's 2,000 m
    ("/v1/cameras/radius", {"lat": "40.74", "radius_m": "300"}, 400),
    ("/v1/cameras/radius", {**R, "lon": SQLI}, 400),
    ("/v1/cameras/radius", {**R, "case_number": "x' OR 1=1 --"}, 400),
    ("/v1/cameras/radius", {**R, "owner_kind": "business'; DROP TABLE x; --"}, 400),
    ("/v1/cameras/radius", {**R, "placement": "attic"}, 400),
    ("/v1/cameras/radius", {**R, "incident_at": "yesterday"}, 400),
    ("/v1/cameras/radius", {**R, "incident_at": "2026-01-01T10:00:00"}, 400),
    ("/v1/cameras/radius", {**R, "incident_at": "2999-01-01T10:00:00Z"}, 400),
    ("/v1/cameras/radius", {**R, "only_available": "true"}, 400),
    ("/v1/cameras/radius", {**R, "cursor": "not-a-cursor"}, 400),
    ("/v1/cameras/radius", {**R, "cursor": "eyJkIjoiTmFOIiwiaWQiOiJ4In0"}, 400),
    ("/v1/cameras/radius", {**R, "limit": "0"}, 400),
    ("/v1/cameras/radius", {**R, "radiusm": "300"}, 400),  # unknown (misspelt) parameter
    ("/v1/cameras/radius", {"x": "988217", "y": "211790", "radius_m": "300"}, 400),
    ("/v1/cameras/radius", {"x": "988217", "y": "211790", "crs": "EPSG:999999", "radius_m": "300"}, 400),
    ("/v1/cameras/radius", {"x": "988217", "y": "211790", "crs": "+proj=longlat", "radius_m": "300"}, 400),
    ("/v1/cameras/radius", {"x": "1e300", "y": "1e300", "crs": "2263", "radius_m": "300"}, 400),
    ("/v1/cameras/radius", {**R, "x": "1", "y": "2", "crs": "2263"}, 400),
    ("/v1/cameras/nearest", {"lon": "-73.975", "lat": "40.74", "k": "0"}, 400),
    ("/v1/cameras/nearest", {"lon": "-73.975", "lat": "40.74", "k": "100000"}, 400),
    ("/v1/cameras/nearest", {"lon": "-73.975", "lat": "40.74", "max_distance_m": "nan"}, 400),
    ("/v1/cameras/bbox", {"bbox": "1,2,3"}, 400),
    ("/v1/cameras/bbox", {"bbox": "a,b,c,d"}, 400),
    ("/v1/cameras/bbox", {"bbox": "0,91,1,92"}, 400),
    ("/v1/cameras/bbox", {"bbox": "0,10,1,5"}, 400),
    ("/v1/cameras/bbox", {"bbox": "nan,0,1,1"}, 400),
    ("/v1/cameras/bbox", {"bbox": "-181,0,1,1"}, 400),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.72,-73.96,40.75", "facing": "true"}, 400),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.72,-73.96,40.75", "point": "1,2,3"}, 400),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.72,-73.96,40.75", "bbox-crs": "EPSG:nope"}, 400),
    ("/v1/ogc/collections/cameras/items", {"limit": "abc"}, 400),
    ("/v1/ogc/collections/cameras/items", {"limit": "-3"}, 400),
    ("/v1/ogc/collections/cameras/items", {"bbox": "1,2"}, 400),
    ("/v1/ogc/collections/cameras/items", {"cursor": "%%%"}, 400),
    ("/v1/ogc/collections/cameras/items", {"sortby": "id"}, 400),
    ("/v1/ogc/collections/nothing/items", {}, 404),
    ("/v1/ogc/collections/cameras/items/not-a-uuid", {}, 404),
    ("/v1/ogc/collections/cameras/items/00000000-0000-4000-8000-00000000dead", {}, 404),
]


@pytest.mark.parametrize(("path", "params", "status"), BAD_GETS)
def test_bad_query_is_a_4xx_problem(
    geo: httpx.Client, auth: Token, registry_data: Registry, path: str, params: dict[str, str], status: int
) -> None:
    r = geo.get(path, params=params, headers=auth("investigator", registry_data.x.slug))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["detail"]


BAD_POSTS: list[tuple[Any, int]] = [
    ({"area": OPEN_RING}, 422),
    ({"area": BOWTIE}, 422),
    ({"area": HUGE}, 422),
    ({"area": SQUARE, "colour": "red"}, 422),
    ({"area": {"type": "Point", "coordinates": [-73.98, 40.72]}}, 422),
    (
        {"area": {**SQUARE, "coordinates": [[[200, 40.72], [-73.98, 40.72], [-73.98, 40.73], [200, 40.72]]]}},
        422,
    ),
    (
        {
            "area": {
                **SQUARE,
                "coordinates": [[["NaN", 40.72], [-73.98, 40.72], [-73.98, 40.73], ["NaN", 40.72]]],
            }
        },
        422,
    ),
    (
        {"area": {"type": "Polygon", "coordinates": [[[179, 1], [-179, 1], [-179, 2], [179, 2], [179, 1]]]}},
        422,
    ),
    ({}, 422),
    (b"{not json", 400),
]


@pytest.mark.parametrize(("body", "status"), BAD_POSTS)
def test_bad_polygon_is_a_4xx_problem(
    geo: httpx.Client, auth: Token, registry_data: Registry, body: Any, status: int
) -> None:
    h = {**auth("investigator", registry_data.x.slug), "content-type": "application/json"}
    r = (
        geo.post("/v1/cameras/area", content=body, headers=h)
        if isinstance(body, bytes)
        else geo.post("/v1/cameras/area", json=body, headers=h)
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM


def test_numbers_that_json_cannot_carry_are_refused(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    raw = b'{"area": {"type": "Polygon", "coordinates": [[[NaN, 1], [1, 1], [1, 2], [NaN, 1]]]}}'
    h = {**auth("investigator", registry_data.x.slug), "content-type": "application/json"}
    r = geo.post("/v1/cameras/area", content=raw, headers=h)
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == PROBLEM
    assert math.isnan(float("nan"))


def test_the_geo_login_cannot_write(
    geo_database_url: str, database_url: str, registry_data: Registry
) -> None:
    async def go() -> None:
        # Connected the way geo_query connects: a read-only session.
        conn = await asyncpg.connect(
            geo_database_url, server_settings=server_settings(Settings(), "geo_query", read_only=True)
        )
        try:
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                await conn.execute("UPDATE registry.cameras SET label = 'x' WHERE false")
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                await conn.execute(
                    "INSERT INTO registry.agencies (slug, name, jurisdiction) VALUES ('evil', 'e',"
                    " ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))', 4326))"
                )
            assert await conn.fetchval("SELECT count(*) FROM registry.cameras") >= len(registry_data.cams)
            role = await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()
        if (
            geo_database_url.split("@")[0] != database_url.split("@")[0]
        ):  # a login of its own (the local cluster)
            plain = await asyncpg.connect(geo_database_url)
            try:
                for table in ("cameras", "registrations", "agencies"):
                    assert not await plain.fetchval(
                        "SELECT has_table_privilege($1, $2, 'INSERT')", role, f"registry.{table}"
                    )
                with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                    await plain.execute("DELETE FROM registry.cameras WHERE false")
            finally:
                await plain.close()

    asyncio.run(go())


def test_geo_query_reads_through_its_own_login(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Any, geo_database_url: str
) -> None:
    assert geo.get("/readyz").status_code == 200
    geo.get("/v1/ogc/conformance", headers=auth("cad", registry_data.x.slug))
    users = {
        r["usename"]
        for r in db.fetch(
            "SELECT usename FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            "canvass-geo_query",
        )
    }
    expected = geo_database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
    assert users == {expected}


def test_a_refusal_echoes_no_input_back_however_long(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    """A geometry's `type` that is none of those taken is refused without the value sent (not in the reason, the
    detail or the params): the problem stays small and says what is expected, whatever the caller put there."""
    sent = "<img src=x onerror=alert(1)>" + "x" * 300_000
    h = auth("investigator", registry_data.x.slug)
    r = geo.post("/v1/cameras/area", json={"area": {"type": sent, "coordinates": []}}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert len(r.content) < 2_000, len(r.content)
    assert "onerror" not in r.text and "xxxx" not in r.text
    (member,) = r.json()["errors"]
    assert member["pointer"] == "/body/area" and member["code"] == "union_tag_invalid"
    assert "Polygon" in member["reason"] and "MultiPolygon" in member["reason"]
    assert set(member.get("params", {})) <= {"discriminator", "expected_tags"}


def test_a_refused_members_name_is_not_echoed_whole(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    """A member the operation does not take is pointed at by its name cut short, never the whole of it."""
    area = {"type": "Polygon", "coordinates": [[[1, 1], [1.001, 1], [1.001, 1.001], [1, 1]]]}
    h = auth("investigator", registry_data.x.slug)
    r = geo.post("/v1/cameras/area", json={"area": area, "k" * 300_000: 1}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert len(r.content) < 2_000, len(r.content)
    (member,) = r.json()["errors"]
    assert member["code"] == "extra_forbidden" and member["pointer"].startswith("/body/kkkk")
