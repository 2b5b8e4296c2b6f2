"""The coverage map, against an independent model: pyproj puts each camera on the equal-area grid EPSG:6933 and
shapely finds the hexagon containing it (the cell, then the nested coarser cells through the centres); the agency's
answer holds exactly those counts and every other cell of its jurisdiction with 0; the public answer only the cells
with at least k, rounded down to 5, never below the minimum size; only the cameras the agency sees count, and a
camera deleted, paused or moved out stops counting at once; a single new camera cannot be located by differencing
the public answers; bad input is refused with problems."""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import mapbox_vector_tile
import numpy as np
import orjson
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, Polygon, shape

from services.geo_query.coverage import (
    PUBLIC_MAX_AGE_S,
    PUBLIC_MIN_SIZE_M,
    PUBLIC_SIZES,
    ROUND_TO,
    SIZES,
    TILE_LAYER,
    tile_size_m,
)
from services.geo_query.tiles import tile_bounds
from tests.conftest import Token
from tests.geo_query.conftest import (
    X_JURISDICTION,
    AgencyFixture,
    Cam,
    Registry,
    insert_agency,
    insert_camera,
    insert_registration,
)
from tests.support import Db

TO_GRID = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
SQRT3 = math.sqrt(3)
NUDGE = (0.5, 0.25)  # the documented rule: a finer cell's centre moved 0.5 m east, 0.25 m north
Cell = tuple[int, int]


# ------------------------------------------------------------------------------------- the independent model


def to_grid(geom: Any) -> Any:
    """A lon/lat geometry on the grid's CRS, vertex by vertex (as ST_Transform does)."""
    return shapely.transform(geom, lambda xy: np.column_stack(TO_GRID.transform(xy[:, 0], xy[:, 1])))


def centre(size: float, i: int, j: int) -> tuple[float, float]:
    """The centre of hexagon (i, j) of ST_HexagonGrid(size): flat-topped, columns 1.5 size apart, odd columns
    half a row up."""
    return 1.5 * size * i, SQRT3 * size * (j + (0.5 if i % 2 else 0.0))


def hexagon(size: float, i: int, j: int) -> Polygon:
    cx, cy = centre(size, i, j)
    return Polygon(
        [
            (cx + size * dx, cy + size * SQRT3 / 2 * dy)
            for dx, dy in ((-1, 0), (-0.5, -1), (0.5, -1), (1, 0), (0.5, 1), (-0.5, 1))
        ]
    )


def containing(size: float, x: float, y: float) -> Cell:
    """The hexagon containing (x, y), found by testing the polygons around it."""
    i0, j0 = math.floor(x / (1.5 * size)), round(y / (SQRT3 * size))
    p = Point(x, y)
    for i in range(i0 - 1, i0 + 3):
        for j in range(j0 - 2, j0 + 3):
            if hexagon(size, i, j).covers(p):
                return i, j
    raise AssertionError("no hexagon contains the point")


def cells_of(lon: float, lat: float) -> dict[int, Cell]:
    """The camera's cell at each size: its own at the smallest; above, the one containing the finer cell's centre
    (moved by the migration's NUDGE off the coarser grid's edges)."""
    x, y = TO_GRID.transform(lon, lat)
    out: dict[int, Cell] = {}
    for size in SIZES:
        out[size] = containing(size, x, y)
        x, y = centre(size, *out[size])
        x, y = x + NUDGE[0], y + NUDGE[1]
    return out


def model_counts(cams: list[Cam], size: int) -> Counter[Cell]:
    return Counter(cells_of(c.lon, c.lat)[size] for c in cams)


def grid_cells(area_lonlat: object, size: int) -> set[Cell]:
    """Every hexagon meeting the area (its vertices projected, as ST_Transform does)."""
    area = to_grid(area_lonlat)
    w, s, e, n = area.bounds
    cells = set()
    for i in range(math.floor(w / (1.5 * size)) - 1, math.ceil(e / (1.5 * size)) + 2):
        for j in range(math.floor(s / (SQRT3 * size)) - 1, math.ceil(n / (SQRT3 * size)) + 2):
            if hexagon(size, i, j).intersects(area):
                cells.add((i, j))
    return cells


def public_expected(counts: Counter[Cell], k: int) -> dict[Cell, int]:
    return {cell: n // ROUND_TO * ROUND_TO for cell, n in counts.items() if n >= k}


# ------------------------------------------------------------------------------------------------ helpers


def answer(resp: httpx.Response) -> dict[Cell, int]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/geo+json")
    body = resp.json()
    assert body["type"] == "FeatureCollection"
    out = {}
    for f in body["features"]:
        p = f["properties"]
        out[(p["i"], p["j"])] = p["cameras"]
    return out


def public(geo: httpx.Client, slug: str, size: int, **params: str) -> dict[Cell, int]:
    r = geo.get("/v1/coverage", params={"agency": slug, "size": size, **params})
    assert r.headers["cache-control"] == f"public, max-age={PUBLIC_MAX_AGE_S}"
    return answer(r)


def agency_answer(geo: httpx.Client, auth: Token, slug: str, size: int, **params: str) -> dict[Cell, int]:
    return answer(
        geo.get("/v1/coverage/agency", params={"size": size, **params}, headers=auth("agency_admin", slug))
    )


def box(w: float, s: float, e: float, n: float) -> dict:
    return {"type": "MultiPolygon", "coordinates": [[[[w, s], [e, s], [e, n], [w, n], [w, s]]]]}


def add_camera(
    db: Db, agency: AgencyFixture, lon: float, lat: float, visible: set[uuid.UUID] | None = None
) -> Cam:
    rid, _ = insert_registration(db, agency, lon, lat)
    cam = Cam(
        uuid.uuid4(),
        rid,
        lon,
        lat,
        {agency.id} if visible is None else visible,
        "residential",
        "outdoor",
        "never",
        30,
    )
    insert_camera(db, cam)
    return cam


# ---------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("size", SIZES)
def test_the_agency_answer_counts_each_cell_exactly_and_lists_the_jurisdictions_empty_cells(
    geo: httpx.Client, auth: Token, registry_data: Registry, size: int
) -> None:
    reg = registry_data
    for agency in (reg.x, reg.y):
        got = agency_answer(geo, auth, agency.slug, size)
        counts = model_counts(reg.visible(agency), size)
        assert {c: n for c, n in got.items() if n} == dict(counts)
        # Every cell meeting the jurisdiction is listed, those without a camera with 0 (where to recruit).
        empty = {c for c, n in got.items() if n == 0}
        assert empty == grid_cells(agency.jurisdiction, size) - set(counts)
        assert empty or size == 5000, "the jurisdiction has cells with no camera"


def test_each_cell_is_the_hexagon_of_the_grid(
    geo: httpx.Client, auth: Token, registry_data: Registry
) -> None:
    r = geo.get(
        "/v1/coverage/agency", params={"size": 1000}, headers=auth("agency_admin", registry_data.x.slug)
    )
    for f in r.json()["features"][:50]:
        p = f["properties"]
        drawn = to_grid(shape(f["geometry"]))
        cell = hexagon(1000, p["i"], p["j"])
        assert drawn.symmetric_difference(cell).area < cell.area * 1e-4  # the vertices are rounded to 1e-6°
        assert f["id"] == f"1000/{p['i']}/{p['j']}"


@pytest.mark.parametrize("size", PUBLIC_SIZES)
def test_the_public_answer_shows_only_cells_with_k_cameras_rounded_down_to_5(
    geo: httpx.Client, registry_data: Registry, size: int
) -> None:
    reg = registry_data
    for agency in (reg.x, reg.y):
        counts = model_counts(reg.visible(agency), size)
        expected = public_expected(counts, 5)
        assert public(geo, agency.slug, size) == expected
        assert all(n % ROUND_TO == 0 and n >= 5 for n in expected.values())
    if size == 1000:  # the seeded registry has cells below k and counts off the multiples of 5 at 1 km
        counts = model_counts(reg.visible(reg.x), size)
        assert any(0 < n < 5 for n in counts.values()) and any(n % 5 and n > 5 for n in counts.values())


def test_the_public_answer_is_limited_to_a_bbox(geo: httpx.Client, registry_data: Registry) -> None:
    reg = registry_data
    whole = public(geo, reg.x.slug, 1000)
    w, s, e, n = -74.0, 40.72, -73.96, 40.76
    inside = public(geo, reg.x.slug, 1000, bbox=f"{w},{s},{e},{n}")
    area = to_grid(shape(box(w, s, e, n)))
    assert inside == {c: v for c, v in whole.items() if hexagon(1000, *c).intersects(area)}
    assert 0 < len(inside) < len(whole)


def test_the_agencys_threshold_is_its_policy(
    geo: httpx.Client, registry: httpx.Client, auth: Token, db: Db, slug: str
) -> None:
    admin = auth("agency_admin", slug)
    r = registry.post(
        "/v1/agencies",
        json={"slug": slug, "name": "Coverage PD", "jurisdiction": box(-87.95, 43.0, -87.85, 43.1)},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["policy"]["coverage_min_cameras"] == 5  # the default
    agency = AgencyFixture(uuid.UUID(r.json()["id"]), slug, shape(box(-87.95, 43.0, -87.85, 43.1)))
    rng = random.Random(7)
    lon, lat = -87.9, 43.05
    for _ in range(12):
        add_camera(db, agency, lon + rng.uniform(-0.0005, 0.0005), lat + rng.uniform(-0.0005, 0.0005))
    cell = cells_of(lon, lat)[1000]
    assert public(geo, slug, 1000).get(cell) == 10  # 12 rounded down

    for too_low in (4, 0, 1001):
        bad = registry.patch(
            f"/v1/agencies/{slug}",
            json={"policy": {"coverage_min_cameras": too_low}},
            headers={**admin, "If-Match": '"1"'},
        )
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"] == "application/problem+json"
    ok = registry.patch(
        f"/v1/agencies/{slug}",
        json={"policy": {"coverage_min_cameras": 15}},
        headers={**admin, "If-Match": '"1"'},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["properties"]["policy"]["coverage_min_cameras"] == 15
    assert public(geo, slug, 1000) == {}  # 12 < 15
    body = geo.get("/v1/coverage", params={"agency": slug}).json()
    assert body["min_cameras"] == 15 and body["rounded_to"] == ROUND_TO and body["size_m"] == 1000
    assert agency_answer(geo, auth, slug, 1000)[cell] == 12  # the agency sees the exact count


def test_only_the_cameras_the_agency_sees_are_counted_and_stop_counting_at_once(
    geo: httpx.Client, auth: Token, db: Db, slug: str
) -> None:
    """Counts follow the committed cameras in the writer's transaction: the bound on a deleted, paused, unshared
    or moved-out camera still counting is zero (the very next answer)."""
    a = insert_agency(db, slug, box(-89.0, 44.0, -88.9, 44.1))
    other = insert_agency(db, slug + "-o", box(-89.0, 44.0, -88.9, 44.1))
    lon, lat = -88.95, 44.05
    mine = [add_camera(db, a, lon + d, lat) for d in (0.0, 0.0001, 0.0002, 0.0003, 0.0004, 0.0005)]
    add_camera(db, other, lon, lat)  # another agency's
    add_camera(db, a, lon, lat, visible=set())  # paused
    add_camera(db, a, -88.8, 44.05)  # shared with A, outside its jurisdiction
    both = add_camera(db, a, lon, lat, visible={a.id, other.id})
    cell = cells_of(lon, lat)[250]
    assert cells_of(lon + 0.0005, lat)[250] == cell
    assert agency_answer(geo, auth, slug, 250)[cell] == 7
    assert sum(agency_answer(geo, auth, slug, 5000).values()) == 7
    assert public(geo, slug, 1000) == {cells_of(lon, lat)[1000]: 5}

    # Deleted (the registration, its cameras with it): the next answer no longer counts it.
    db.execute("DELETE FROM registry.registrations WHERE id = $1", mine[0].registration_id)
    assert agency_answer(geo, auth, slug, 250)[cell] == 6
    # Paused: its cameras are shown to no one.
    db.execute("UPDATE registry.registrations SET status = 'paused' WHERE id = $1", mine[1].registration_id)
    db.fetchval("SELECT registry.sync_cameras($1::uuid[])", [mine[1].registration_id])
    assert agency_answer(geo, auth, slug, 250)[cell] == 5
    assert public(geo, slug, 1000) == {cells_of(lon, lat)[1000]: 5}
    # Unshared from A (still shared with the other agency): gone from A's counts, kept in the other's.
    db.execute("UPDATE registry.cameras SET visible_to = $2 WHERE id = $1", both.id, [other.id])
    assert agency_answer(geo, auth, slug, 250)[cell] == 4
    assert agency_answer(geo, auth, other.slug, 250)[cell] == 2
    assert public(geo, slug, 1000) == {}  # 4 < k
    # Moved out of the jurisdiction, then the jurisdiction moved away from the cameras: counted nowhere.
    db.execute(
        "UPDATE registry.cameras SET geom = ST_SetSRID(ST_MakePoint(-88.5, 44.05), 4326) WHERE id = $1",
        mine[2].id,
    )
    assert agency_answer(geo, auth, slug, 250)[cell] == 3
    db.execute(
        "UPDATE registry.agencies SET jurisdiction = ST_Multi(ST_MakeEnvelope(-88.0, 44.0, -87.9, 44.1, 4326)) WHERE id = $1",
        a.id,
    )
    assert sum(agency_answer(geo, auth, slug, 1000).values()) == 0


def test_a_single_new_camera_cannot_be_located_by_differencing_the_public_answers(
    geo: httpx.Client, db: Db, slug: str
) -> None:
    """Whatever the cell's count before, adding one camera changes at most the one public cell holding it at each
    size (with k ≥ 5 and counts rounded down to 5, the cell appears when it reaches k, or its count steps at a
    multiple of 5). The cells of the sizes are nested (each 1 km cell's cameras all lie in one 5 km cell), so the
    most the differences say is "one of the cameras of this 1 km cell" — a cell of at least the public minimum
    size (2.6 km²), holding at least k cameras, the new one indistinguishable from the others — never a position
    finer than the smallest public cell."""
    a = insert_agency(db, slug, box(-90.2, 45.0, -89.9, 45.3))
    rng = random.Random(2026)
    cams = [add_camera(db, a, rng.uniform(-90.2, -89.9), rng.uniform(45.0, 45.3)) for _ in range(40)]
    # A few cells filled to every residue mod 5 around k, so the new cameras cross the threshold, cross a multiple of
    # 5, or change nothing visible.
    hubs = [(-90.1, 45.1), (-90.0, 45.2), (-90.05, 45.05), (-89.95, 45.25), (-90.15, 45.22)]
    for n, (lon, lat) in zip((3, 4, 8, 9, 6), hubs, strict=True):
        cams += [
            add_camera(db, a, lon + rng.uniform(-0.0003, 0.0003), lat + rng.uniform(-0.0003, 0.0003))
            for _ in range(n)
        ]
    min_area = 3 * SQRT3 / 2 * PUBLIC_MIN_SIZE_M**2
    changed_somewhere = 0
    for trial in range(12):
        lon, lat = (
            hubs[trial % len(hubs)] if trial < 10 else (rng.uniform(-90.2, -89.9), rng.uniform(45.0, 45.3))
        )
        lon, lat = lon + rng.uniform(-0.0003, 0.0003), lat + rng.uniform(-0.0003, 0.0003)
        before = {size: public(geo, slug, size) for size in PUBLIC_SIZES}
        cams.append(add_camera(db, a, lon, lat))
        after = {size: public(geo, slug, size) for size in PUBLIC_SIZES}
        home = cells_of(lon, lat)
        revealed: dict[int, Cell] = {}
        for size in PUBLIC_SIZES:
            diff = {
                c
                for c in before[size].keys() | after[size].keys()
                if before[size].get(c) != after[size].get(c)
            }
            assert diff <= {home[size]}, "only the cell holding the new camera may change"
            if diff:
                revealed[size] = home[size]
                # The cell shown holds at least k cameras: the new one is one of them, not told apart.
                assert after[size][home[size]] >= 5
                counts = model_counts(cams, size)
                assert counts[home[size]] >= 5
        if revealed:
            changed_somewhere += 1
            # Nested: the finest revealed cell's cameras all lie in every coarser revealed cell, so the differences
            # together say no more than the finest one — a region of at least the smallest public cell.
            finest = min(revealed)
            members = [c for c in cams if cells_of(c.lon, c.lat)[finest] == revealed[finest]]
            for size, cell in revealed.items():
                assert all(cells_of(c.lon, c.lat)[size] == cell for c in members)
            assert hexagon(finest, *revealed[finest]).area >= min_area * 0.999
            assert len(members) >= 5
    assert changed_somewhere >= 3, "the trials crossed the threshold and the multiples of 5"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"agency": "milwaukee-pd", "size": "250"}, 400),  # below the public minimum
        ({"agency": "milwaukee-pd", "size": "2000"}, 400),  # no such grid
        ({"agency": "milwaukee-pd", "size": "ten"}, 400),
        ({"agency": "Not A Slug!"}, 400),
        ({}, 400),  # the program is required
        ({"agency": "no-such-agency-xyz"}, 404),
        ({"agency": "milwaukee-pd", "bbox": "-200,0,10,10"}, 400),
        ({"agency": "milwaukee-pd", "bbox": "0,95,10,10"}, 400),
        ({"agency": "milwaukee-pd", "bbox": "1,2,3"}, 400),
        ({"agency": "milwaukee-pd", "bbox": "nan,0,1,1"}, 400),
    ],
)
def test_bad_public_questions_are_refused_with_problems(
    geo: httpx.Client, params: dict[str, str], status: int
) -> None:
    r = geo.get("/v1/coverage", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_the_agency_answer_is_for_its_admin_only_and_audited(
    geo: httpx.Client, auth: Token, db: Db, registry_data: Registry
) -> None:
    slug = registry_data.x.slug
    assert geo.get("/v1/coverage/agency").status_code == 401
    for role in ("investigator", "supervisor", "auditor"):
        assert geo.get("/v1/coverage/agency", headers=auth(role, slug)).status_code == 403
    for params in ({"size": "100"}, {"bbox": "-74,40,-73"}, {"size": "250", "bbox": "-200,0,0,1"}):
        bad = geo.get("/v1/coverage/agency", params=params, headers=auth("agency_admin", slug))
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    sub = f"coverage-{uuid.uuid4().hex[:8]}"
    r = geo.get("/v1/coverage/agency", params={"size": 5000}, headers=auth("agency_admin", slug, sub=sub))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    row = db.fetchval(
        "SELECT json_build_object('agency', agency, 'action', action, 'size_m', details->'size_m')::text"
        " FROM audit.events WHERE actor = $1",
        sub,
    )
    assert row is not None and orjson.loads(row) == {
        "agency": slug,
        "action": "coverage.read",
        "size_m": 5000,
    }


def test_a_county_sized_area_at_250_m_asks_for_a_larger_size_or_a_bbox(
    geo: httpx.Client, auth: Token, db: Db, slug: str
) -> None:
    insert_agency(db, slug, box(-100.0, 40.0, -98.0, 42.0))
    r = geo.get("/v1/coverage/agency", params={"size": 250}, headers=auth("agency_admin", slug))
    assert r.status_code == 400 and "larger size or a bbox" in r.text
    assert (
        geo.get("/v1/coverage/agency", params={"size": 5000}, headers=auth("agency_admin", slug)).status_code
        == 200
    )


# ------------------------------------------------------------------------------------------------ as tiles


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.mark.parametrize("z", [6, 8, 10, 12, 14])
def test_a_coverage_tile_holds_the_public_cells_meeting_it(
    geo: httpx.Client, registry_data: Registry, z: int
) -> None:
    """Read by a real client (mapbox-vector-tile): the tile's cells are exactly the public answer's cells (at the
    tile's size: 5 km below zoom 12, 1 km from 12) whose hexagon meets the tile, with the same rounded counts."""
    reg = registry_data
    size = tile_size_m(z)
    cells = public(geo, reg.x.slug, size)
    assert cells
    lon, lat = -73.98, 40.74
    x, y = tile_of(lon, lat, z)
    r = geo.get(f"/v1/tiles/coverage/{z}/{x}/{y}.mvt", params={"agency": reg.x.slug})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert r.headers["cache-control"] == f"public, max-age={PUBLIC_MAX_AGE_S}"
    layers = mapbox_vector_tile.decode(r.content)
    got = {
        (f["properties"]["i"], f["properties"]["j"]): f["properties"]["cameras"]
        for f in layers[TILE_LAYER]["features"]
    }
    assert all(f["properties"]["size_m"] == size for f in layers[TILE_LAYER]["features"])
    w, s, e, n = tile_bounds(z, x, y)
    area = to_grid(shape(box(w, s, e, n)).buffer(0))
    expected = {c: v for c, v in cells.items() if hexagon(size, *c).intersects(area)}
    # A hexagon touching the tile only within its rounding (one pixel) may fall either way.
    edge = {
        c
        for c in expected.keys() ^ got.keys()
        if hexagon(size, *c).intersection(area).area < hexagon(size, *c).area * 0.01
    }
    assert {c: v for c, v in got.items() if c not in edge} == {
        c: v for c, v in expected.items() if c not in edge
    }
    assert got


def test_coverage_tiles_and_their_tilejson_refuse_bad_questions(
    geo: httpx.Client, registry_data: Registry
) -> None:
    slug = registry_data.x.slug
    doc = geo.get("/v1/tiles/coverage.json", params={"agency": slug})
    assert doc.status_code == 200, doc.text
    body = doc.json()
    assert body["tilejson"] == "3.0.0" and body["tiles"][0].endswith(
        f"/v1/tiles/coverage/{{z}}/{{x}}/{{y}}.mvt?agency={slug}"
    )
    assert body["vector_layers"][0]["id"] == TILE_LAYER
    w, s, e, n = body["bounds"]
    assert (w, s, e, n) == pytest.approx(shape(X_JURISDICTION).bounds, abs=1e-6)
    for path, params, status in [
        ("/v1/tiles/coverage.json", {"agency": "no-such-program-q"}, 404),
        ("/v1/tiles/coverage.json", {}, 400),
        ("/v1/tiles/coverage/12/1205/1539.mvt", {"agency": "no-such-program-q"}, 404),
        ("/v1/tiles/coverage/12/4096/1539.mvt", {"agency": slug}, 404),  # beyond the grid
        ("/v1/tiles/coverage/3/1/1.mvt", {"agency": slug}, 422),  # below the minimum zoom
        ("/v1/tiles/coverage/17/1/1.mvt", {"agency": slug}, 422),
        ("/v1/tiles/coverage/12/1205/1539.mvt", {"agency": "Bad Slug"}, 400),
    ]:
        r = geo.get(path, params=params)
        assert r.status_code == status, (path, params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
