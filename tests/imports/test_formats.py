"""Each format lands registrations in the integrator's agency program, stored as a single registration is."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from shared.crypto import keyring
from tests.conftest import Token
from tests.imports.conftest import (
    CSV,
    NO_EMAIL,
    SEQ,
    Importer,
    collection,
    feature_at,
    mailed_credential,
    report,
    sequence,
    spread,
)
from tests.registry.conftest import NewAgency
from tests.support import Mailbox


def test_feature_collection_creates_registrations_in_the_agency_program(
    registry: httpx.Client,
    new_agency: NewAgency,
    run_import: Importer,
    db: Any,
    auth: Token,
    mailbox: Mailbox,
) -> None:
    a = new_agency()
    props = {"owner_kind": "business", "business_name": "Shop", "direction_deg": 90}
    features = [*spread(a, 25, prefix="fc", **props), *spread(a, 5, prefix="fc-phone", **props, **NO_EMAIL)]
    job = run_import(a, collection(features), credentials="report")
    assert job["status"] == "succeeded", job
    assert job["counts"] == {
        "read": 30,
        "valid": 30,
        "rejected": 0,
        "created": 30,
        "updated": 0,
        "written": 30,
    }
    rows = db.fetch(
        "SELECT r.id, r.external_id, r.source, r.registered_by, r.owner_kind, r.contact_email_enc,"
        " r.contact_email_index, ST_X(r.location) AS lon, ST_Y(r.location) AS lat,"
        " (SELECT array_agg(c.visible_to) FROM registry.cameras c WHERE c.registration_id = r.id) AS vis,"
        " (SELECT array_agg(c.direction_deg) FROM registry.cameras c WHERE c.registration_id = r.id) AS dir"
        " FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id WHERE a.slug = $1"
        " ORDER BY r.external_id",
        a.slug,
    )
    assert len(rows) == 30
    by_id = {f["properties"]["external_id"]: f for f in features}
    ring = keyring()
    for r in rows:
        f = by_id[r["external_id"]]
        assert (r["lon"], r["lat"]) == tuple(f["geometry"]["coordinates"])
        assert (
            r["source"] == "import" and r["registered_by"] == "integrator-1" and r["owner_kind"] == "business"
        )
        email = ring.open(r["contact_email_enc"], f"registration:{r['id']}:email")
        assert email == f["properties"].get("contact_email")
        if email is not None:
            assert bytes(r["contact_email_index"]) == ring.blind_index(email)
        assert r["vis"] == [[uuid.UUID(a.id)]] and r["dir"] == [90]
    # The report holds the credentials of the owners without an email only; each opens its registration.
    rep = report(registry, auth, a, job)
    assert sorted(c["external_id"] for c in rep["credentials"]) == [f"fc-phone-{i}" for i in range(5)]
    assert rep["rejected"] == []
    ids = {r["external_id"]: str(r["id"]) for r in rows}
    for c in rep["credentials"]:
        assert c["registration_id"] == ids[c["external_id"]]
    c = rep["credentials"][0]
    r = registry.get(
        f"/v1/registrations/{c['registration_id']}", headers={"Authorization": f"Bearer {c['credential']}"}
    )
    assert r.status_code == 200 and r.json()["properties"]["source"] == "import"
    # Shown once: the second download has none, and none in the report is stored any more.
    assert report(registry, auth, a, job)["credentials"] == []
    pending = "SELECT count(*) FROM registry.import_credentials WHERE job_id = $1 AND delivery = $2"
    assert db.fetchval(pending, uuid.UUID(job["id"]), "report") == 0
    # The owners with an email are mailed theirs; each mailed one is deleted.
    assert mailed_credential(mailbox, "fc-0@example.org").startswith(f"cvo_{uuid.UUID(ids['fc-0']).hex}_")
    deadline = time.monotonic() + 30
    while db.fetchval(pending, uuid.UUID(job["id"]), "email") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.fetchval(pending, uuid.UUID(job["id"]), "email") == 0


def test_geojson_text_sequence_with_several_cameras_per_registration(
    new_agency: NewAgency, run_import: Importer, db: Any
) -> None:
    a = new_agency()
    f = feature_at(
        a.inside(),
        "seq-1",
        contact_email=None,
        cameras=[
            {"location": {"type": "Point", "coordinates": a.inside(0.0001, 0)}, "direction_deg": 10},
            {"direction_deg": 200, "covers": ["street"]},
        ],
    )
    f["properties"]["contact"] = {"phone": "(414) 555-0123", "name": "Dana"}
    job = run_import(a, sequence([f, feature_at(a.inside(0.001, 0), "seq-2")]), SEQ)
    assert job["status"] == "succeeded" and job["counts"]["created"] == 2, job
    cams = db.fetch(
        "SELECT ST_X(c.geom) AS lon, c.direction_deg, c.covers FROM registry.cameras c"
        " JOIN registry.registrations r ON r.id = c.registration_id WHERE r.external_id = 'seq-1'"
        " AND r.agency_id = $1 ORDER BY c.created_at",
        uuid.UUID(a.id),
    )
    assert [(c["lon"], c["direction_deg"], c["covers"]) for c in cams] == [
        (a.inside(0.0001, 0)[0], 10, []),
        (a.inside()[0], 200, ["street"]),
    ]


def test_csv_with_lon_lat_columns(new_agency: NewAgency, run_import: Importer, db: Any) -> None:
    a = new_agency()
    lon, lat = a.inside()
    body = (
        "external_id,lon,lat,email,phone,owner_kind,direction_deg,range_m,shares_history,covers\n"
        f"c-1,{lon},{lat},one@example.org,,residential,45,12.5,false,street;alley\n"
        f"c-2,{lon},{lat},,(414) 555-0199,business,,,,\n"
    ).encode()
    job = run_import(a, body, CSV)
    assert job["status"] == "succeeded" and job["counts"]["created"] == 2, job
    rows = db.fetch(
        "SELECT r.external_id, r.owner_kind, c.direction_deg, c.range_m, c.shares_history, c.covers"
        " FROM registry.registrations r JOIN registry.cameras c ON c.registration_id = r.id"
        " WHERE r.agency_id = $1 ORDER BY r.external_id",
        uuid.UUID(a.id),
    )
    assert [tuple(r) for r in rows] == [
        ("c-1", "residential", 45, 12.5, False, ["street", "alley"]),
        ("c-2", "business", None, None, True, []),
    ]
