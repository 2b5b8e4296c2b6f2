"""Crypto-shredding (shared/keystore.py, docs/decisions/0001-deletion-on-disk.md): what an owner writes that no
search reads is sealed under a data key of their registration, kept in a key store apart from the main database
and destroyed when the registration is deleted. A copy of the main database taken before the deletion (a backup
restored later) then holds texts nobody can open, with any of the services' settings."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from services.requests_api.owner_texts import evidence_context, note_context
from shared.crypto import keyring
from shared.keystore import KeyStore, kek_ring, wrap_context
from tests.conftest import Suite
from tests.requests.conftest import Flow, NewOwner, Owner, eventually
from tests.support import Db, free_port, start_server

REG_TEXTS = ("business_name", "contact_hours", "notes_for_investigators")


def _store(url: str) -> KeyStore:
    """The key store as a service opens it: the URL and key-encryption key of the services' settings."""
    return KeyStore(url, kek_ring(), "tests")


def _keys(url: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    async def go() -> dict[uuid.UUID, Any]:
        store = _store(url)
        try:
            return await store.keys(ids)
        finally:
            await store.close()

    return asyncio.run(go())


def _owner_with_texts(new_owner: NewOwner, flow: Flow, tag: str) -> Owner:
    return new_owner(
        flow.agency,
        flow.agency.centre,
        contact={"email": f"o-{tag}@example.org", "hours": f"hours-{tag}"},
        owner_kind="business",
        business_name=f"business-{tag}",
        notes_for_investigators=f"notes-{tag}",
    )


def _answer_and_upload(flow: Flow, owner: Owner, request_id: str, tag: str) -> str:
    r = flow.client.post(
        f"/v1/owner/requests/{request_id}/answer",
        json={"answer": "accept", "note": f"answer-{tag}"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    up = flow.client.post(
        f"/v1/owner/evidence/{request_id}",
        files={"file": (f"file-{tag}.mp4", b"v" * 256, "video/mp4")},
        data={"description": f"description-{tag}"},
        headers=owner.headers,
    )
    assert up.status_code == 201, up.text
    assert (up.json()["filename"], up.json()["description"]) == (f"file-{tag}.mp4", f"description-{tag}")
    return str(up.json()["id"])


def _sealed_copy(db: Db, rid: str, evidence_id: str) -> dict[str, Any]:
    """What a backup of the main database holds of the owner: the sealed columns, byte for byte."""
    reg = db.fetch(
        "SELECT business_name_enc, contact_hours_enc, notes_for_investigators_enc FROM registry.registrations"
        " WHERE id = $1",
        uuid.UUID(rid),
    )[0]
    note = db.fetch(
        "SELECT e.target_id, e.note, e.note_enc FROM requests.events e JOIN requests.targets t ON t.id = e.target_id"
        " WHERE t.registration_id = $1 AND e.note_enc IS NOT NULL",
        uuid.UUID(rid),
    )[0]
    ev = db.fetch(
        "SELECT filename_enc, original_filename_enc, description_enc FROM requests.evidence WHERE id = $1",
        uuid.UUID(evidence_id),
    )[0]
    return {"registration": dict(reg), "note": dict(note), "evidence": dict(ev)}


def test_deleting_a_registration_destroys_its_key_and_every_copy_of_its_texts_stays_sealed(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db, keystore_url: str
) -> None:
    tag, other_tag = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
    owner = _owner_with_texts(new_owner, flow, tag)
    other = _owner_with_texts(new_owner, flow, other_tag)
    request_id = flow.sent()["id"]
    evidence_id = _answer_and_upload(flow, owner, request_id, tag)
    other_evidence = _answer_and_upload(flow, other, request_id, other_tag)
    rid, other_rid = uuid.UUID(owner.registration_id), uuid.UUID(other.registration_id)

    # Those allowed read the texts as before.
    props = registry.get(f"/v1/registrations/{rid}", headers=owner.headers).json()["properties"]
    assert (props["business_name"], props["contact"]["hours"], props["notes_for_investigators"]) == (
        f"business-{tag}",
        f"hours-{tag}",
        f"notes-{tag}",
    )
    notes = [
        e["note"]
        for e in flow.client.get(f"/v1/requests/{request_id}/events", headers=flow.inv()).json()["events"]
    ]
    assert f"answer-{tag}" in str(notes) and f"answer-{other_tag}" in str(notes)

    # The main database holds them only sealed; the key store holds the key only wrapped.
    copy = _sealed_copy(db, str(rid), evidence_id)
    assert copy["note"]["note"] is None
    for group in copy.values():
        for value in group.values():
            assert tag not in str(value) and tag.encode() not in (value if isinstance(value, bytes) else b"")
    keys = Db(keystore_url)
    try:
        wrapped = keys.fetchval("SELECT wrapped FROM data_keys WHERE registration_id = $1", rid)
        raw = _keys(keystore_url, [rid])[rid].raw
        assert raw not in wrapped and raw.hex().encode() not in wrapped  # never a plain key in the store
        assert kek_ring().open(wrapped, wrap_context(rid)) == raw.hex()  # wrapped under the settings' KEK
        key = _keys(keystore_url, [rid])[rid]
        assert key.open(copy["registration"]["business_name_enc"], f"registration:{rid}:business_name") == (
            f"business-{tag}"
        )
        assert key.open(copy["note"]["note_enc"], note_context(copy["note"]["target_id"])) == f"answer-{tag}"

        assert registry.delete(f"/v1/registrations/{rid}", headers=owner.headers).status_code == 204

        # At once: the key is gone from the store, and nothing opens the copy taken before the deletion.
        assert keys.fetchval("SELECT count(*) FROM data_keys WHERE registration_id = $1", rid) == 0
        assert _keys(keystore_url, [rid]) == {}
        ring = keyring()  # the services' own key ring does not open them either
        for column in REG_TEXTS:
            with pytest.raises(Exception):  # noqa: B017 - any failure: the point is that nothing opens it
                ring.open(copy["registration"][column + "_enc"], f"registration:{rid}:{column}")
        with pytest.raises(Exception):  # noqa: B017
            ring.open(
                copy["evidence"]["description_enc"], evidence_context(uuid.UUID(evidence_id), "description")
            )

        # requests_api reads them as gone from the same moment (before its worker erases the rows), for this
        # owner only; the other owner's texts and key are untouched.
        history = flow.client.get(f"/v1/requests/{request_id}/events", headers=flow.inv()).json()["events"]
        assert f"answer-{tag}" not in str(history) and f"answer-{other_tag}" in str(history)
        items = {
            e["id"]: e
            for e in flow.client.get(f"/v1/requests/{request_id}/evidence", headers=flow.inv()).json()[
                "items"
            ]
        }
        assert (items[evidence_id]["filename"], items[evidence_id]["description"]) == (None, None)
        assert (items[other_evidence]["filename"], items[other_evidence]["description"]) == (
            f"file-{other_tag}.mp4",
            f"description-{other_tag}",
        )
        download = flow.client.get(f"/v1/evidence/{evidence_id}/content", headers=flow.inv())
        assert download.status_code == 200 and tag not in download.headers["content-disposition"]
        assert other_rid in _keys(keystore_url, [rid, other_rid])
        props = registry.get(f"/v1/registrations/{other_rid}", headers=other.headers).json()["properties"]
        assert props["notes_for_investigators"] == f"notes-{other_tag}"

        # The worker erases the rows too, and destroys the key again should one have been made since.
        def erased() -> bool:
            return (
                db.fetchval(
                    "SELECT count(*) FROM requests.evidence WHERE id = $1 AND description_enc IS NULL",
                    uuid.UUID(evidence_id),
                )
                == 1
            )

        assert eventually(erased, timeout=30)
    finally:
        keys.close()


def test_a_key_created_after_the_deletion_is_destroyed_by_the_worker(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db, keystore_url: str, run_job: Any
) -> None:
    """An answer in flight when its owner deletes the registration holds the owner's target and may make a key
    after registry_api destroyed theirs: the worker, which cannot pass that deletion in the feed while the target
    is held, destroys the key once it can."""
    owner = new_owner(flow.agency, flow.agency.centre)
    rid = uuid.UUID(owner.registration_id)
    flow.sent()
    assert registry.delete(f"/v1/registrations/{rid}", headers=owner.headers).status_code == 204
    seq = db.fetchval("SELECT seq FROM registry.deletions WHERE registration_id = $1", rid)
    # The worker beside the services has read past it (so it will not look at it again) ...
    position = "SELECT coalesce(max(position), 0) FROM requests.feeds WHERE name = 'registry.deletions'"
    assert eventually(lambda: db.fetchval(position) >= seq, timeout=30)
    # ... and a run of the job reads it afresh from its own feed, as the next run after a held target would.
    feed = f"test.{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO requests.feeds (name, position) VALUES ($1, $2)", feed, seq - 1)

    async def late_key() -> None:
        store = _store(keystore_url)
        try:
            await store.ensure([rid])
        finally:
            await store.close()

    asyncio.run(late_key())
    assert rid in _keys(keystore_url, [rid])
    assert run_job(feed) >= 1
    assert rid not in _keys(keystore_url, [rid])


def test_a_key_store_out_of_reach_is_a_503_and_no_text_is_written(
    suite: Suite, flow: Flow, new_owner: NewOwner, db: Db, auth: Any
) -> None:
    env = dict(
        suite.env,
        CANVASS_KEYSTORE_URL=f"postgresql://canvass:canvass@127.0.0.1:{free_port()}/nowhere",
        REGISTRY_API_URL=suite.registry.url,
        GEO_QUERY_URL=suite.geo.url,
    )
    registry = start_server("registry_api", env)
    requests_api = start_server("requests_api", env)
    try:
        tag = uuid.uuid4().hex[:10]
        body = {
            "agency": flow.agency.slug,
            "location": {"type": "Point", "coordinates": flow.agency.centre},
            "contact": {"email": f"o-{tag}@example.org"},
            "notes_for_investigators": f"notes-{tag}",
        }
        with httpx.Client(base_url=registry.url) as client:
            r = client.post("/v1/registrations", json=body)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["status"] == 503
            # A registration without free texts needs no key: the store being away does not stop it.
            plain = client.post(
                "/v1/registrations", json={k: v for k, v in body.items() if k != "notes_for_investigators"}
            )
            assert plain.status_code == 201, plain.text
        assert (
            db.fetchval(
                "SELECT count(*) FROM registry.registrations WHERE agency_id = (SELECT id FROM registry.agencies"
                " WHERE slug = $1)",
                flow.agency.slug,
            )
            == 1
        )

        owner = new_owner(flow.agency, flow.agency.centre)
        request_id = flow.sent()["id"]
        with httpx.Client(base_url=requests_api.url) as client:
            r = client.post(
                f"/v1/owner/requests/{request_id}/answer",
                json={"answer": "accept", "note": f"answer-{tag}"},
                headers=owner.headers,
            )
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        assert (
            db.fetchval(
                "SELECT count(*) FROM requests.events e JOIN requests.targets t ON t.id = e.target_id"
                " WHERE t.registration_id = $1 AND e.actor_role = 'owner'",
                uuid.UUID(owner.registration_id),
            )
            == 0
        )
        assert db.fetchval(
            "SELECT state FROM requests.targets WHERE registration_id = $1", uuid.UUID(owner.registration_id)
        ) in ("pending", "notified")
        # A deletion whose key cannot be destroyed is refused and deletes nothing: the owner retries later, and
        # no backup is left holding texts whose key outlived the registration.
        with httpx.Client(base_url=registry.url) as client:
            gone = client.delete(f"/v1/registrations/{owner.registration_id}", headers=owner.headers)
            assert gone.status_code == 503, gone.text
        assert (
            db.fetchval(
                "SELECT count(*) FROM registry.registrations WHERE id = $1", uuid.UUID(owner.registration_id)
            )
            == 1
        )
    finally:
        registry.stop()
        requests_api.stop()


def test_the_answer_kept_for_a_retry_is_sealed_under_the_registrations_key_and_still_replays(
    flow: Flow, registry: httpx.Client, db: Db, keystore_url: str
) -> None:
    """A create's answer kept for its Idempotency-Key repeats the owner's texts: sealed under the registration's
    data key too (a backup must not keep them readable with the service's key ring alone), and replayed as
    before while the registration lives."""
    tag = uuid.uuid4().hex[:10]
    body = {
        "agency": flow.agency.slug,
        "location": {"type": "Point", "coordinates": flow.agency.centre},
        "contact": {"email": f"o-{tag}@example.org"},
        "notes_for_investigators": f"notes-{tag}",
    }
    key = {"Idempotency-Key": f"k-{tag}"}
    first = registry.post("/v1/registrations", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = registry.post("/v1/registrations", json=body, headers=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    rid = uuid.UUID(first.json()["id"])
    stored = bytes(db.fetchval("SELECT body FROM registry.idempotency_keys WHERE registration_id = $1", rid))
    with pytest.raises(Exception):  # noqa: B017 - the service's key ring alone opens nothing of it
        keyring().open(stored, "anything")
    assert tag.encode() not in stored
    assert _keys(keystore_url, [rid])[rid].open(stored[17:], f"registration:{rid}:replay") is not None
