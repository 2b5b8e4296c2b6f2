"""A re-import changes what changed and nothing else: the same file again leaves each registration exactly as it
was (its rows, its representation, its ETag and the owner's recorded consent), and a new owner kind reaches
every camera of the registration, whichever path changes it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Token
from tests.imports.conftest import NO_EMAIL, Importer, collection, feature, report
from tests.registry.conftest import Agency, NewAgency


def _snapshot(registry: httpx.Client, db: Any, rid: str, credential: str) -> dict[str, Any]:
    """Everything stored for the registration, as the database's text of each row, and its representation."""
    key = uuid.UUID(rid)
    r = registry.get(f"/v1/registrations/{rid}", headers={"Authorization": f"Bearer {credential}"})
    assert r.status_code == 200, r.text
    return {
        "registration": db.fetchval("SELECT r::text FROM registry.registrations r WHERE r.id = $1", key),
        "cameras": [
            row["c"]
            for row in db.fetch(
                "SELECT c::text AS c FROM registry.cameras c WHERE c.registration_id = $1 ORDER BY c.id", key
            )
        ],
        "shares": [
            row["s"]
            for row in db.fetch(
                "SELECT s::text AS s FROM registry.registration_shares s WHERE s.registration_id = $1"
                " ORDER BY s.agency_id",
                key,
            )
        ],
        "etag": r.headers["etag"],
        "body": r.content,
    }


def _shop(a: Agency, **props: Any) -> dict[str, Any]:
    at = a.inside()
    props.setdefault("terms_version", "2026-01")
    return feature(
        at[0],
        at[1],
        "shop-1",
        owner_kind="business",
        business_name="Water Street Bakery",
        address="1 Water Street",
        notes_for_investigators="ring the back bell",
        cameras=[
            {"direction_deg": 10, "covers": ["street"]},
            {"location": {"type": "Point", "coordinates": a.inside(0.0001, 0)}, "direction_deg": 200},
        ],
        **{**NO_EMAIL, **props},
    )


def test_reimporting_the_same_file_changes_nothing_byte_for_byte(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    upload = collection([_shop(a)])
    job = run_import(a, upload, credentials="report")
    assert job["status"] == "succeeded" and job["counts"]["created"] == 1, job
    cred = report(registry, auth, a, job)["credentials"][0]
    rid = cred["registration_id"]
    before = _snapshot(registry, db, rid, cred["credential"])
    accepted = db.fetchval(
        "SELECT terms_accepted_at FROM registry.registrations WHERE id = $1", uuid.UUID(rid)
    )
    assert accepted is not None

    for _ in range(2):  # a nightly sync of an unchanged list
        again = run_import(a, upload, credentials="report")
        assert again["status"] == "succeeded" and again["counts"]["updated"] == 1, again
        assert _snapshot(registry, db, rid, cred["credential"]) == before

    # A new terms version is a new consent: its time moves (to the import's), and the version with it.
    job = run_import(a, collection([_shop(a, terms_version="2026-07")]), credentials="report")
    assert job["status"] == "succeeded", job
    row = _one(
        db,
        "SELECT terms_version, terms_accepted_at FROM registry.registrations WHERE id = $1",
        uuid.UUID(rid),
    )
    assert row["terms_version"] == "2026-07" and row["terms_accepted_at"] > accepted
    assert _snapshot(registry, db, rid, cred["credential"])["etag"] != before["etag"]


def test_a_reimport_changing_only_a_camera_moves_the_version_but_keeps_the_consent_time(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    first = _shop(a)
    job = run_import(a, collection([first]), credentials="report")
    cred = report(registry, auth, a, job)["credentials"][0]
    rid = cred["registration_id"]
    before = _snapshot(registry, db, rid, cred["credential"])
    stored = "SELECT terms_accepted_at, address_enc, updated_at FROM registry.registrations WHERE id = $1"
    was = _one(db, stored, uuid.UUID(rid))

    changed = _shop(a)
    changed["properties"]["cameras"][1]["direction_deg"] = 210
    job = run_import(a, collection([changed]), credentials="report")
    assert job["status"] == "succeeded" and job["counts"]["updated"] == 1, job
    after = _snapshot(registry, db, rid, cred["credential"])
    assert after["etag"] != before["etag"]  # the representation changed: so does its ETag
    now = _one(db, stored, uuid.UUID(rid))
    assert now["terms_accepted_at"] == was["terms_accepted_at"]  # the same terms: the owner's consent stays
    assert bytes(now["address_enc"]) == bytes(was["address_enc"]) and now["updated_at"] > was["updated_at"]
    dirs = db.fetch(
        "SELECT direction_deg FROM registry.cameras WHERE registration_id = $1 ORDER BY import_position",
        uuid.UUID(rid),
    )
    assert [d["direction_deg"] for d in dirs] == [10, 210]


def _one(db: Any, sql: str, *args: Any) -> Any:
    rows = db.fetch(sql, *args)
    assert len(rows) == 1
    return rows[0]


def _kinds(db: Any, rid: str) -> dict[str, str]:
    rows = db.fetch("SELECT id, owner_kind FROM registry.cameras WHERE registration_id = $1", uuid.UUID(rid))
    return {str(r["id"]): r["owner_kind"] for r in rows}


def _found(geo: httpx.Client, auth: Token, a: Agency, kind: str) -> set[str]:
    lon, lat = a.inside()
    r = geo.get(
        "/v1/cameras/radius",
        params={"lon": lon, "lat": lat, "radius_m": 500, "limit": 1000, "owner_kind": kind},
        headers=auth("investigator", a.slug),
    )
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def test_a_new_owner_kind_reaches_every_camera_by_reimport_and_by_the_owners_update(
    registry: httpx.Client,
    geo: httpx.Client,
    new_agency: NewAgency,
    run_import: Importer,
    db: Any,
    auth: Token,
) -> None:
    a = new_agency()
    at = a.inside()
    two = [{"direction_deg": 10}, {"direction_deg": 20}]
    job = run_import(
        a,
        collection([feature(at[0], at[1], "kind-1", owner_kind="residential", cameras=two, **NO_EMAIL)]),
        credentials="report",
    )
    cred = report(registry, auth, a, job)["credentials"][0]
    rid, owner = cred["registration_id"], {"Authorization": f"Bearer {cred['credential']}"}
    # The owner adds a camera of their own (no place in the integrator's list).
    r = registry.post(f"/v1/registrations/{rid}/cameras", json={"label": "side door"}, headers=owner)
    assert r.status_code == 201, r.text
    cameras = set(_kinds(db, rid))
    assert len(cameras) == 3

    def check(kind: str) -> None:
        assert set(_kinds(db, rid).values()) == {kind}, _kinds(db, rid)
        assert cameras <= _found(geo, auth, a, kind)
        others = {"residential", "business", "school"} - {kind}
        assert not cameras & _found(geo, auth, a, ",".join(sorted(others)))

    check("residential")
    # The nightly sync lists one camera only, with a new owner kind: every camera of the registration follows.
    one = [{"direction_deg": 10}]
    job = run_import(
        a,
        collection([feature(at[0], at[1], "kind-1", owner_kind="business", cameras=one, **NO_EMAIL)]),
        credentials="report",
    )
    assert job["status"] == "succeeded" and job["counts"]["updated"] == 1, job
    check("business")
    # The owner's own update.
    etag = registry.get(f"/v1/registrations/{rid}", headers=owner).headers["etag"]
    r = registry.patch(
        f"/v1/registrations/{rid}", json={"owner_kind": "school"}, headers={**owner, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    check("school")
    # And an import again.
    job = run_import(
        a,
        collection([feature(at[0], at[1], "kind-1", owner_kind="residential", cameras=one, **NO_EMAIL)]),
        credentials="report",
    )
    assert job["status"] == "succeeded", job
    check("residential")
