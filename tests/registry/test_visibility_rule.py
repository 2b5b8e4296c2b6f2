"""Who may see a registration is written once, in the database (migration 0024): `registry.sees` (the agency's
half: the owner's choices show the camera to the agency, and it lies in the agency's jurisdiction) and
`registry.visible_to` (the owner's half: the agencies shared with while active). Each test changes one function
in this run's database and checks that every answer built on it changes with it, then puts it back: registry_api's
agency-facing reads, and every geo_query answer (each search, OGC API Features and the vector tiles)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import mapbox_vector_tile

from tests.conftest import Token
from tests.registry.conftest import Agency, NewAgency, Register, box, owner, point
from tests.support import Db

SEES = "registry.sees(uuid, geometry, uuid[], geometry)"
VISIBLE_TO = "registry.visible_to(text, uuid[])"
CASE = {"case_number": "V-1"}


@contextmanager
def rule_replaced(db: Db, signature: str, body: str) -> Iterator[None]:
    """The function `signature` returns `body` until the block ends; then it is as the migration made it."""
    original = db.fetchval("SELECT pg_get_functiondef(CAST($1 AS regprocedure))", signature)
    head = original[: original.index("RETURN ")]
    db.execute(head + "RETURN " + body)
    try:
        yield
    finally:
        db.execute(original)


def _answers(registry: httpx.Client, auth: Token, agency: Agency, rid: str, wid: str) -> dict[str, Any]:
    """Every agency-facing answer that asks whether the agency sees the registration."""
    investigator = auth("investigator", agency.slug)
    admin = auth("agency_admin", agency.slug)
    url = f"/v1/agencies/{agency.slug}"
    same = {"jurisdiction": box(agency.west, agency.south, agency.east, agency.north)}
    changed = registry.patch(url, json=same, headers={**admin, "If-Match": registry.get(url).headers["etag"]})
    assert changed.status_code == 200, changed.text
    return {
        "contact": registry.get(
            f"/v1/registrations/{rid}/contact", params=CASE, headers=investigator
        ).status_code,
        "due": [
            i["id"]
            for i in registry.get(f"/v1/agencies/{agency.slug}/reconfirmations-due", headers=admin).json()[
                "items"
            ]
        ],
        "windows": [w["id"] for w in registry.get("/v1/live-windows", headers=investigator).json()],
        "window": registry.get(f"/v1/live-windows/{wid}", headers=investigator).status_code,
        "outside": changed.json()["properties"]["registrations_outside"],
    }


def test_a_change_to_registry_sees_changes_every_agency_facing_answer(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Db
) -> None:
    a = new_agency()
    reg, cred = register(
        a,
        cameras=[{"label": "door", "live_mode": "on_alert", "live_endpoint": "rtsps://cam.example.net/door"}],
    )
    rid = reg["id"]
    db.execute(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '800 days' WHERE id = $1",
        uuid.UUID(rid),
    )
    r = registry.post(
        f"/v1/registrations/{rid}/live-windows",
        json={"agencies": [a.slug], "duration_s": 600, "reason": "alert"},
        headers=owner(cred),
    )
    assert r.status_code == 201, r.text
    wid = r.json()["id"]

    seen = {"contact": 200, "due": [rid], "windows": [wid], "window": 200, "outside": 0}
    assert _answers(registry, auth, a, rid, wid) == seen
    # The rule changed in its one place: no agency sees any camera. Every answer follows.
    with rule_replaced(db, SEES, "false"):
        assert _answers(registry, auth, a, rid, wid) == {
            "contact": 404,
            "due": [],
            "windows": [],
            "window": 404,
            "outside": 1,  # shown to the agency by the owner, yet not seen by it
        }
    assert _answers(registry, auth, a, rid, wid) == seen


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _geo_answers(geo: httpx.Client, auth: Token, agency: Agency, lon: float, lat: float) -> dict[str, Any]:
    """The cameras each of geo_query's ways of finding them gives the agency around (lon, lat): each search,
    OGC API Features' items, and the vector tile there."""
    h = auth("investigator", agency.slug)
    near = (lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)  # within the agency's limits on an area's size
    bbox = ",".join(str(v) for v in near)

    def ids(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return sorted(f["id"] for f in r.json()["features"])

    # The zoom-16 tiles around (lon, lat): a camera a few hundred metres away may lie in a neighbouring tile.
    in_tiles: set[str] = set()
    for x, y in {_tile_of(lon + dx, lat + dy, 16) for dx in (-0.003, 0, 0.003) for dy in (-0.003, 0, 0.003)}:
        tile = geo.get(f"/v1/tiles/cameras/16/{x}/{y}.mvt", headers=h)
        assert tile.status_code in (200, 204), tile.text
        layers = mapbox_vector_tile.decode(tile.content) if tile.content else {}
        in_tiles |= {str(f["properties"]["id"]) for f in layers.get("cameras", {}).get("features", [])}
    area = box(*near)
    return {
        "radius": ids(
            geo.get("/v1/cameras/radius", params={"lon": lon, "lat": lat, "radius_m": 500}, headers=h)
        ),
        "nearest": ids(geo.get("/v1/cameras/nearest", params={"lon": lon, "lat": lat, "k": 2}, headers=h)),
        "bbox": ids(geo.get("/v1/cameras/bbox", params={"bbox": bbox}, headers=h)),
        "area": ids(geo.post("/v1/cameras/area", json={"area": area}, headers=h)),
        "ogc items": ids(geo.get("/v1/ogc/collections/cameras/items", params={"bbox": bbox}, headers=h)),
        "tile": sorted(in_tiles),
    }


def _geo_item(geo: httpx.Client, auth: Token, agency: Agency, camera: str) -> int:
    h = auth("investigator", agency.slug)
    return geo.get(f"/v1/ogc/collections/cameras/items/{camera}", headers=h).status_code


def test_a_change_to_registry_sees_changes_every_geo_query_answer(
    registry: httpx.Client, geo: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Db
) -> None:
    a = new_agency()
    shown, _ = register(a, cameras=[{"label": "door"}])
    hidden, cred = register(a, location=point(a.inside(0.001, 0.0)), cameras=[{"label": "gate"}])
    url = f"/v1/registrations/{hidden['id']}"
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json={"status": "paused"}, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text  # paused: the owner's choices show its camera to nobody

    def camera(reg: dict[str, Any]) -> tuple[str, float, float]:
        (row,) = db.fetch(
            "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM registry.cameras WHERE registration_id = $1",
            uuid.UUID(reg["id"]),
        )
        return str(row["id"]), row["lon"], row["lat"]

    door, lon, lat = camera(shown)
    gate = camera(hidden)[0]
    ways = ("radius", "nearest", "bbox", "area", "ogc items", "tile")

    def everywhere(cameras: list[str]) -> dict[str, list[str]]:
        return {way: cameras for way in ways}

    def answers() -> dict[str, Any]:
        got = _geo_answers(geo, auth, a, lon, lat)
        return {**got, "items": {c: _geo_item(geo, auth, a, c) for c in (door, gate)}}

    seen = {**everywhere([door]), "items": {door: 200, gate: 404}}
    assert answers() == seen
    # The rule changed in its one place: no agency sees any camera. Every search, page and tile follows...
    with rule_replaced(db, SEES, "false"):
        assert answers() == {**everywhere([]), "items": {door: 404, gate: 404}}
    # ...and the other way: an agency sees every camera, the paused registration's too.
    with rule_replaced(db, SEES, "true"):
        assert answers() == {**everywhere(sorted([door, gate])), "items": {door: 200, gate: 200}}
    assert answers() == seen


def test_a_change_to_registry_visible_to_changes_what_every_writer_stores(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Db
) -> None:
    a = new_agency()
    other = new_agency(within=a)
    before, cred = register(a, share_with=[other.slug])
    investigator = auth("investigator", a.slug)
    service = auth("service", None, sub="requests_api")

    def contact(rid: str) -> int:
        return registry.get(f"/v1/registrations/{rid}/contact", params=CASE, headers=investigator).status_code

    def notify(rid: str) -> int:
        note = {
            "notification_id": str(uuid.uuid4()),
            "kind": "request",
            "agency": a.slug,
            "subject": "s",
            "body": "b",
        }
        return registry.post(f"/v1/registrations/{rid}/notifications", json=note, headers=service).status_code

    assert (contact(before["id"]), notify(before["id"])) == (200, 202)
    # The rule changed in its one place: the owner's choices show a registration to nobody.
    with rule_replaced(db, VISIBLE_TO, "CAST('{}' AS uuid[])"):
        # The one-statement registration writes its cameras' copy with it...
        new, _ = register(a)
        assert contact(new["id"]) == 404
        assert db.fetchval(
            "SELECT bool_and(cardinality(visible_to) = 0) FROM registry.cameras WHERE registration_id = $1",
            uuid.UUID(new["id"]),
        )
        # ...so does every change of sharing (registry.sync_cameras)...
        url = f"/v1/registrations/{before['id']}"
        etag = registry.get(url, headers=owner(cred)).headers["etag"]
        r = registry.patch(url, json={"share_with": []}, headers={**owner(cred), "If-Match": etag})
        assert r.status_code == 200, r.text
        assert contact(before["id"]) == 404
        # ...and the consent to an agency's contact reads it.
        assert notify(before["id"]) == 410
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json={"share_with": [other.slug]}, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    assert (contact(before["id"]), notify(before["id"])) == (200, 202)


def test_registry_sees_is_inlined_into_a_search_and_its_jurisdiction_test_is_an_index_overlap(db: Db) -> None:
    """geo_query's searches call the rule on every candidate camera: it must be inlined (a single SQL expression,
    immutable, no SET, not SECURITY DEFINER), and its jurisdiction test must give the GiST index the overlap
    (`&&`) that keeps a nearest-K search an ordered index walk (ST_Covers would give `@`, estimated with a fixed
    selectivity, and the planner then scans and sorts the whole jurisdiction)."""
    kind = db.fetch(
        "SELECT l.lanname, p.provolatile::text AS volatility, p.prosecdef, p.proconfig FROM pg_proc p"
        " JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = CAST($1 AS regprocedure)",
        SEES,
    )[0]
    assert tuple(kind) == ("sql", "i", False, None)
    nearest = (
        "EXPLAIN (COSTS OFF) SELECT c.id FROM registry.cameras c"
        " WHERE registry.sees($1, (SELECT a.jurisdiction FROM registry.agencies a WHERE a.id = $1),"
        " c.visible_to, c.geom)"
        " ORDER BY c.geom <-> ST_SetSRID(ST_MakePoint(-87.95, 43.05), 4326) LIMIT 20"
    )
    db.execute("SET enable_seqscan = off")  # this run's few cameras: the plan the index gives, as at scale
    try:
        plan = "\n".join(r[0] for r in db.fetch(nearest, uuid.uuid4()))
    finally:
        db.execute("RESET enable_seqscan")
    assert "sees(" not in plan, plan  # inlined: the planner sees the expression, not a call
    assert "Index Cond: (geom && $0)" in plan and "Order By: (geom <-> " in plan, plan
