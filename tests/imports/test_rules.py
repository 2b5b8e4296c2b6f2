"""Rejections, modes, dry runs and idempotency: features are validated as a single registration is, all-or-nothing
writes nothing when one fails, accept-the-valid writes the rest, and a re-import updates instead of duplicating."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from tests.conftest import Token
from tests.imports.conftest import NO_EMAIL, Importer, collection, feature, feature_at, report, spread
from tests.registry.conftest import NewAgency


def count(db: Any, agency_id: str) -> int:
    return int(
        db.fetchval("SELECT count(*) FROM registry.registrations WHERE agency_id = $1", uuid.UUID(agency_id))
    )


def bad_rows(a: Any) -> list[dict[str, Any]]:
    """Features each with one problem a single registration would also refuse (and one good one first)."""
    lon, lat = a.inside()
    return [
        feature(lon, lat, "ok-1"),
        feature(lon, lat, "bad-email", contact_email="not-an-email"),
        feature(lon, lat, "bad-direction", direction_deg=400),
        feature(a.outside()[0], a.outside()[1], "bad-outside"),
        feature(lon, 95.0, "bad-latitude"),
        feature(lon, lat, "bad-kind", owner_kind="castle"),
        feature(lon, lat, "bad-extra", colour="blue"),
        feature(lon, lat, "ok-1"),  # the same external_id twice in one upload
    ]


def test_all_or_nothing_writes_nothing_and_reports_each_rejected_feature(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    job = run_import(a, collection(bad_rows(a)))
    assert job["status"] == "failed" and "all-or-nothing" in job["error"], job
    assert job["counts"]["read"] == 8 and job["counts"]["rejected"] == 7 and job["counts"]["written"] == 0
    assert count(db, a.id) == 0
    rep = report(registry, auth, a, job)
    by_index = {r["index"]: r for r in rep["rejected"]}
    assert sorted(by_index) == [1, 2, 3, 4, 5, 6, 7]
    assert (
        by_index[1]["pointer"] == "/properties/contact_email" and "not a valid email" in by_index[1]["reason"]
    )
    assert by_index[2]["pointer"] == "/properties/direction_deg"
    assert by_index[3]["pointer"] == "/geometry" and "outside the jurisdiction" in by_index[3]["reason"]
    assert by_index[4]["pointer"].startswith("/geometry") and "latitude" in by_index[4]["reason"]
    assert by_index[5]["pointer"] == "/properties/owner_kind"
    assert by_index[6]["pointer"] == "/properties/colour"
    assert "more than once" in by_index[7]["reason"] and by_index[7]["external_id"] == "ok-1"
    assert all(r["line"] == 1 for r in rep["rejected"])  # the upload is one line of JSON


def test_accept_the_valid_writes_the_valid_features_only(
    new_agency: NewAgency, run_import: Importer, db: Any
) -> None:
    a = new_agency()
    job = run_import(a, collection(bad_rows(a)), mode="valid")
    assert job["status"] == "succeeded", job
    assert job["counts"]["created"] == 1 and job["counts"]["rejected"] == 7 and job["counts"]["written"] == 1
    assert [
        r["external_id"]
        for r in db.fetch(
            "SELECT external_id FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id)
        )
    ] == ["ok-1"]


def test_dry_run_validates_and_counts_but_writes_nothing(
    new_agency: NewAgency, run_import: Importer, db: Any
) -> None:
    a = new_agency()
    job = run_import(a, collection(spread(a, 20)), dry_run=True)
    assert job["status"] == "succeeded" and job["dry_run"] is True
    assert job["counts"]["created"] == 20 and job["counts"]["written"] == 0
    assert count(db, a.id) == 0
    assert db.fetchval("SELECT to_regclass($1)", f"registry_import.stage_{uuid.UUID(job['id']).hex}") is None


def test_reimport_updates_the_same_registrations_without_duplicates(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    first = spread(a, 10, prefix="sync", direction_deg=10, **NO_EMAIL)
    job = run_import(a, collection(first), credentials="report")
    assert job["counts"]["created"] == 10
    before = {
        r["external_id"]: r["id"]
        for r in db.fetch(
            "SELECT external_id, id FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id)
        )
    }
    cred = report(registry, auth, a, job)["credentials"][0]
    # The owner pauses their registration; the nightly sync must not undo that.
    rid = cred["registration_id"]
    r = registry.patch(
        f"/v1/registrations/{rid}",
        json={"status": "paused"},
        headers={"Authorization": f"Bearer {cred['credential']}", "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    second = [
        *spread(a, 10, prefix="sync", direction_deg=20, **NO_EMAIL),
        feature_at(a.inside(), "sync-new", **NO_EMAIL),
    ]
    job2 = run_import(a, collection(second), credentials="report")
    assert job2["status"] == "succeeded", job2
    assert job2["counts"]["created"] == 1 and job2["counts"]["updated"] == 10
    after = {
        r["external_id"]: r["id"]
        for r in db.fetch(
            "SELECT external_id, id FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id)
        )
    }
    assert len(after) == 11 and all(after[k] == v for k, v in before.items())
    cams = db.fetch(
        "SELECT r.id, r.status, r.version, c.direction_deg, c.visible_to FROM registry.cameras c"
        " JOIN registry.registrations r ON r.id = c.registration_id WHERE r.agency_id = $1",
        uuid.UUID(a.id),
    )
    assert len(cams) == 11  # cameras replaced, not added
    for c in cams:
        if str(c["id"]) == rid:
            assert c["status"] == "paused" and c["visible_to"] == [] and c["direction_deg"] == 20
        elif c["direction_deg"] == 20:
            assert c["status"] == "active" and c["visible_to"] == [uuid.UUID(a.id)] and c["version"] == 2
    # Updated registrations keep their credential: only the new one is in the report.
    assert [c["external_id"] for c in report(registry, auth, a, job2)["credentials"]] == ["sync-new"]
    r = registry.get(f"/v1/registrations/{rid}", headers={"Authorization": f"Bearer {cred['credential']}"})
    assert r.status_code == 200


def test_idempotency_key_replays_the_first_job_and_refuses_another_body(
    registry: httpx.Client, new_agency: NewAgency, auth: Token, db: Any
) -> None:
    a = new_agency()
    h = {
        **auth("integrator", a.slug),
        "Content-Type": "application/geo+json",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    body = collection(spread(a, 3))
    first = registry.post("/v1/imports", content=body, headers=h)
    again = registry.post("/v1/imports", content=body, headers=h)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = registry.post("/v1/imports", content=collection(spread(a, 4)), headers=h)
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert db.fetchval("SELECT count(*) FROM registry.import_jobs WHERE agency_id = $1", uuid.UUID(a.id)) == 1


def test_other_agencies_cannot_see_a_job_and_other_roles_cannot_import(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, auth: Token
) -> None:
    a, b = new_agency(), new_agency()
    job = run_import(a, collection(spread(a, 1)))
    assert registry.get(f"/v1/imports/{job['id']}", headers=auth("integrator", b.slug)).status_code == 404
    r = registry.post(
        "/v1/imports", content=b"{}", headers={**auth("investigator", a.slug), "Content-Type": "text/csv"}
    )
    assert r.status_code == 403


def test_import_validation_accepts_and_refuses_exactly_what_a_single_registration_does(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, auth: Token
) -> None:
    a = new_agency()
    lon, lat = a.inside()
    cases: list[dict[str, Any]] = [
        {"contact": {"email": "Dana@Example.ORG"}},
        {"contact": {"email": "dana@localhost"}},
        {"contact": {"email": "dana@@example.org"}},
        {"contact": {"email": "x" * 65 + "@example.org"}},
        {"contact": {"email": "postmaster@example.org"}},
        {"contact": {"email": "a@b\u00fccher.ch"}},
        {"contact": {"phone": "(414) 555-0123"}},
        {"contact": {"phone": "12"}},
        {"contact": {}},
        {"contact": {"email": "a@example.org"}, "owner_kind": "school", "business_name": " "},
        {"contact": {"email": "a@example.org"}, "cameras": [{"fov_deg": 0}]},
        {"contact": {"email": "a@example.org"}, "cameras": [{"range_m": 12}]},
        {"contact": {"email": "a@example.org"}, "cameras": [{"direction_deg": "90"}]},
        {"contact": {"email": "a@example.org"}, "cameras": [{"live_endpoint": "ftp://x"}]},
        {"contact": {"email": "a@example.org"}, "cameras": []},
        {
            "contact": {"email": "a@example.org"},
            "terms": {"version": "2026-01", "accepted_at": "2026-01-05T14:00:00"},
        },
        {"contact": {"email": "a@example.org"}, "share_with": ["no-such-agency-x"]},
        {"contact": {"email": "a@example.org"}, "address": "bad\u0000address"},
        {"contact": {"email": "a@example.org"}, "notes_for_investigators": "n" * 2001},
    ]
    single = []
    for case in cases:
        r = registry.post(
            "/v1/registrations",
            json={"agency": a.slug, "location": {"type": "Point", "coordinates": [lon, lat]}, **case},
        )
        assert r.status_code in (201, 422), r.text
        single.append(r.status_code == 201)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"external_id": f"eq-{i}", **case},
        }
        for i, case in enumerate(cases)
    ]
    job = run_import(a, orjson.dumps({"type": "FeatureCollection", "features": features}), mode="valid")
    rejected = {r["index"] for r in report(registry, auth, a, job)["rejected"]}
    imported = [i not in rejected for i in range(len(cases))]
    assert imported == single
    assert single.count(True) >= 4 and single.count(False) >= 10  # the cases do exercise both answers


def test_a_report_is_deleted_a_month_after_its_job_ended_and_the_job_stays(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    job = run_import(a, collection(bad_rows(a)), mode="valid")
    assert len(report(registry, auth, a, job)["rejected"]) == 7
    jid = uuid.UUID(job["id"])
    h = auth("integrator", a.slug)

    db.execute("UPDATE registry.import_jobs SET finished_at = now() - interval '29 days' WHERE id = $1", jid)
    assert registry.get(f"/v1/imports/{jid}/report", headers=h).status_code == 200  # still within its month

    db.execute("UPDATE registry.import_jobs SET finished_at = now() - interval '31 days' WHERE id = $1", jid)
    gone = registry.get(f"/v1/imports/{jid}/report", headers=h)
    assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json", gone.text
    assert "30 days" in gone.json()["detail"]
    assert db.fetchval("SELECT count(*) FROM registry.import_rejections WHERE job_id = $1", jid) == 0
    kept = registry.get(f"/v1/imports/{jid}", headers=h)
    assert kept.status_code == 200 and kept.json()["counts"]["rejected"] == 7
