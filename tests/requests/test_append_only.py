"""A request's history and an item's chain of custody are append-only in the database: UPDATE, DELETE (also by
cascade from a deleted request) and TRUNCATE are refused, even to the tables' owner."""

from __future__ import annotations

import asyncpg
import pytest

from tests.requests.conftest import OFFSET, Flow, NewOwner
from tests.support import Db


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
