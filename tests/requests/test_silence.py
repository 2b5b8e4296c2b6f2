"""Declining is silent (guarantee 6): an agency that watches a request — its resource, its summary, its ETag,
its history and its listing — sees nothing move when an owner reads it, declines it or says no video exists.
An owner who accepted and then cannot deliver stays visible to the agency, as accepted-then-unavailable."""

from __future__ import annotations

from typing import Any

from services.requests_api.owner_texts import note_context
from tests.requests.conftest import OFFSET, Flow, NewOwner
from tests.support import Db, open_owner_text


def _watch(flow: Flow, rid: str) -> dict[str, Any]:
    """Everything the agency can read about the request."""
    c = flow.client
    one = c.get(f"/v1/requests/{rid}", headers=flow.inv())
    events = c.get(f"/v1/requests/{rid}/events", headers=flow.inv())
    listing = c.get("/v1/requests", headers=flow.inv())
    assert one.status_code == events.status_code == listing.status_code == 200
    return {
        "request": one.json(),
        "etag": one.headers["etag"],
        "events": events.json(),
        "listed": next(i for i in listing.json()["items"] if i["id"] == rid),
    }


def _answer(flow: Flow, rid: str, headers: dict[str, str], answer: str, note: str | None = None) -> None:
    body = {"answer": answer} | ({"note": note} if note else {})
    r = flow.client.post(f"/v1/owner/requests/{rid}/answer", json=body, headers=headers)
    assert r.status_code == 200, r.text


def test_an_agency_watching_a_request_sees_nothing_change_when_an_owner_views_or_declines(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    reader = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    decliner = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    no_video = new_owner(flow.agency, flow.agency.near(dx=-OFFSET))
    sharer = new_owner(flow.agency, flow.agency.near(dy=-OFFSET))
    rid = flow.sent()["id"]
    before = _watch(flow, rid)

    # An owner reads the request (it becomes 'viewed' for them)...
    r = flow.client.get(f"/v1/owner/requests/{rid}", headers=reader.headers)
    assert r.status_code == 200 and r.json()["state"] == "viewed"
    assert _watch(flow, rid) == before
    # ... another reads it and declines, with a note...
    assert flow.client.get(f"/v1/owner/requests/{rid}", headers=decliner.headers).json()["state"] == "viewed"
    _answer(flow, rid, decliner.headers, "decline", "I would rather not")
    assert _watch(flow, rid) == before
    # ... a third says no video exists.
    _answer(flow, rid, no_video.headers, "unavailable")
    assert _watch(flow, rid) == before
    # The answers are real: each owner's own view says so.
    for owner, state in ((reader, "viewed"), (decliner, "declined"), (no_video, "video_unavailable")):
        assert flow.client.get(f"/v1/owner/requests/{rid}", headers=owner.headers).json()["state"] == state
    hidden = db.fetchval(
        "SELECT count(*) FROM requests.events WHERE request_id = $1 AND action IN ('view', 'decline', 'unavailable')",
        rid,
    )
    assert hidden == 4

    # A sharing answer is what the agency sees, and the history numbers its events without gaps.
    _answer(flow, rid, sharer.headers, "accept")
    after = _watch(flow, rid)
    assert after != before
    assert [t["registration_id"] for t in after["request"]["targets"]] == [sharer.registration_id]
    assert after["request"]["summary"]["accepted"] == 1
    events = after["events"]["events"]
    assert set(after["events"]) == {"request_id", "events"}
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert [(e["subject"], e["action"]) for e in events if e["subject"] == "target"] == [("target", "accept")]
    text = str(after)
    for owner in (reader, decliner, no_video):
        assert owner.registration_id not in text
    assert "declined" not in text and "viewed" not in text and "video_unavailable" not in text


def test_an_owner_who_accepted_and_then_cannot_deliver_stays_visible_to_the_agency(
    flow: Flow, new_owner: NewOwner
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    rid = flow.sent()["id"]
    _answer(flow, rid, owner.headers, "accept")
    accepted = _watch(flow, rid)
    assert [t["state"] for t in accepted["request"]["targets"]] == ["accepted"]

    _answer(flow, rid, owner.headers, "unavailable")
    seen = _watch(flow, rid)
    (target,) = seen["request"]["targets"]
    assert target["registration_id"] == owner.registration_id
    assert target["state"] == "video_unavailable"
    assert seen["request"]["summary"]["accepted"] == 0
    assert seen["request"]["summary"]["not_fulfilled"] == 1
    steps = [(e["action"], e["to_state"]) for e in seen["events"]["events"] if e["target_id"]]
    assert steps == [("accept", "accepted"), ("unavailable", "video_unavailable")]

    # It stays listed once the request is closed, too.
    closed = flow.act(rid, "close")
    assert closed.status_code == 200, closed.text
    assert [t["registration_id"] for t in closed.json()["targets"]] == [owner.registration_id]


def test_an_owner_note_is_kept_only_with_an_answer_that_shares(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    decliner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    no_video = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    sharer = new_owner(flow.agency, flow.agency.near(dx=-OFFSET))
    rid = flow.sent()["id"]
    _answer(flow, rid, decliner.headers, "decline", "Private: my neighbour is the suspect")
    _answer(flow, rid, no_video.headers, "unavailable", "Private: the recorder was switched off")
    _answer(flow, rid, sharer.headers, "accept", "The porch camera has it")

    stored = db.fetch(
        "SELECT e.action, e.note, e.note_enc, e.target_id, t.registration_id FROM requests.events e"
        " JOIN requests.targets t ON t.id = e.target_id WHERE e.request_id = $1 AND e.actor_role = 'owner'"
        " ORDER BY e.id",
        rid,
    )
    # An owner's note is stored sealed under their data key (services/requests_api/owner_texts.py).
    opened = [
        r["note"] or open_owner_text(r["registration_id"], r["note_enc"], note_context(r["target_id"]))
        for r in stored
    ]
    assert sorted((r["action"], note) for r, note in zip(stored, opened, strict=True)) == [
        ("accept", "The porch camera has it"),
        ("decline", None),
        ("unavailable", None),
    ]
    assert (
        db.fetchval(
            "SELECT count(*) FROM requests.events WHERE note LIKE 'Private: %' AND request_id = $1", rid
        )
        == 0
    )
    history = flow.client.get(f"/v1/requests/{rid}/events", headers=flow.inv()).json()["events"]
    assert [e["note"] for e in history if e["action"] == "accept"] == ["The porch camera has it"]
