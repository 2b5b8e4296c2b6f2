"""Who a request reaches is decided when it reaches them: targets found at draft time are asked of geo_query again
at approval and at sending, and owners no longer in its answer are dropped (never contacted, not counted as
reached, shown only as a number). Cameras whose owner does not share recorded footage are never asked about."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Token
from tests.requests.conftest import (
    OFFSET,
    Agency,
    Flow,
    NewAgency,
    NewOwner,
    Owner,
    box,
    patch_registration,
    request_body,
)
from tests.support import Db, Mailbox


def _county(registry: httpx.Client, auth: Token, around: Agency) -> str:
    """Another agency whose jurisdiction covers the first one's (a county around a city)."""
    slug = "c-" + uuid.uuid4().hex[:10]
    lon, lat = around.centre
    body = {
        "slug": slug,
        "name": f"County {slug}",
        "jurisdiction": box(lon - 0.2, lat - 0.2, lon + 0.2, lat + 0.2),
    }
    r = registry.post("/v1/agencies", json=body, headers=auth("agency_admin", slug))
    assert r.status_code == 201, r.text
    return slug


def _outbox_for(db: Db, rid: str) -> set[str]:
    rows = db.fetch(
        "SELECT registration_id FROM requests.outbox WHERE request_id = $1 AND channel = 'owner_email'",
        uuid.UUID(rid),
    )
    return {str(r["registration_id"]) for r in rows}


def test_owners_who_left_between_draft_and_approval_are_dropped_never_contacted(
    flow: Flow,
    new_owner: NewOwner,
    registry: httpx.Client,
    auth: Token,
    db: Db,
    mailbox: Mailbox,
) -> None:
    a = flow.agency
    county = _county(registry, auth, a)
    stay = [new_owner(a, a.near(dx=OFFSET)), new_owner(a, a.near(dy=OFFSET))]
    paused = new_owner(a, a.near(dx=-OFFSET))
    withdrawn = new_owner(a, a.near(dy=-OFFSET))
    deleted = new_owner(a, a.near(dx=OFFSET, dy=OFFSET))
    # Registered with the county's program and shared with this agency, then no longer.
    unshared = Owner(**_register_shared(registry, county, a, a.near(dx=-OFFSET, dy=OFFSET)))
    # One camera in the area, one far outside it: removing the first takes the owner out of the area.
    moved = new_owner(a, a.near(dx=OFFSET, dy=-OFFSET))
    extra = registry.post(
        f"/v1/registrations/{moved.registration_id}/cameras",
        json={"location": {"type": "Point", "coordinates": a.near(dx=0.03, dy=0.03)}},
        headers=moved.headers,
    )
    assert extra.status_code in (200, 201), extra.text
    unwilling = new_owner(a, a.near(dx=-OFFSET, dy=-OFFSET))
    changed = [paused, withdrawn, deleted, unshared, moved, unwilling]

    req = flow.create()
    rid = req["id"]
    assert {t["registration_id"] for t in req["targets"]} == {o.registration_id for o in [*stay, *changed]}

    patch_registration(registry, paused, {"status": "paused"})
    patch_registration(registry, withdrawn, {"status": "withdrawn"})
    etag = registry.get(f"/v1/registrations/{deleted.registration_id}", headers=deleted.headers).headers[
        "etag"
    ]
    gone = registry.delete(
        f"/v1/registrations/{deleted.registration_id}", headers={**deleted.headers, "If-Match": etag}
    )
    assert gone.status_code in (200, 204), gone.text
    patch_registration(registry, unshared, {"share_with": []})
    etag = registry.get(f"/v1/registrations/{moved.registration_id}", headers=moved.headers).headers["etag"]
    removed = registry.delete(
        f"/v1/registrations/{moved.registration_id}/cameras/{moved.camera_ids[0]}",
        headers={**moved.headers, "If-Match": etag},
    )
    assert removed.status_code == 200, removed.text
    patch_registration(registry, unwilling, {"shares_history": False}, camera_id=unwilling.camera_ids[0])

    assert flow.act(rid, "submit").status_code == 200
    r = flow.act(rid, "approve")
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent["state"] == "sent"
    assert sent["summary"]["notified"] == 2 and sent["summary"]["targets"] == 2
    assert sent["summary"]["dropped"] == len(changed) and sent["summary"]["not_fulfilled"] == 2
    # How many, never who: no dropped owner's id anywhere in what the agency reads.
    for o in changed:
        assert o.registration_id not in r.text
        assert o.registration_id not in flow.client.get(f"/v1/requests/{rid}/events", headers=flow.inv()).text

    # Recorded as dropped, never notified (so never in the transparency report's owners_contacted).
    rows = db.fetch(
        "SELECT registration_id, state, notified_at FROM requests.targets WHERE request_id = $1",
        uuid.UUID(rid),
    )
    states = {str(t["registration_id"]): (t["state"], t["notified_at"]) for t in rows}
    for o in changed:
        assert states[o.registration_id] == ("dropped", None)
    for o in stay:
        assert states[o.registration_id][0] == "notified"
    dropped_events = db.fetchval(
        "SELECT count(*) FROM requests.events WHERE request_id = $1 AND to_state = 'dropped'", uuid.UUID(rid)
    )
    assert dropped_events == len(changed)

    # Only the remaining owners are written to; the others get nothing and cannot see the request.
    for o in stay:
        mailbox.wait_for(o.email, timeout=15)
    assert _outbox_for(db, rid) == {o.registration_id for o in stay}
    for o in (paused, unshared, moved, unwilling):
        assert not any(rid in str(m) for m in mailbox.to(o.email))
        seen = flow.client.get(f"/v1/owner/requests/{rid}", headers=o.headers)
        assert seen.status_code == 404, seen.text


def _register_shared(registry: httpx.Client, program: str, shared: Agency, at: list[float]) -> dict[str, Any]:
    email = f"owner-{uuid.uuid4().hex[:12]}@example.org"
    body = {
        "agency": program,
        "location": {"type": "Point", "coordinates": at},
        "contact": {"email": email},
        "cameras": [{"location": {"type": "Point", "coordinates": at}, "retention_days": 30}],
        "share_with": [shared.slug],
    }
    r = registry.post("/v1/registrations", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    return {
        "registration_id": out["id"],
        "credential": out["credential"],
        "email": email,
        "camera_ids": [c["id"] for c in out["properties"]["cameras"]],
    }


def test_a_send_without_approval_also_drops_who_left(
    requests_client: httpx.Client,
    auth: Token,
    new_agency: NewAgency,
    new_owner: NewOwner,
    registry: httpx.Client,
) -> None:
    a = new_agency(requires_approval=False)
    flow = Flow(requests_client, auth, a)
    stay, paused = new_owner(a, a.near(dx=OFFSET)), new_owner(a, a.near(dy=OFFSET))
    rid = flow.create()["id"]
    patch_registration(registry, paused, {"status": "paused"})
    r = flow.act(rid, "send")
    assert r.status_code == 200, r.text
    assert (r.json()["summary"]["notified"], r.json()["summary"]["dropped"]) == (1, 1)
    assert flow.client.get(f"/v1/owner/requests/{rid}", headers=stay.headers).status_code == 200
    assert flow.client.get(f"/v1/owner/requests/{rid}", headers=paused.headers).status_code == 404
    # When everyone left, there is nobody to send it to: a 409, and the draft is as it was.
    rid = flow.create()["id"]
    patch_registration(registry, stay, {"status": "paused"})
    patch_registration(registry, paused, {"status": "paused"})
    r = flow.act(rid, "send")
    assert r.status_code == 409, r.text
    assert flow.read(rid)["state"] == "draft" and flow.read(rid)["summary"]["dropped"] == 0


def test_cameras_not_sharing_recorded_footage_are_never_targets(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client
) -> None:
    a = flow.agency
    willing = new_owner(a, a.near(dx=OFFSET))
    # An owner with no willing camera is not asked at all.
    never = new_owner(a, a.near(dy=OFFSET))
    patch_registration(registry, never, {"shares_history": False}, camera_id=never.camera_ids[0])
    # An owner with one willing and one unwilling camera is asked about the willing one only.
    mixed = new_owner(a, a.near(dx=-OFFSET), cameras=2)
    patch_registration(registry, mixed, {"shares_history": False}, camera_id=mixed.camera_ids[0])
    req = flow.create()
    by_owner = {t["registration_id"]: [c["camera_id"] for c in t["cameras"]] for t in req["targets"]}
    assert by_owner == {
        willing.registration_id: willing.camera_ids,
        mixed.registration_id: [mixed.camera_ids[1]],
    }
    assert req["summary"]["cameras"] == 2
    # Named explicitly, an unwilling camera is refused, naming it.
    r = flow.client.post(
        "/v1/requests",
        json={**request_body(a), "camera_ids": [mixed.camera_ids[0]]},
        headers=flow.inv(),
    )
    assert r.status_code == 422, r.text
    assert mixed.camera_ids[0] in r.text
