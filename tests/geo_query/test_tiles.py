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

from services.geo_query.tiles import (
    EXTENT,
    FIELDS,
    GROUP_BELOW_ZOOM,
    MAX_ZOOM,
    MIN_ZOOM,
    group_units,
    tile_bounds,
)
from shared.vocabulary import LIVE_MODES, OWNER_KINDS, PLACEMENTS
from tests.conftest import Token
from tests.geo_query.conftest import (
    AgencyFixture,
    Cam,
    Registry,
    insert_agency,
    insert_camera,
    insert_registration,
)
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


@pytest.mark.parametrize("z", [GROUP_BELOW_ZOOM, 14, 16])
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
                assert props["cameras"] == 1
                assert set(props) <= set(FIELDS)
                checked += 1
    assert checked


def tile_units(cam: Cam, z: int, x: int, y: int) -> tuple[float, float]:
    """The camera's position in tile z/x/y, in tile units (0 to EXTENT across the tile, y down)."""
    w, _, e, n = mercator_bounds(z, x, y)
    mx, my = TO_MERCATOR.transform(cam.lon, cam.lat)
    unit = (e - w) / EXTENT
    return (mx - w) / unit, (n - my) / unit


@pytest.mark.parametrize("z", [MIN_ZOOM, 11, GROUP_BELOW_ZOOM - 1])
def test_far_out_a_point_stands_for_the_cameras_of_one_kind_within_a_few_pixels(
    geo: httpx.Client, auth: Token, registry_data: Registry, z: int
) -> None:
    """Below GROUP_BELOW_ZOOM: each visible camera in the tile is counted by the point of its kind (owner kind,
    placement, live mode) in its grid cell; one point per kind and cell; the counts add up to the cameras; a point's
    id is a camera of its kind; direction and field of view only on a point that stands for one camera."""
    reg = registry_data
    units = group_units(z)
    assert units > 0
    by_id: dict[str, Cam] = {str(c.id): c for c in reg.cams}
    checked = 0
    for agency in (reg.x, reg.y):
        headers = auth("investigator", agency.slug)
        for x, y in busiest_tiles(reg, agency, z)[:2]:
            r = get_tile(geo, headers, z, x, y)
            assert r.status_code == 200, r.text
            features = decode(r.content)
            points: dict[tuple[float, float, str, object, str], dict] = {}
            for f in features:
                p = f["properties"]
                px, py = f["geometry"]["coordinates"]
                # A point lies in its cell (the mean of its cameras' positions there).
                key = (px // units, py // units, p["owner_kind"], p.get("placement"), p["live_mode"])
                assert key not in points, "two points of one kind in one cell"
                points[key] = p
            # Every camera well inside the tile (away from the buffer's rounding edge) is counted by its point.
            for cid in expected(reg, agency, z, x, y, 60):
                cam = by_id[cid]
                ux, uy = tile_units(cam, z, x, y)
                # The tile's integer position (PostGIS's projection and rounding) may differ from pyproj's by a unit:
                # a camera within a unit of a cell's edge may be counted by either cell.
                cells = {
                    (
                        math.floor((ux + dx) / units),
                        math.floor((uy + dy) / units),
                        cam.owner_kind,
                        cam.placement,
                        cam.live_mode,
                    )
                    for dx in (-1, 0, 1)
                    for dy in (-1, 0, 1)
                }
                assert cells & points.keys(), f"camera {cid} is not counted by any point"
                checked += 1
            for (_, _, kind, placement, live_mode), p in points.items():
                cam = by_id[p["id"]]
                assert (cam.owner_kind, cam.placement, cam.live_mode) == (kind, placement, live_mode)
                if p["cameras"] == 1:
                    assert p.get("direction_deg") == cam.direction_deg
                else:
                    assert "direction_deg" not in p and "fov_deg" not in p
            total = sum(p["cameras"] for p in points.values())
            assert len(expected(reg, agency, z, x, y, 60)) <= total <= len(expected(reg, agency, z, x, y, 66))
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


def test_cameras_of_one_kind_a_few_metres_apart_are_one_point_far_out_and_each_its_own_close_in(
    geo: httpx.Client, auth: Token, db: Db
) -> None:
    tag = uuid.uuid4().hex[:8]
    lon, lat = -87.91, 43.04
    agency = insert_agency(
        db,
        f"gt-{tag}",
        {"type": "Polygon", "coordinates": [[[-88, 43], [-87.8, 43], [-87.8, 43.1], [-88, 43.1], [-88, 43]]]},
    )
    rid, _ = insert_registration(db, agency, lon, lat, kind="business")
    cams = [
        Cam(
            uuid.uuid4(),
            rid,
            lon + i * 0.00002,
            lat,
            {agency.id},
            "business",
            "outdoor",
            "never",
            30,
            90 + i,
            60,
        )
        for i in range(6)
    ] + [Cam(uuid.uuid4(), rid, lon, lat + 0.00002, {agency.id}, "business", "indoor", "never", 30, 10, 90)]
    for cam in cams:
        insert_camera(db, cam)
    headers = auth("investigator", agency.slug)
    for z in (MIN_ZOOM, GROUP_BELOW_ZOOM - 1):
        x, y = tile_of(lon, lat, z)
        points = decode(get_tile(geo, headers, z, x, y).content)
        by_kind = {f["properties"]["placement"]: f["properties"] for f in points}
        assert len(points) == 2 and by_kind["outdoor"]["cameras"] == 6 and by_kind["indoor"]["cameras"] == 1
        assert by_kind["outdoor"]["id"] in {str(c.id) for c in cams[:6]}
        assert "direction_deg" not in by_kind["outdoor"]
        assert by_kind["indoor"]["id"] == str(cams[6].id) and by_kind["indoor"]["direction_deg"] == 10
    for z in (GROUP_BELOW_ZOOM, 18):
        x, y = tile_of(lon, lat, z)
        points = decode(get_tile(geo, headers, z, x, y).content)
        assert sorted(f["properties"]["id"] for f in points) == sorted(str(c.id) for c in cams)
        assert all(f["properties"]["cameras"] == 1 for f in points)
