"""The camera vector tiles, read by a real client (mapbox-vector-tile decodes them): each tile holds exactly the
cameras the agency may see in it (the independent model of the seeded registry), each where it is (within a pixel,
through pyproj), with the map's attributes; one audit record per burst of a block's tiles, appended before any
tile of it is answered and covering the block; the TileJSON document; bad tiles refused with problems."""

from __future__ import annotations

import math
import uuid

import httpx
import mapbox_vector_tile
import orjson
import pytest
from pyproj import Transformer
from shapely.geometry import box, shape

from services.geo_query.tiles import EXTENT, FIELDS, MAX_ZOOM, MIN_ZOOM, tile_bounds
from shared.vocabulary import LIVE_MODES, OWNER_KINDS, PLACEMENTS
from tests.conftest import Token
from tests.geo_query.conftest import AgencyFixture, Cam, Registry
from tests.support import Db

TO_LONLAT = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
HALF = 20037508.342789244  # half the Web Mercator world's width, metres
MVT = "application/vnd.mapbox-vector-tile"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def mercator_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    return -HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size


def decode(tile: bytes) -> list[dict]:
    layers = mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})
    return list(layers["cameras"]["features"]) if "cameras" in layers else []


def expected(reg: Registry, agency: AgencyFixture, z: int, x: int, y: int, margin_px: float) -> set[str]:
    """The cameras the agency may see whose Mercator position lies within the tile grown by `margin_px` pixels."""
    w, s, e, n = mercator_bounds(z, x, y)
    pad = (e - w) / EXTENT * margin_px
    area = box(w - pad, s - pad, e + pad, n + pad)
    out = set()
    for c in reg.visible(agency):
        mx, my = TO_MERCATOR.transform(c.lon, c.lat)
        if area.contains(shape({"type": "Point", "coordinates": [mx, my]})):
            out.add(str(c.id))
    return out


def get_tile(
    geo: httpx.Client, headers: dict[str, str], z: int, x: int, y: int, **params: str
) -> httpx.Response:
    return geo.get(f"/v1/tiles/cameras/{z}/{x}/{y}.mvt", headers=headers, params=params)


def busiest_tiles(reg: Registry, agency: AgencyFixture, z: int) -> list[tuple[int, int]]:
    counts: dict[tuple[int, int], int] = {}
    for c in reg.visible(agency):
        t = tile_of(c.lon, c.lat, z)
        counts[t] = counts.get(t, 0) + 1
    return sorted(counts, key=lambda t: -counts[t])


@pytest.mark.parametrize("z", [12, 14, 16])
def test_a_tile_holds_exactly_the_cameras_the_agency_may_see_each_where_it_is(
    geo: httpx.Client, auth: Token, registry_data: Registry, z: int
) -> None:
    reg = registry_data
    by_id: dict[str, Cam] = {str(c.id): c for c in reg.cams}
    checked = 0
    for agency in (reg.x, reg.y):
        headers = auth("investigator", agency.slug)
        for x, y in busiest_tiles(reg, agency, z)[:3]:
            r = get_tile(geo, headers, z, x, y)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == MVT
            assert r.headers["cache-control"] == "private, no-store"
            features = decode(r.content)
            got = {f["properties"]["id"] for f in features}
            # Inside the tile: in; beyond its 64-pixel buffer: out; a camera in the buffer may be either way
            # only if it sits within a pixel of the buffer's edge (the clip's rounding).
            assert expected(reg, agency, z, x, y, 63) <= got
            assert got <= expected(reg, agency, z, x, y, 65)
            assert got, "a busy tile came back empty"
            w, _, e, n = mercator_bounds(z, x, y)
            pixel = (e - w) / EXTENT
            for f in features:
                cam = by_id[f["properties"]["id"]]
                px, py = f["geometry"]["coordinates"]
                lon, lat = TO_LONLAT.transform(w + px * pixel, n - py * pixel)
                mx, my = TO_MERCATOR.transform(cam.lon, cam.lat)
                assert abs(w + px * pixel - mx) <= pixel and abs(n - py * pixel - my) <= pixel
                assert abs(lon - cam.lon) < 1e-3 and abs(lat - cam.lat) < 1e-3
                props = f["properties"]
                assert props["owner_kind"] == cam.owner_kind
                assert props.get("placement") == cam.placement
                assert props["live_mode"] == cam.live_mode
                assert props.get("direction_deg") == cam.direction_deg
                assert props.get("fov_deg") == cam.fov_deg
                assert set(props) <= set(FIELDS)
                checked += 1
    assert checked


def test_another_agency_and_a_tile_with_nothing_give_an_empty_tile(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    reg = registry_data
    x, y = busiest_tiles(reg, reg.z, 14)[0]  # Fiji: no camera there is shared with X
    r = get_tile(geo, auth("investigator", reg.x.slug), 14, x, y)
    assert r.status_code == 200 and decode(r.content) == []
    r = get_tile(geo, auth("investigator", reg.x.slug), 14, 0, 0)  # the Arctic, far from any jurisdiction
    assert r.status_code == 200 and r.content == b""


def audit_rows(db: Db, actor: str) -> list[dict]:
    rows = db.fetch(
        "SELECT action, case_number, details, ST_AsGeoJSON(area) AS area FROM audit.events"
        " WHERE actor = $1 ORDER BY seq",
        actor,
    )
    return [{**dict(r), "details": orjson.loads(r["details"]), "area": orjson.loads(r["area"])} for r in rows]


def test_one_audit_record_stands_for_a_burst_of_a_blocks_tiles_and_covers_the_block(
    geo: httpx.Client, auth: Token, registry_data: Registry, db: Db
) -> None:
    reg = registry_data
    sub = f"det-{uuid.uuid4().hex[:8]}"
    headers = auth("investigator", reg.x.slug, sub=sub)
    x, y = busiest_tiles(reg, reg.x, 16)[0]
    bx, by = x - x % 4, y - y % 4  # the block's first tile
    for dx in range(4):
        for dy in range(4):
            assert get_tile(geo, headers, 16, bx + dx, by + dy).status_code == 200
    rows = audit_rows(db, sub)
    assert len(rows) == 1
    [row] = rows
    assert row["action"] == "search.tiles" and row["case_number"] is None
    assert row["details"]["zoom"] == 16 and row["details"]["block"] == [14, bx // 4, by // 4]
    # The record's area is the block: every tile of it is inside, the next one out.
    area = shape(row["area"])
    w, s, e, n = tile_bounds(14, bx // 4, by // 4)
    assert area.hausdorff_distance(box(w, s, e, n)) < 1e-6  # the trail keeps coordinates to 7 decimals
    # A tile of the next block, a case given, another zoom: a record each.
    get_tile(geo, headers, 16, bx + 4, by)
    get_tile(geo, headers, 16, bx, by, case_number="2026-0042")
    get_tile(geo, headers, 15, x // 2, y // 2)
    rows = audit_rows(db, sub)
    assert len(rows) == 4
    assert rows[1]["details"]["block"] == [14, bx // 4 + 1, by // 4]
    assert rows[2]["case_number"] == "2026-0042"
    assert rows[3]["details"]["zoom"] == 15


def test_the_tilejson_names_the_tiles_the_zooms_the_layer_and_the_jurisdictions_bounds(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    reg = registry_data
    r = geo.get("/v1/tiles/cameras.json", headers=auth("cad", reg.x.slug))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["tilejson"] == "3.0.0" and doc["scheme"] == "xyz"
    assert doc["tiles"] == [str(geo.base_url).rstrip("/") + "/v1/tiles/cameras/{z}/{x}/{y}.mvt"]
    assert (doc["minzoom"], doc["maxzoom"]) == (MIN_ZOOM, MAX_ZOOM)
    bounds = list(reg.x.jurisdiction.bounds)  # type: ignore[attr-defined]
    assert doc["bounds"] == pytest.approx(bounds, abs=1e-6)
    [layer] = doc["vector_layers"]
    assert layer["id"] == "cameras" and set(layer["fields"]) == set(FIELDS)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/tiles/cameras/8/75/96.mvt", 422),  # below the smallest zoom
        ("/v1/tiles/cameras/23/0/0.mvt", 422),
        ("/v1/tiles/cameras/14/16384/0.mvt", 404),  # beyond the grid
        ("/v1/tiles/cameras/14/0/99999999999999999999.mvt", 404),
        ("/v1/tiles/cameras/14/-1/0.mvt", 422),
        ("/v1/tiles/cameras/14/NaN/0.mvt", 422),
        ("/v1/tiles/cameras/14/1.5/0.mvt", 422),
        ("/v1/tiles/cameras/14/0/0'%20OR%201=1--.mvt", 422),
        ("/v1/tiles/cameras/x/0/0.mvt", 422),
        ("/v1/tiles/cameras/14/0/0.png", 404),
    ],
)
def test_a_bad_tile_is_refused_with_a_problem(
    geo: httpx.Client, auth: Token, registry_data: Registry, path: str, status: int
) -> None:
    r = geo.get(path, headers=auth("investigator", registry_data.x.slug))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_tiles_are_for_the_roles_that_search(geo: httpx.Client, auth: Token, registry_data: Registry) -> None:
    path = "/v1/tiles/cameras/14/4823/6160.mvt"
    assert geo.get(path).status_code == 401
    assert geo.get("/v1/tiles/cameras.json").status_code == 401
    for role, status in (("auditor", 403), ("advocate", 403), ("integrator", 403), ("supervisor", 200)):
        assert geo.get(path, headers=auth(role, registry_data.x.slug)).status_code == status, role


def test_the_tilejson_describes_each_enumerated_field_with_the_values_a_tile_can_hold() -> None:
    def named(description: str) -> set[str]:
        listed = description.removeprefix("String: ").split(" (", 1)[0]
        return set(listed.replace(" or ", ", ").split(", "))

    assert named(FIELDS["owner_kind"]) == set(OWNER_KINDS)
    assert named(FIELDS["placement"]) == set(PLACEMENTS)
    assert named(FIELDS["live_mode"]) == set(LIVE_MODES)
