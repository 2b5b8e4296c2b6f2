"""An owner who deletes their registration leaves nothing they wrote in the footage requests: registry_api's feed
of deletions (for Canvass services only, in order, paged, never skipping a deletion still committing) is read by
the requests worker, which erases the owner's notes from the requests' histories and the description and file
name of their uploads, and moves its cursor only when that is done (registry_api down, or a target held by an
answer in flight, leaves it where it was). An owner who answers after deleting, with a credential requests_api
saw a moment before, is refused when the answer carries free text."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import httpx
import pytest

from shared.auth import mint_token
from tests.conftest import Token
from tests.requests.conftest import OFFSET, Flow, NewOwner, Owner, eventually, stored_evidence_texts
from tests.support import Db, free_port

FEED = "/v1/deleted-registrations"
NOTE = "Dana Reyes, 12 Elm Street: call me on 555-0142 after 6pm, the side camera saw the van."


def _service() -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token("service", None, sub="requests_api")}


def _delete(registry: httpx.Client, owner: Owner) -> None:
    r = registry.delete(f"/v1/registrations/{owner.registration_id}", headers=owner.headers)
    assert r.status_code == 204, r.text


def _seq(db: Db, owner: Owner) -> int:
    return int(
        db.fetchval("SELECT seq FROM registry.deletions WHERE registration_id = $1", owner.registration_id)
    )


def _answer(flow: Flow, rid: str, owner: Owner, answer: str, note: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"answer": answer} | ({"note": note} if note else {})
    return flow.client.post(f"/v1/owner/requests/{rid}/answer", json=body, headers=owner.headers)


def _history(flow: Flow, rid: str) -> list[dict[str, Any]]:
    r = flow.client.get(f"/v1/requests/{rid}/events", headers=flow.inv())
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


# --- registry_api's feed ---------------------------------------------------------------------------------


def test_the_feed_of_deletions_is_for_canvass_services_only(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, auth: Token
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    assert registry.get(FEED).status_code == 401
    assert registry.get(FEED, headers=owner.headers).status_code == 401
    for role in ("investigator", "supervisor", "advocate", "agency_admin", "integrator", "cad", "auditor"):
        r = registry.get(FEED, headers=auth(role, flow.agency.slug))
        assert r.status_code == 403, (role, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    ok = registry.get(FEED, headers=_service())
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"


def test_the_feed_pages_in_order_after_a_cursor(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    owners = [new_owner(flow.agency, flow.agency.near(dx=OFFSET * i)) for i in range(3)]
    for o in owners:
        _delete(registry, o)
    seqs = [_seq(db, o) for o in owners]
    assert seqs == sorted(seqs)
    after, seen = seqs[0] - 1, []
    while True:
        r = registry.get(FEED, params={"after": after, "limit": 1}, headers=_service())
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["deletions"]) <= 1
        if not page["deletions"]:
            assert page["next_after"] == after
            break
        (d,) = page["deletions"]
        assert d["seq"] > after and page["next_after"] == d["seq"] and d["deleted_at"]
        assert set(d) == {"seq", "registration_id", "deleted_at"}  # the random id and the time, nothing else
        seen.append(d["registration_id"])
        after = page["next_after"]
    assert seen[:3] == [o.registration_id for o in owners]
    whole = registry.get(FEED, params={"after": seqs[0] - 1}, headers=_service()).json()
    assert [d["registration_id"] for d in whole["deletions"]][:3] == seen[:3]
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}):
        bad = registry.get(FEED, params=params, headers=_service())
        assert bad.status_code == 400, (params, bad.text)


def test_the_feed_waits_for_a_deletion_still_committing_instead_of_passing_it(
    registry: httpx.Client, database_url: str, db: Db
) -> None:
    """A deletion that took its number and has not committed yet holds the feed back: a reader keeping
    `next_after` can never have passed it when it commits."""
    last = int(db.fetchval("SELECT coalesce(max(seq), 0) FROM registry.deletions"))
    pending = Db(database_url)
    got: dict[str, Any] = {}
    try:
        pending.execute("BEGIN")
        gone = uuid.uuid4()
        pending.execute("INSERT INTO registry.deletions (registration_id) VALUES ($1)", gone)

        def read() -> None:
            got["page"] = registry.get(FEED, params={"after": last}, headers=_service()).json()

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(1.0)
        assert reader.is_alive(), "the feed answered while a deletion was still committing"
        pending.execute("COMMIT")
        reader.join(10)
        assert not reader.is_alive()
    finally:
        pending.close()
    assert str(gone) in [d["registration_id"] for d in got["page"]["deletions"]]


def test_a_reader_held_back_too_long_is_told_to_retry_and_the_deletion_is_not_held_for_it(
    registry: httpx.Client, database_url: str, db: Db
) -> None:
    last = int(db.fetchval("SELECT coalesce(max(seq), 0) FROM registry.deletions"))
    pending = Db(database_url)
    try:
        pending.execute("BEGIN")
        gone = uuid.uuid4()
        pending.execute("INSERT INTO registry.deletions (registration_id) VALUES ($1)", gone)
        r = registry.get(FEED, params={"after": last}, headers=_service())  # waits 2 s for the lock, no more
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json", r.text
        assert r.headers["retry-after"] == "1"
        pending.execute("COMMIT")
    finally:
        pending.close()
    page = registry.get(FEED, params={"after": last}, headers=_service()).json()
    assert str(gone) in [d["registration_id"] for d in page["deletions"]]


# --- requests_api erases -----------------------------------------------------------------------------------


def test_a_deleted_owners_notes_and_upload_texts_are_erased_and_the_rest_of_the_history_stays(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    leaving = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    staying = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    req = flow.create()
    rid = req["id"]
    assert flow.act(rid, "submit").status_code == 200
    assert flow.act(rid, "approve", note="Scope is proportionate.").status_code == 200
    assert _answer(flow, rid, leaving, "accept", NOTE).status_code == 200
    assert _answer(flow, rid, staying, "accept", "Staying: the driveway camera.").status_code == 200
    up = flow.client.post(
        f"/v1/owner/evidence/{rid}",
        files={"file": ("dana-reyes-side-door.mp4", b"v" * 256, "video/mp4")},
        data={"description": "Dana's side door, the van at 21:40"},
        headers=leaving.headers,
    )
    assert up.status_code == 201, up.text
    evidence = up.json()

    before = _history(flow, rid)
    assert NOTE in [e["note"] for e in before], "the agency reads the owner's note"
    listed = flow.client.get(f"/v1/requests/{rid}/evidence", headers=flow.inv()).json()["items"]
    assert listed[0]["description"] and listed[0]["filename"]
    assert stored_evidence_texts(db, evidence["id"])["original_filename"]

    _delete(registry, leaving)
    seq = _seq(db, leaving)
    # The worker beside the services reads the feed on its own clock.
    assert eventually(lambda: NOTE not in [e["note"] for e in _history(flow, rid)], timeout=30)
    # Unreadable at once (its data key is destroyed); the rows are erased when the worker reads the deletion.
    assert eventually(
        lambda: db.fetchval("SELECT position FROM requests.feeds WHERE name = 'registry.deletions'") >= seq,
        timeout=30,
    )
    after = _history(flow, rid)
    # Nothing else of the history changed: the same events, in the same order, the other notes kept.
    assert len(after) == len(before)
    for b, a in zip(before, after, strict=True):
        assert {k: v for k, v in a.items() if k != "note"} == {k: v for k, v in b.items() if k != "note"}
        assert a["note"] == (None if b["note"] == NOTE else b["note"])
    notes = [e["note"] for e in after]
    assert "Scope is proportionate." in notes and "Staying: the driveway camera." in notes
    stored = db.fetch(
        "SELECT note, note_enc FROM requests.events WHERE actor = $1", f"owner:{leaving.registration_id}"
    )
    assert stored and all(r["note"] is None and r["note_enc"] is None for r in stored)
    assert not db.fetchval("SELECT count(*) FROM requests.events WHERE note LIKE '%555-0142%'")
    # The footage stays the agency's evidence, unchanged; the owner's words about it go.
    row = db.fetch(
        "SELECT description_enc, filename_enc, original_filename_enc, sha256, size_bytes FROM requests.evidence"
        " WHERE id = $1",
        evidence["id"],
    )[0]
    assert (
        row["description_enc"] is None
        and row["filename_enc"] is None
        and row["original_filename_enc"] is None
    )
    assert row["sha256"] == evidence["sha256"] and row["size_bytes"] == 256
    custody = flow.client.get(f"/v1/evidence/{evidence['id']}/custody", headers=flow.inv()).json()
    assert custody["chain_intact"]
    assert flow.client.get(f"/v1/evidence/{evidence['id']}/content", headers=flow.inv()).status_code == 200
    assert db.fetchval("SELECT position FROM requests.feeds WHERE name = 'registry.deletions'") >= seq


def test_an_owner_who_deleted_cannot_leave_a_note_with_a_credential_seen_a_moment_before(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    rid = flow.sent()["id"]
    # requests_api checks the credential with registry_api and remembers the answer for a little while.
    assert flow.client.get(f"/v1/owner/requests/{rid}", headers=owner.headers).status_code == 200
    _delete(registry, owner)
    late = _answer(flow, rid, owner, "accept", NOTE)
    assert late.status_code == 401, late.text
    assert not db.fetchval("SELECT count(*) FROM requests.events WHERE note = $1", NOTE)


# --- the job, run here against the database and registry_api (a feed of its own) ---------------------------


def _position(db: Db, feed: str) -> int | None:
    value = db.fetchval("SELECT position FROM requests.feeds WHERE name = $1", feed)
    return None if value is None else int(value)


def test_the_job_pages_through_the_feed_and_a_run_with_registry_api_down_keeps_the_cursor(
    flow: Flow,
    new_owner: NewOwner,
    registry: httpx.Client,
    db: Db,
    run_job: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owners = [new_owner(flow.agency, flow.agency.near(dx=OFFSET * i)) for i in range(3)]
    for o in owners:
        _delete(registry, o)
    seqs = [_seq(db, o) for o in owners]
    feed = f"test.{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO requests.feeds (name, position) VALUES ($1, $2)", feed, seqs[0] - 1)

    with caplog.at_level(logging.WARNING, logger="canvass.requests.worker"):
        assert run_job(feed, registry_url=f"http://127.0.0.1:{free_port()}") == 0
    assert _position(db, feed) == seqs[0] - 1
    assert any("asking again on the next run" in r.getMessage() for r in caplog.records)

    # Pages of one: the three deletions (and any made since), then an empty page ends the run.
    read = run_job(feed, page=1)
    assert read >= 3
    assert _position(db, feed) == int(db.fetchval("SELECT max(seq) FROM registry.deletions"))
    assert run_job(feed, page=1) == 0  # nothing new: the cursor stays
    # A feed read for the first time starts at the beginning, and its row is written once it moves.
    fresh = f"test.{uuid.uuid4().hex[:8]}"
    assert run_job(fresh) >= 3 and _position(db, fresh) == _position(db, feed)


def test_a_target_held_by_an_answer_in_flight_holds_the_cursor_back(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db, database_url: str, run_job: Any
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    rid = flow.sent()["id"]
    tid = db.fetchval(
        "SELECT id FROM requests.targets WHERE request_id = $1 AND registration_id = $2",
        rid,
        owner.registration_id,
    )
    _delete(registry, owner)
    seq = _seq(db, owner)
    feed = f"test.{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO requests.feeds (name, position) VALUES ($1, $2)", feed, seq - 1)
    holder = Db(database_url)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM requests.targets WHERE id = $1 FOR UPDATE", tid)
        assert run_job(feed) == 0
        assert _position(db, feed) == seq - 1
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert run_job(feed) >= 1
    assert (_position(db, feed) or 0) >= seq
