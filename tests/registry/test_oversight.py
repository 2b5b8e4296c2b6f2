"""Oversight: an auditor searches and exports their agency's audit trail (and only theirs), every filter returns
exactly its records (places checked with shapely), a place is answered from the GiST index, each read of the
trail is audited, an export verifies offline and an altered line does not; an owner sees exactly the agencies'
accesses to their registration, after the agency's disclosure delay, and never who."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Point, box, mapping, shape

from services.registry_api.oversight import TrailFilter, parse_place, search_sql
from tests.conftest import Token
from tests.registry.conftest import Agency, NewAgency, Register, owner
from tests.support import ROOT, Db, eventually

GEOJSON = "application/geo+json"
APPEND_MANY = (
    "SELECT audit.append_events($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::text[], $9::text[], $10::jsonb[])"
)


def seed(db: Db, records: list[dict[str, Any]]) -> list[int]:
    """Append `records` to the trail (as a service would, in one batch); their sequence numbers, in order."""
    cols = ("service", "actor", "actor_role", "agency", "action", "subject_type", "subject_id", "case_number")
    args: list[list[Any]] = [
        [r.get(c, "test" if c in ("service", "actor_role") else None) for r in records] for c in cols
    ]
    args.append([json.dumps(r["area"]) if r.get("area") else None for r in records])
    args.append([json.dumps(r.get("details", {})) for r in records])
    ids = [r["append_events"] for r in db.fetch(APPEND_MANY, *args)]
    rows = db.fetch("SELECT seq FROM audit.events WHERE id = ANY($1::uuid[]) ORDER BY seq", ids)
    return [r["seq"] for r in rows]


def all_pages(
    registry: httpx.Client, headers: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = []
    r = registry.get("/v1/audit/records", params=params, headers=headers)
    while True:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(GEOJSON)
        body = r.json()
        features += body["features"]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return features
        r = registry.get(nxt[0], headers=headers)


def seqs(features: list[dict[str, Any]]) -> list[int]:
    return [f["properties"]["seq"] for f in features]


def random_area(rng: random.Random, a: Agency) -> dict[str, Any]:
    lon = rng.uniform(a.west, a.east)
    lat = rng.uniform(a.south, a.north)
    if rng.random() < 0.5:
        return {"type": "Point", "coordinates": [lon, lat]}
    d = rng.uniform(0.0005, 0.01)
    return mapping(box(lon, lat, min(lon + d, a.east), min(lat + d, a.north)))


@pytest.fixture
def trail(new_agency: NewAgency, db: Db) -> tuple[Agency, Agency, list[dict[str, Any]], datetime]:
    """Agencies X and Y, with 60 records of X (random actors, actions, cases, targets, areas) appended in two
    batches, `between` an instant separating them, and 20 of Y in the same places."""
    rng = random.Random(17)
    x, y = new_agency(), new_agency()
    targets = [str(uuid.uuid4()) for _ in range(4)]

    def record(agency: Agency) -> dict[str, Any]:
        r: dict[str, Any] = {
            "agency": agency.slug,
            "actor": rng.choice(["det-a", "det-b", "sgt-c"]),
            "actor_role": "investigator",
            "action": rng.choice(["search.radius", "search.bbox", "registration.contact.read"]),
            "case_number": rng.choice([None, "C-1", "C-2"]),
            "service": "geo_query",
        }
        if rng.random() < 0.5:
            r["subject_type"], r["subject_id"] = "registration", rng.choice(targets)
        if rng.random() < 0.8:
            r["area"] = random_area(rng, x)  # Y's records lie in X's places too: the place is no scope
        return r

    first = [record(x) for _ in range(30)]
    seed(db, first)
    between = db.fetchval("SELECT clock_timestamp()")
    second = [record(x) for _ in range(30)]
    seed(db, second)
    seed(db, [record(y) for _ in range(20)])
    return x, y, [*first, *second], between


def x_records(db: Db, x: Agency) -> list[dict[str, Any]]:
    rows = db.fetch(
        "SELECT seq, at, actor, action, case_number, subject_id, ST_AsGeoJSON(area) AS area FROM audit.events"
        " WHERE agency = $1 ORDER BY seq",
        x.slug,
    )
    return [{**dict(r), "geom": shape(json.loads(r["area"])) if r["area"] else None} for r in rows]


def test_an_auditor_sees_their_agencys_records_only_newest_first_in_pages(
    registry: httpx.Client, auth: Token, db: Db, trail: Any
) -> None:
    x, y, _, _ = trail
    expected = [r["seq"] for r in x_records(db, x)]
    got = all_pages(registry, auth("auditor", x.slug, sub="aud-x"), {"limit": 7})
    assert seqs(got) == sorted(expected, reverse=True)
    assert {f["properties"]["agency"] for f in got} == {x.slug}
    # Y's auditor, searching X's places and X's actors, sees Y's records and none of X's.
    got_y = all_pages(registry, auth("auditor", y.slug), {"actor": "det-a"})
    assert got_y and {f["properties"]["agency"] for f in got_y} == {y.slug}
    assert not set(seqs(got_y)) & set(expected)


@pytest.mark.parametrize("role", ["investigator", "supervisor", "agency_admin", "advocate", "cad"])
def test_only_auditors_read_the_trail(registry: httpx.Client, auth: Token, trail: Any, role: str) -> None:
    x = trail[0]
    for path in ("/v1/audit/records", "/v1/audit/export"):
        r = registry.get(path, headers=auth(role, x.slug))
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert registry.get("/v1/audit/records").status_code == 401


def test_each_filter_returns_exactly_its_records(
    registry: httpx.Client, auth: Token, db: Db, trail: Any
) -> None:
    x, _, _, between = trail
    recs = [r for r in x_records(db, x) if r["actor"] != "aud-x"]
    headers = auth("auditor", x.slug, sub="aud-x")

    def check(params: dict[str, Any], keep: Any, undecided: frozenset[int] = frozenset()) -> None:
        want = {r["seq"] for r in recs if keep(r)} - undecided
        assert want, params  # a filter that matches nothing proves nothing
        # Pages of 100 (a place: more than its matches, so answered from the index) and of 3 (a place: answered
        # by testing the newest records one by one), the same records.
        for limit in (100, 3):
            got = set(seqs(all_pages(registry, headers, {**params, "limit": limit})))
            # Records appended after `recs` was read (this test's own searches) are the auditor's, not the filter's.
            got -= {s for s in got if s > recs[-1]["seq"]}
            got -= undecided
            assert got == want, (params, limit)

    check({"actor": "det-a"}, lambda r: r["actor"] == "det-a")
    check({"action": "search.bbox"}, lambda r: r["action"] == "search.bbox")
    check({"case_number": "C-2"}, lambda r: r["case_number"] == "C-2")
    some = next(r["subject_id"] for r in recs if r["subject_id"])
    check({"target": some}, lambda r: r["subject_id"] == some)
    iso = between.astimezone(UTC).isoformat().replace("+00:00", "Z")
    check({"since": iso}, lambda r: r["at"] >= between)
    check({"until": iso}, lambda r: r["at"] < between)
    check(
        {"since": iso, "actor": "det-b", "action": "search.radius"},
        lambda r: r["at"] >= between and r["actor"] == "det-b" and r["action"] == "search.radius",
    )

    # Places, against shapely on the same records.
    w, s = x.west + 0.02, x.south + 0.02
    bbox = (w, s, w + 0.04, s + 0.03)
    check(
        {"bbox": ",".join(map(str, bbox))},
        lambda r: r["geom"] is not None and r["geom"].intersects(box(*bbox)),
    )
    poly = shapely.Polygon([(w, s), (w + 0.06, s + 0.01), (w + 0.03, s + 0.07), (w, s)])
    check(
        {"polygon": json.dumps(mapping(poly))}, lambda r: r["geom"] is not None and r["geom"].intersects(poly)
    )
    lon, lat = x.centre
    radius = 2500.0
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    project = Transformer.from_crs("EPSG:4326", local, always_xy=True).transform

    def to_local(geom: Any) -> Any:
        return shapely.transform(geom, lambda c: np.column_stack(project(c[:, 0], c[:, 1])))

    def near(r: dict[str, Any]) -> bool:
        return r["geom"] is not None and to_local(r["geom"]).distance(Point(0, 0)) <= radius

    # A record within a metre of the circle is decided by the two projections' error, not by the filter: it is
    # left out of both sides (the agencies' places are random, so one may fall there).
    border = frozenset(
        r["seq"]
        for r in recs
        if r["geom"] is not None and abs(to_local(r["geom"]).distance(Point(0, 0)) - radius) < 1
    )
    assert len(border) < 3
    check({"near": f"{lon},{lat}", "radius_m": radius}, near, border)


def test_a_camera_named_by_a_record_is_its_target_and_its_place(
    registry: httpx.Client, auth: Token, db: Db, new_agency: NewAgency, register: Register
) -> None:
    """A record with no area of its own (a live view) is found by the camera it names: by the camera's id, its
    registration's id, and the camera's place."""
    x = new_agency()
    lon, lat = x.inside(0.01, 0.01)
    reg, _ = register(x, cameras=[{"location": {"type": "Point", "coordinates": [lon, lat]}}])
    cam = reg["properties"]["cameras"][0]["id"]
    (seq,) = seed(
        db,
        [
            {
                "agency": x.slug,
                "actor": "det-live",
                "action": "live_window.view",
                "subject_type": "live_window",
                "subject_id": str(uuid.uuid4()),
                "details": {"registration_id": reg["id"], "cameras": [cam]},
            }
        ],
    )
    headers = auth("auditor", x.slug)
    assert seq in seqs(all_pages(registry, headers, {"target": cam}))
    assert seq in seqs(all_pages(registry, headers, {"target": reg["id"]}))
    assert seq in seqs(all_pages(registry, headers, {"near": f"{lon},{lat}", "radius_m": 5}))
    far = f"{lon + 0.001},{lat}"  # about 80 m east
    assert seq not in seqs(all_pages(registry, headers, {"near": far, "radius_m": 50}))


def test_every_read_of_the_trail_is_audited(registry: httpx.Client, auth: Token, db: Db, trail: Any) -> None:
    x = trail[0]
    headers = auth("auditor", x.slug, sub="aud-reader")
    r = registry.get(
        "/v1/audit/records", params={"case_number": "C-1", "bbox": "-180,-90,180,90"}, headers=headers
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    returned = r.json()["numberReturned"]
    r = registry.get("/v1/audit/export", params={"actor": "det-a", "format": "csv"}, headers=headers)
    assert r.status_code == 200
    rows = db.fetch(
        "SELECT action, actor_role, agency, details, area IS NOT NULL AS has_area FROM audit.events"
        " WHERE actor = 'aud-reader' ORDER BY seq"
    )
    assert [(r["action"], r["actor_role"], r["agency"], r["has_area"]) for r in rows] == [
        ("audit.search", "auditor", x.slug, True),
        ("audit.export", "auditor", x.slug, False),
    ]
    search, export = (json.loads(r["details"]) for r in rows)
    assert search["filters"] == {"case_number": "C-1", "place": "bbox"}
    assert search["results"] == returned > 0
    assert export["filters"] == {"actor": "det-a"} and export["format"] == "csv"


def _asyncpg(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    names: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<![:\w]):([a-z_]+)", one, sql), [params[n] for n in names]


def test_a_place_search_reads_the_gist_index_not_the_trail(db: Db, new_agency: NewAgency) -> None:
    x = new_agency()
    rng = random.Random(5)
    seed(
        db,
        [
            {
                "agency": x.slug,
                "actor": "bulk",
                "action": "search.radius",
                "area": {"type": "Point", "coordinates": [rng.uniform(-120, -75), rng.uniform(28, 47)]},
            }
            for _ in range(3000)
        ],
    )
    db.execute("ANALYZE audit.event_places")
    db.execute("ANALYZE audit.events")
    lon, lat = x.centre
    places = (
        parse_place(f"{lon},{lat}", 500.0, None, None),
        parse_place(None, None, f"{lon},{lat},{lon + 0.01},{lat + 0.01}", None),
        parse_place(None, None, None, json.dumps(mapping(box(lon, lat, lon + 0.01, lat + 0.01)))),
    )
    for place in places:
        f = TrailFilter(agency=x.slug, place=place)
        sql, args = _asyncpg(search_sql(f, 100, None), f.params)
        plan = "\n".join(r[0] for r in db.fetch("EXPLAIN " + sql, *args))
        assert "ix_audit_event_places_geom" in plan, plan
        assert "Seq Scan on event_places" not in plan, plan


def test_a_search_by_actor_or_case_without_a_time_range_reads_its_index_not_the_agencys_trail(
    db: Db, new_agency: NewAgency
) -> None:
    x = new_agency()
    seed(
        db,
        [
            {
                "agency": x.slug,
                "actor": f"det-{i % 40}",
                "action": "search.radius",
                "case_number": f"C-{i % 300}" if i % 3 == 0 else None,
            }
            for i in range(3000)
        ],
    )
    db.execute("ANALYZE audit.events")
    searches = {
        "ix_audit_events_agency_actor": TrailFilter(agency=x.slug, actor="det-nobody"),
        "ix_audit_events_agency_case": TrailFilter(agency=x.slug, case_number="C-none"),
    }
    for index, f in searches.items():
        sql, args = _asyncpg(search_sql(f, 100, None), f.params)
        plan = "\n".join(r[0] for r in db.fetch("EXPLAIN " + sql, *args))
        # Each partition's copy of the index is named after it (events_2026_12_agency_actor_seq_idx).
        assert index.removeprefix("ix_audit_events_") in plan, plan
        assert "agency_at" not in plan, plan
        # Only a partition holding no record at all (next month's, made in advance) may be scanned.
        for scanned in re.findall(r"Seq Scan on (\w+)", plan):
            assert db.fetchval(f"SELECT count(*) FROM audit.{scanned}") == 0, plan  # noqa: S608 - a partition's name


def _export(registry: httpx.Client, headers: dict[str, str], fmt: str, **params: Any) -> bytes:
    with registry.stream("GET", "/v1/audit/export", params={"format": fmt, **params}, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/csv" if fmt == "csv" else "application/jsonl")
        return b"".join(r.iter_bytes())


def _verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_verify_export.py"), str(path), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_offline_and_an_altered_line_fails(
    registry: httpx.Client, auth: Token, db: Db, trail: Any, tmp_path: Path, fmt: str
) -> None:
    x = trail[0]
    data = _export(registry, auth("auditor", x.slug), fmt)
    # Every record of X, the export's own record among them (appended before the export was read).
    expected = [r["seq"] for r in x_records(db, x)]
    lines = data.decode().splitlines()
    body = lines[1:] if fmt == "csv" else lines
    assert len(body) == len(expected)
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(data)
    # An anchor taken when the last of these records was the chain's head, kept outside the database.
    head = db.fetch("SELECT seq, encode(hash, 'hex') AS hash FROM audit.events WHERE seq = $1", expected[-1])[
        0
    ]
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text(json.dumps({"seq": head["seq"], "hash": head["hash"]}) + "\n")
    ok = _verify(path, "--anchors", str(anchors), "--require-anchor")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"export verified: {len(expected)} records, 1 anchors reached" in ok.stdout

    # One character of one record's details changed: that line fails, and only it.
    target = next(i for i, line in enumerate(lines) if "det-" in line)
    altered = lines.copy()
    altered[target] = altered[target].replace("det-", "det_", 1)
    bad = tmp_path / f"altered.{fmt}"
    bad.write_text("\n".join(altered) + "\n")
    failed = _verify(bad)
    assert failed.returncode == 1
    assert failed.stdout.splitlines() == [
        f"line {target + 1} (record {expected[target - (fmt == 'csv')]}): record altered (its values do not hash to its hash)"
    ]

    # A chain rewritten up to the anchor (a record's hash recomputed): the anchor catches it.
    forged = tmp_path / "forged-anchor.jsonl"
    forged.write_text(json.dumps({"seq": head["seq"], "hash": "00" * 32}) + "\n")
    caught = _verify(path, "--anchors", str(forged))
    assert caught.returncode == 1 and "another hash than anchored" in caught.stdout


# --- the owner's access report ----------------------------------------------------------------------------


def _camera_owner(registry: httpx.Client, agency: Agency, dx: float) -> tuple[dict[str, Any], str]:
    lon, lat = agency.inside(dx, 0)
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": agency.slug,
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "contact": {"email": f"o-{uuid.uuid4().hex[:8]}@example.org"},
            "cameras": [{"location": {"type": "Point", "coordinates": [lon, lat]}, "retention_days": 14}],
        },
    )
    assert r.status_code == 201, r.text
    return r.json(), r.json()["credential"]


def _report(registry: httpx.Client, reg: dict[str, Any], credential: str) -> list[dict[str, Any]]:
    r = registry.get(f"/v1/registrations/{reg['id']}/access-report", headers=owner(credential))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert "det-" not in r.text and "sgt-" not in r.text  # never who
    return r.json()["accesses"]


def test_an_owner_sees_exactly_the_agencies_accesses_to_their_registration(
    registry: httpx.Client,
    geo: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    new_agency: NewAgency,
) -> None:
    x = new_agency(requires_approval=False)
    a, a_cred = _camera_owner(registry, x, 0.0)
    b, b_cred = _camera_owner(registry, x, 0.03)  # about 2.5 km away: outside the searches around A
    today = datetime.now(UTC).date().isoformat()
    det = auth("investigator", x.slug, sub="det-rivera")

    r = registry.get(f"/v1/registrations/{a['id']}/contact", params={"reason": "welfare_check"}, headers=det)
    assert r.status_code == 200, r.text
    lon, lat = x.inside(0.0, 0)
    r = geo.get(
        "/v1/cameras/radius",
        params={"lon": lon, "lat": lat, "radius_m": 200, "case_number": "C-9"},
        headers=det,
    )
    assert r.status_code == 200, r.text
    assert [f["properties"].get("contact") is not None for f in r.json()["features"]] == [True]
    now = datetime.now(UTC)
    r = requests_client.post(
        "/v1/requests",
        json={
            "case_number": "C-9",
            "category": "burglary",
            "incident": {"type": "Point", "coordinates": [lon, lat]},
            "radius_m": 100,
            "camera_ids": [a["properties"]["cameras"][0]["id"]],
            "window": {
                "start": (now - timedelta(hours=6)).isoformat().replace("+00:00", "Z"),
                "end": (now - timedelta(hours=4)).isoformat().replace("+00:00", "Z"),
            },
            "message": "A burglary on this block. Footage of the street would help.",
        },
        headers=det,
    )
    assert r.status_code == 201, r.text
    # A search without contact details, and one of the owner's own actions: no agency access to report.
    assert (
        geo.get(
            "/v1/cameras/radius", params={"lon": lon, "lat": lat, "radius_m": 200}, headers=det
        ).status_code
        == 200
    )

    got = _report(registry, a, a_cred)
    assert sorted((e["kind"], e["case_given"]) for e in got) == [
        ("contact_viewed", False),
        ("footage_request", True),
        ("search_contact_list", True),
    ]
    assert {(e["agency"], e["agency_name"], e["date"]) for e in got} == {(x.slug, x.name, today)}
    assert _report(registry, b, b_cred) == []
    # Another owner's report is not theirs to read.
    r = registry.get(f"/v1/registrations/{a['id']}/access-report", headers=owner(b_cred))
    assert r.status_code == 404


def test_an_access_shows_only_after_the_agencys_disclosure_delay(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Db
) -> None:
    x = new_agency(disclosure_delay_days=30)
    public = registry.get(f"/v1/agencies/{x.slug}")
    assert public.status_code == 200 and public.json()["properties"]["disclosure_delay_days"] == 30
    reg, cred = register(x)
    r = registry.get(
        f"/v1/registrations/{reg['id']}/contact",
        params={"case_number": "C-7"},
        headers=auth("investigator", x.slug, sub="det-quiet"),
    )
    assert r.status_code == 200
    assert _report(registry, reg, cred) == []  # within the 30 days
    # The delay is the program's current policy: set to 0, the access shows.
    admin = auth("agency_admin", x.slug)
    etag = registry.get(f"/v1/agencies/{x.slug}", headers=admin).headers["etag"]
    r = registry.patch(
        f"/v1/agencies/{x.slug}",
        json={"policy": {"disclosure_delay_days": 0}},
        headers={**admin, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert [(e["kind"], e["case_given"]) for e in _report(registry, reg, cred)] == [("contact_viewed", True)]
    # And each read of the report is itself in the trail, under the owner's pseudonym.
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'audit.access_report.read' AND actor = $1",
            f"owner:{reg['id']}",
        )
        == 2
    )


@pytest.mark.parametrize("delay", [-1, 91, 1.5, "7"])
def test_a_disclosure_delay_outside_0_to_90_days_is_refused(
    registry: httpx.Client, auth: Token, slug: str, delay: Any
) -> None:
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": slug,
            "name": "PD",
            "jurisdiction": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
            "policy": {"disclosure_delay_days": delay},
        },
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "params",
    [
        {"near": "-87.9,43.0"},
        {"radius_m": "100"},
        {"near": "-87.9", "radius_m": "100"},
        {"near": "200,43", "radius_m": "100"},
        {"near": "-87.9,43.0", "radius_m": "100", "bbox": "0,0,1,1"},
        {"bbox": "1,0,0,1"},
        {"bbox": "a,b,c,d"},
        {"bbox": "nan,0,1,1"},
        {"polygon": "{"},
        {"polygon": '{"type":"Point","coordinates":[0,0]}'},
        {"polygon": '{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}'},
        {"polygon": '{"type":"Polygon","coordinates":"x"}'},
        {"polygon": '{"type":"Polygon","coordinates":[[[0,0],[1,0]]]}'},
        {"since": "yesterday"},
        {"since": "2026-02-30T00:00:00Z"},
        {"since": "0001-01-01T00:00:00+14:00"},  # before year 1 in UTC
        {"since": "2026-06-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"},
        {"near": "nan,nan", "radius_m": "5"},
        {"near": "1,2", "radius_m": "nan"},
        {"polygon": '{"type":"Polygon","coordinates":[[[0,0],[1e400,0],[1,1],[0,0]]]}'},
        {"polygon": "[" * 900 + "]" * 900},
        {"limit": "-1"},
        {"format": "xml"},
        {"target": "not-a-uuid"},
        {"actor": "a\x01b"},
        {"cursor": "!!"},
        {"cursor": "eyJiZWZvcmUiOiJ4In0"},
        {"cursor": "eyJiZWZvcmUiOjkyMjMzNzIwMzY4NTQ3NzU4MDh9"},  # 2**63: past a bigint
        {"cursor": "eyJiZWZvcmUiOjIuNX0"},  # 2.5
    ],
)
def test_bad_filters_are_a_clear_4xx(
    registry: httpx.Client, auth: Token, trail: Any, params: dict[str, str]
) -> None:
    x = trail[0]
    for path in ("/v1/audit/records", "/v1/audit/export"):
        r = registry.get(path, params=params, headers=auth("auditor", x.slug))
        assert r.status_code in (400, 422), (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"


def test_a_polygon_with_altitudes_finds_what_the_same_polygon_without_them_finds(
    registry: httpx.Client, auth: Token, trail: Any
) -> None:
    """GeoJSON positions may carry an altitude: it is dropped, not a 500 (PostGIS refuses to mix 2D and 3D)."""
    x = trail[0]
    ring = [[x.west, x.south], [x.east, x.south], [x.east, x.north], [x.west, x.north], [x.west, x.south]]
    flat = json.dumps({"type": "Polygon", "coordinates": [ring]})
    high = json.dumps({"type": "Polygon", "coordinates": [[[*p, 176.5] for p in ring]]})
    headers = auth("auditor", x.slug)
    # The trail's own records (each read appends one, with its place) aside.
    ours = {"action": "search.bbox"}
    expected = seqs(all_pages(registry, headers, {"polygon": flat, **ours}))
    assert expected
    assert seqs(all_pages(registry, headers, {"polygon": high, **ours})) == expected
    exported = _export(registry, headers, "jsonl", polygon=high, **ours)
    assert sorted(json.loads(line)["seq"] for line in exported.splitlines()) == sorted(expected)


# --- what the trail keeps of an owner who deleted their data -----------------------------------------------


def test_a_deleted_owners_camera_and_home_positions_leave_no_trace_in_the_trails_place_index(
    registry: httpx.Client, geo: httpx.Client, auth: Token, db: Db, new_agency: NewAgency
) -> None:
    """A record naming a registration or camera (a search listing contact details, a live view) is found by where
    that registration and camera stand while they exist; once the owner deletes their data, nothing in the trail
    or beside it says where they stood, and a place search there no longer finds the record."""
    x = new_agency()
    reg, cred = _camera_owner(registry, x, 0.0)
    cam = reg["properties"]["cameras"][0]["id"]
    lon, lat = x.inside(0.0, 0)
    slon, slat = x.inside(0.001, 0)  # the search's centre: about 80 m east of the camera
    det = auth("investigator", x.slug, sub="det-erase")
    r = geo.get(
        "/v1/cameras/radius",
        params={"lon": slon, "lat": slat, "radius_m": 200, "case_number": "C-77"},
        headers=det,
    )
    assert r.status_code == 200, r.text
    assert [f["properties"].get("contact") is not None for f in r.json()["features"]] == [True]
    (live,) = seed(
        db,
        [
            {
                "agency": x.slug,
                "actor": "det-erase",
                "action": "live_window.view",
                "subject_type": "live_window",
                "subject_id": str(uuid.uuid4()),
                "details": {"registration_id": reg["id"], "cameras": [cam]},
            }
        ],
    )
    search = db.fetchval(
        "SELECT seq FROM audit.events WHERE agency = $1 AND case_number = 'C-77' AND service = 'geo_query'",
        x.slug,
    )
    headers = auth("auditor", x.slug)
    at_home = {"near": f"{lon},{lat}", "radius_m": 5}
    # While the registration exists, both records are found where its camera stands.
    assert {search, live} <= set(seqs(all_pages(registry, headers, at_home)))

    r = registry.delete(f"/v1/registrations/{reg['id']}", headers=owner(cred))
    assert r.status_code == 204, r.text

    # Nothing beside the trail holds a position within 10 m of the camera and the home any more ...
    near_home = db.fetchval(
        "SELECT count(*) FROM audit.event_places WHERE seq = ANY($1::bigint[])"
        " AND ST_DWithin(geography(geom), geography(ST_SetSRID(ST_MakePoint($2, $3), 4326)), 10)",
        [search, live],
        lon,
        lat,
    )
    assert near_home == 0
    # ... and a place search there no longer finds the records; by their pseudonymous ids they still are.
    assert not {search, live} & set(seqs(all_pages(registry, headers, at_home)))
    assert live in seqs(all_pages(registry, headers, {"target": cam}))
    assert search in seqs(all_pages(registry, headers, {"target": reg["id"]}))
    # The search's own area (its centre, which an investigator chose) is the trail's and stays.
    assert search in seqs(all_pages(registry, headers, {"near": f"{slon},{slat}", "radius_m": 5}))


# --- who reads what: every oversight route, every role, own agency and another -----------------------------


def test_the_oversight_role_matrix_every_route_every_role_own_agency_other_agency_and_no_token(
    registry: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    db: Db,
    trail: Any,
) -> None:
    """The auditor of X reads X's trail and nothing of Y's, whatever filter names Y's records (their target,
    their actor, their place); every other role of X or Y, an owner's credential, a token of an unknown agency
    or of none, and no token at all are refused with a problem; an owner's access report takes the owner's
    credential only; the public transparency figures are the same to everyone."""
    x, y, _, _ = trail
    _, x_cred = _camera_owner(registry, x, 0.0)
    y_reg, y_cred = _camera_owner(registry, y, 0.0)
    y_seq = seed(
        db,
        [
            {
                "agency": y.slug,
                "actor": "det-y-only",
                "action": "registration.contact.read",
                "subject_type": "registration",
                "subject_id": y_reg["id"],
                "case_number": "Y-SECRET",
                "area": {"type": "Point", "coordinates": x.inside(0.0, 0)},
                "details": {"registration_id": y_reg["id"]},
            }
        ],
    )
    y_all = {r["seq"] for r in db.fetch("SELECT seq FROM audit.events WHERE agency = $1", y.slug)}
    assert set(y_seq) <= y_all
    lon, lat = x.inside(0.0, 0)
    probes: list[dict[str, Any]] = [
        {},
        {"target": y_reg["id"]},
        {"actor": "det-y-only"},
        {"case_number": "Y-SECRET"},
        {"near": f"{lon},{lat}", "radius_m": 50},
        {"bbox": "-180,-90,180,90"},
    ]

    def problem(r: httpx.Response, status: int) -> None:
        assert r.status_code == status, (r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "Y-SECRET" not in r.text and "det-y-only" not in r.text

    trail_paths = ("/v1/audit/records", "/v1/audit/export")
    # The auditor of X: X's records only, under every probe, in the search and the export.
    aud_x = auth("auditor", x.slug)
    for params in probes:
        found = all_pages(registry, aud_x, params)
        assert {f["properties"]["agency"] for f in found} <= {x.slug}, params
        assert not set(seqs(found)) & y_all, params
        exported = [json.loads(line) for line in _export(registry, aud_x, "jsonl", **params).splitlines()]
        assert {e["agency"] for e in exported} <= {x.slug}, params
        assert not {e["seq"] for e in exported} & y_all, params
    # ... and Y's auditor finds the record above, which X's never did.
    assert set(y_seq) <= set(seqs(all_pages(registry, auth("auditor", y.slug), {"case_number": "Y-SECRET"})))

    # Every other role, of either agency: refused. Unknown agency, no agency, an owner's credential, no token.
    others = [
        r for r in ("investigator", "supervisor", "advocate", "agency_admin", "integrator", "cad", "service")
    ]
    for path in trail_paths:
        for role in others:
            for agency in (x.slug, y.slug):
                problem(
                    registry.get(path, params={"case_number": "Y-SECRET"}, headers=auth(role, agency)), 403
                )
        problem(registry.get(path, headers=auth("auditor", "t-nobody-" + uuid.uuid4().hex[:6])), 403)
        problem(registry.get(path, headers=auth("auditor", None)), 403)
        problem(registry.get(path, headers=owner(y_cred)), 401)
        problem(registry.get(path), 401)

    # The owner's access report: its owner's credential only; any agency token, even an auditor's, is no owner.
    report = f"/v1/registrations/{y_reg['id']}/access-report"
    assert registry.get(report, headers=owner(y_cred)).status_code == 200
    problem(registry.get(report, headers=owner(x_cred)), 404)
    for role in ("auditor", *others):
        for agency in (x.slug, y.slug):
            problem(registry.get(report, headers=auth(role, agency)), 401)
    problem(registry.get(report), 401)

    # The public figures: the same to the public and to every role (nothing of an agency's own is added).
    public = requests_client.get("/v1/transparency", params={"agency": y.slug})
    assert public.status_code == 200, public.text
    for role in ("auditor", *others):
        r = requests_client.get("/v1/transparency", params={"agency": y.slug}, headers=auth(role, x.slug))
        assert r.status_code == 200, r.text
        assert r.json()["agencies"] == public.json()["agencies"]


def test_a_camera_the_agency_may_no_longer_see_cannot_be_located_through_its_trail(
    registry: httpx.Client, auth: Token, db: Db, new_agency: NewAgency
) -> None:
    """A record naming a camera is found where the camera stands now, and only while the agency may see it: once
    the owner moves it and hides it from agencies (paused), the agency's auditor finds the record by its id only,
    neither where it stood nor where it stands."""
    x = new_agency()
    reg, cred = _camera_owner(registry, x, 0.0)
    cam = reg["properties"]["cameras"][0]["id"]
    (seq,) = seed(
        db,
        [
            {
                "agency": x.slug,
                "actor": "det-moved",
                "action": "live_window.view",
                "subject_type": "live_window",
                "subject_id": str(uuid.uuid4()),
                "details": {"registration_id": reg["id"], "cameras": [cam]},
            }
        ],
    )
    headers = auth("auditor", x.slug)

    def found(params: dict[str, Any]) -> set[int]:
        # In pages of 100 (the place's index) and of 1 (the newest records tested one by one): the same.
        big, small = (set(seqs(all_pages(registry, headers, {**params, "limit": n}))) for n in (100, 1))
        assert seq not in big ^ small, params
        return big

    old = x.inside(0.0, 0)
    new = x.inside(0.02, 0.01)  # about 2 km away
    at_old = {"near": f"{old[0]},{old[1]}", "radius_m": 5}
    at_new = {"near": f"{new[0]},{new[1]}", "radius_m": 5}
    assert seq in found(at_old)

    url = f"/v1/registrations/{reg['id']}"
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(
        f"{url}/cameras/{cam}",
        json={"location": {"type": "Point", "coordinates": new}},
        headers={**owner(cred), "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    # Moved, still shared: found where it stands now, not where it stood.
    assert seq in found(at_new)
    assert seq not in found(at_old)

    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json={"status": "paused"}, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    assert seq not in found(at_new)
    assert seq not in found(at_old)
    assert seq in found({"target": cam})


def test_an_export_whose_first_chunk_takes_longer_than_the_statement_timeout_still_arrives_whole(
    registry: httpx.Client, auth: Token, db: Db, database_url: str, trail: Any
) -> None:
    """A filtered export's first chunk may have to gather every match first; held here by a lock the test
    holds on the target index for longer than the services' statement timeout (5 s), the export still arrives
    whole once the lock goes, rather than cut off after its 200 was sent."""
    x = trail[0]
    target = next(r["subject_id"] for r in x_records(db, x) if r["subject_id"])
    want = sorted(r["seq"] for r in x_records(db, x) if r["subject_id"] == target)
    assert want
    waiting_long = (
        "SELECT count(*) FROM pg_locks WHERE relation = 'audit.event_refs'::regclass AND NOT granted"
        " AND waitstart < clock_timestamp() - interval '5.5 seconds'"
    )
    holder = Db(database_url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE audit.event_refs IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(1) as pool:
            export = pool.submit(_export, registry, auth("auditor", x.slug), "jsonl", target=target)
            assert eventually(lambda: db.fetchval(waiting_long) == 1, timeout=20), (
                "the export gave up waiting"
            )
            holder.execute("ROLLBACK")
            lines = export.result(timeout=60).splitlines()
        assert sorted(json.loads(line)["seq"] for line in lines) == want
    finally:
        holder.close()
