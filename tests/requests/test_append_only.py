"""A request's history and an item's chain of custody are append-only in the database: UPDATE, DELETE (also by
cascade from a deleted request) and TRUNCATE are refused, even to the tables' owner. The one change the history
allows is an owner's note erased (set to NULL) with every other column of the event as it was."""

from __future__ import annotations

import subprocess
import sys
import uuid

import asyncpg
import pytest

from tests.conftest import BASE_URL
from tests.requests.conftest import OFFSET, Flow, NewOwner
from tests.support import ROOT, Db, drop_database, run_sql, with_database


def _refused(db: Db, statement: str, *args: object) -> None:
    """The statement fails with the append-only error; run in a transaction rolled back in any case, so a guard
    that is missing cannot cost the shared test database its rows."""
    db.execute("BEGIN")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            db.execute(statement, *args)
    finally:
        db.execute("ROLLBACK")


def test_history_and_custody_refuse_update_delete_and_truncate(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    rid = flow.sent()["id"]
    c = flow.client
    assert c.post(
        f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=owner.headers
    ).is_success
    up = c.post(
        f"/v1/owner/evidence/{rid}", files={"file": ("a.mp4", b"a" * 64, "video/mp4")}, headers=owner.headers
    )
    assert up.status_code == 201, up.text
    eid = up.json()["id"]
    events = db.fetchval("SELECT count(*) FROM requests.events WHERE request_id = $1", rid)
    custody = db.fetchval("SELECT count(*) FROM requests.custody WHERE evidence_id = $1", eid)
    assert events >= 5 and custody == 1

    for statement, arg in (
        ("UPDATE requests.events SET note = 'rewritten' WHERE request_id = $1", rid),
        ("DELETE FROM requests.events WHERE request_id = $1", rid),
        ("UPDATE requests.custody SET actor = 'someone-else' WHERE evidence_id = $1", eid),
        ("DELETE FROM requests.custody WHERE evidence_id = $1", eid),
    ):
        _refused(db, statement, arg)
    # Deleting a request (or a target) would remove its history by cascade: refused with it.
    other = flow.sent()["id"]
    _refused(db, "DELETE FROM requests.requests WHERE id = $1", other)
    _refused(db, "DELETE FROM requests.targets WHERE request_id = $1", other)
    _refused(db, "TRUNCATE requests.events")
    _refused(db, "TRUNCATE requests.custody")

    assert db.fetchval("SELECT count(*) FROM requests.events WHERE request_id = $1", rid) == events
    assert db.fetchval("SELECT count(*) FROM requests.custody WHERE evidence_id = $1", eid) == custody


def test_the_history_allows_only_an_owners_note_erased(flow: Flow, new_owner: NewOwner, db: Db) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    other = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    req = flow.create()
    rid = req["id"]
    assert flow.act(rid, "submit").status_code == 200
    assert flow.act(rid, "approve", note="Scope is proportionate.").status_code == 200
    r = flow.client.post(
        f"/v1/owner/requests/{rid}/answer",
        json={"answer": "accept", "note": "Private: my name and number"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    r = flow.client.post(f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=other.headers)
    assert r.status_code == 200, r.text
    accept = db.fetch(
        "SELECT * FROM requests.events WHERE request_id = $1 AND actor = $2 AND action = 'accept'",
        rid,
        f"owner:{owner.registration_id}",
    )[0]
    approve = db.fetchval("SELECT id FROM requests.events WHERE request_id = $1 AND action = 'approve'", rid)
    silent = db.fetchval(
        "SELECT id FROM requests.events WHERE request_id = $1 AND actor = $2 AND action = 'accept'",
        rid,
        f"owner:{other.registration_id}",
    )
    eid = accept["id"]
    for statement, *args in (
        ("UPDATE requests.events SET note = 'rewritten' WHERE id = $1", eid),  # other text
        ("UPDATE requests.events SET note = '' WHERE id = $1", eid),  # emptied is not erased
        ("UPDATE requests.events SET note = NULL, action = 'decline' WHERE id = $1", eid),  # erased and more
        ("UPDATE requests.events SET note = NULL, at = now() WHERE id = $1", eid),
        ("UPDATE requests.events SET note = NULL, actor = 'someone' WHERE id = $1", eid),
        ("UPDATE requests.events SET note = NULL, actor_role = 'system' WHERE id = $1", eid),
        ("UPDATE requests.events SET note = NULL, target_id = NULL WHERE id = $1", eid),
        ("UPDATE requests.events SET note = NULL WHERE id = $1", approve),  # an agency's note
        ("UPDATE requests.events SET note = 'added' WHERE id = $1", silent),  # a note added
        # An owner's note is stored sealed (note_enc): erasing it erases that too, and nothing else.
        ("UPDATE requests.events SET note = NULL WHERE id = $1", eid),  # the sealed note left in place
        ("UPDATE requests.events SET note_enc = '\\x00' WHERE id = $1", eid),  # rewritten
        ("UPDATE requests.events SET note_enc = NULL, action = 'decline' WHERE id = $1", eid),
        ("UPDATE requests.events SET note_enc = '\\x00' WHERE id = $1", silent),  # a sealed note added
    ):
        _refused(db, statement, *args)
    assert db.fetchval("SELECT note FROM requests.events WHERE id = $1", approve) == "Scope is proportionate."

    assert accept["note"] is None and accept["note_enc"] is not None
    assert (
        db.execute("UPDATE requests.events SET note = NULL, note_enc = NULL WHERE id = $1", eid) == "UPDATE 1"
    )
    after = db.fetch("SELECT * FROM requests.events WHERE id = $1", eid)[0]
    assert after["note"] is None and after["note_enc"] is None
    texts = ("note", "note_enc")
    assert {k: v for k, v in after.items() if k not in texts} == {
        k: v for k, v in accept.items() if k not in texts
    }
    # Erasing again changes nothing and is allowed; a note cannot come back.
    assert db.execute("UPDATE requests.events SET note = NULL WHERE id = $1", eid) == "UPDATE 1"
    _refused(db, "UPDATE requests.events SET note = 'back' WHERE id = $1", eid)


def test_migrating_erases_notes_kept_with_declines_before_and_keeps_the_rest() -> None:
    """Notes given with a decline or 'unavailable' before they stopped being stored are erased by migration
    0004; an accept's note and every row stay."""
    name = f"canvass_scratch_{uuid.uuid4().hex[:8]}"
    run_sql(with_database(BASE_URL, "postgres"), f'CREATE DATABASE "{name}"')
    url = with_database(BASE_URL, name)

    def alembic(*args: str) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr

    d: Db | None = None
    try:
        alembic("upgrade", "0003")
        d = Db(url)
        rid = d.fetchval(
            "INSERT INTO requests.requests (agency, agency_name, case_number, category, incident_point, area_kind,"
            " area, area_m2, window_start, window_end, message, due_at, requires_approval, evidence_retention_days,"
            " created_by) VALUES ('a-pd', 'A PD', 'C-1', 'theft', ST_SetSRID(ST_MakePoint(0, 0), 4326), 'polygon',"
            " ST_Buffer(ST_SetSRID(ST_MakePoint(0, 0), 4326), 0.001), 1, now() - interval '2 hours',"
            " now() - interval '1 hour', 'm', now() + interval '1 day', false, 30, 'det') RETURNING id"
        )
        for action, note in (
            ("decline", "Private: why not"),
            ("unavailable", "Private: wiped"),
            ("accept", "ok"),
        ):
            d.execute(
                "INSERT INTO requests.events (request_id, actor, actor_role, action, to_state, note)"
                " VALUES ($1, 'owner:x', 'owner', $2, 'x', $3)",
                rid,
                action,
                note,
            )
        d.execute(
            "INSERT INTO requests.events (request_id, actor, actor_role, action, to_state, note)"
            " VALUES ($1, 'sgt', 'supervisor', 'reject', 'rejected', 'Private: kept, an agency note')",
            rid,
        )
        d.close()
        d = None
        alembic("upgrade", "head")
        d = Db(url)
        rows = d.fetch("SELECT action, note FROM requests.events WHERE request_id = $1 ORDER BY id", rid)
        assert [(r["action"], r["note"]) for r in rows] == [
            ("decline", None),
            ("unavailable", None),
            ("accept", "ok"),
            ("reject", "Private: kept, an agency note"),
        ]
        _refused(d, "UPDATE requests.events SET note = 'again' WHERE request_id = $1", rid)
    finally:
        if d is not None:
            d.close()
        drop_database(BASE_URL, name)
