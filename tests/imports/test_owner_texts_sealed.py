"""An import seals what owners wrote (business name, contact hours, notes) under each registration's data key in
the key store (shared/keystore.py), creating a chunk's keys in one round trip, not one per row; a re-import that
changes nothing keeps the very ciphertexts, so the registrations stay as they were."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Token
from tests.imports.conftest import Importer, collection, spread
from tests.registry.conftest import NewAgency
from tests.support import Db, open_owner_text

N = 120


def _registrations(db: Db, agency_id: str) -> list[Any]:
    return db.fetch(
        "SELECT id, version, business_name_enc, contact_hours_enc, notes_for_investigators_enc"
        " FROM registry.registrations WHERE agency_id = $1 ORDER BY id",
        uuid.UUID(agency_id),
    )


def test_an_import_creates_a_chunks_data_keys_in_one_round_trip_and_a_reimport_keeps_the_ciphertexts(
    new_agency: NewAgency, run_import: Importer, db: Db, keystore_url: str, auth: Token
) -> None:
    a = new_agency()
    tag = uuid.uuid4().hex[:10]
    features = spread(
        a,
        N,
        owner_kind="business",
        business_name=f"Shop {tag}",
        notes_for_investigators=f"Side door {tag}",
        contact_hours="9-5",
    )
    job = run_import(a, collection(features))
    assert job["status"] == "succeeded" and job["counts"]["created"] == N, job
    rows = _registrations(db, a.id)
    assert len(rows) == N
    first = rows[0]
    rid = first["id"]
    assert (
        open_owner_text(rid, first["business_name_enc"], f"registration:{rid}:business_name") == f"Shop {tag}"
    )
    assert open_owner_text(rid, first["contact_hours_enc"], f"registration:{rid}:contact_hours") == "9-5"
    assert (
        open_owner_text(
            rid, first["notes_for_investigators_enc"], f"registration:{rid}:notes_for_investigators"
        )
        == f"Side door {tag}"
    )
    assert all(tag.encode() not in bytes(r["notes_for_investigators_enc"]) for r in rows)

    keys = Db(keystore_url)
    try:
        # A key row's created_at is its transaction's start: one value for the whole chunk is one round trip.
        stats = keys.fetch(
            "SELECT count(*) AS n, count(DISTINCT created_at) AS trips FROM data_keys"
            " WHERE registration_id = ANY($1::uuid[])",
            [r["id"] for r in rows],
        )[0]
    finally:
        keys.close()
    assert (stats["n"], stats["trips"]) == (N, 1)

    again = run_import(a, collection(features))
    assert again["status"] == "succeeded" and again["counts"]["created"] == 0, again
    after = _registrations(db, a.id)
    assert [dict(r) for r in after] == [dict(r) for r in rows]  # same ciphertexts, same versions


def test_registrations_take_their_keys_from_batches_not_one_round_trip_each(
    new_agency: NewAgency, registry: Any, db: Db, keystore_url: str
) -> None:
    a = new_agency()
    ids = []
    for i in range(12):
        body = {
            "agency": a.slug,
            "location": {"type": "Point", "coordinates": list(a.centre)},
            "contact": {"email": f"batch-{uuid.uuid4().hex[:8]}@example.org", "hours": "evenings"},
            "notes_for_investigators": f"note {i}",
        }
        r = registry.post("/v1/registrations", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["properties"]["notes_for_investigators"] == f"note {i}"
        ids.append(uuid.UUID(r.json()["id"]))
    keys = Db(keystore_url)
    try:
        trips = keys.fetchval(
            "SELECT count(DISTINCT created_at) FROM data_keys WHERE registration_id = ANY($1::uuid[])", ids
        )
        assert (
            keys.fetchval("SELECT count(*) FROM data_keys WHERE registration_id = ANY($1::uuid[])", ids) == 12
        )
    finally:
        keys.close()
    assert trips <= 2  # one batch of fresh keys, or the end of one and the start of the next
