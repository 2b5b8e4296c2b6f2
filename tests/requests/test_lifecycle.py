"""The whole journey over real HTTP with the three services and the worker running: an agency and its owners →
a request → approval by another supervisor → the owner's email (via the worker and registry_api) → accept →
upload → the agency downloads and the hash matches → close. Another agency and another owner are refused at
every step."""

from __future__ import annotations

import hashlib
import os
import re

import httpx

from tests.conftest import Token
from tests.requests.conftest import OFFSET, Flow, NewAgency, NewOwner, eventually
from tests.support import Db, Mailbox


def test_request_from_case_to_evidence_end_to_end(
    flow: Flow,
    new_agency: NewAgency,
    new_owner: NewOwner,
    requests_client: httpx.Client,
    auth: Token,
    mailbox: Mailbox,
    db: Db,
) -> None:
    agency = flow.agency
    near = new_owner(agency, agency.near(dx=OFFSET), retention_days=30, cameras=2)
    urgent = new_owner(agency, agency.near(dy=OFFSET * 2), retention_days=2)
    far = new_owner(agency, agency.near(dx=0.02))  # ~1.6 km away: outside the request
    other_agency = new_agency()
    outsider = flow.__class__(requests_client, auth, other_agency, investigator="x-det", supervisor="x-sgt")

    # 1. Create: targets found by geo_query, one per owner, the footage overwritten soonest first.
    req = flow.create(radius_m=250)
    rid = req["id"]
    assert req["state"] == "draft"
    regs = [t["registration_id"] for t in req["targets"]]
    assert regs == [urgent.registration_id, near.registration_id]
    assert far.registration_id not in regs
    assert [len(t["cameras"]) for t in req["targets"]] == [1, 2]
    assert req["targets"][0]["footage_until"] < req["targets"][1]["footage_until"]
    assert req["summary"] == {
        "targets": 2,
        "cameras": 3,
        "notified": 0,
        "accepted": 0,
        "uploaded": 0,
        "not_fulfilled": 0,
        "dropped": 0,
    }
    stored = db.fetchval("SELECT count(*) FROM requests.targets WHERE request_id = $1", rid)
    assert stored == 2

    # Another agency sees nothing of it, and cannot act on it.
    assert requests_client.get(f"/v1/requests/{rid}", headers=outsider.inv()).status_code == 404
    assert outsider.act(rid, "submit").status_code == 404
    assert requests_client.get(f"/v1/requests/{rid}/events", headers=outsider.inv()).status_code == 404

    # 2. Approval: the creator cannot approve their own request; an investigator cannot approve at all.
    assert flow.act(rid, "submit").json()["state"] == "pending_approval"
    own = flow.act(rid, "approve", headers=flow.auth("supervisor", agency.slug, sub=flow.investigator))
    assert own.status_code == 403, own.text
    assert flow.act(rid, "approve", headers=flow.inv()).status_code == 403
    assert outsider.act(rid, "approve").status_code == 404
    approved = flow.act(rid, "approve", note="proportionate")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "sent"

    # 3. The owners are told by email, through the worker and registry_api (which alone knows the address).
    mail = mailbox.wait_for(near.email, timeout=15)
    assert "asks for camera footage" in str(mail["Subject"])
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"/v1/owner/requests/{rid}" in text
    assert near.camera_ids[0] in text
    mailbox.wait_for(urgent.email, timeout=15)
    delivered = "SELECT count(*) FROM requests.outbox WHERE request_id = $1 AND status = 'delivered'"
    assert eventually(lambda: db.fetchval(delivered, rid) == 2)
    # requests_api stores no owner email anywhere.
    assert (
        db.fetchval("SELECT count(*) FROM requests.outbox WHERE payload::text LIKE $1", f"%{near.email}%")
        == 0
    )

    # 4. The owner sees the request (and nothing of other owners); another owner is refused.
    mine = requests_client.get("/v1/owner/requests", headers=near.headers)
    assert mine.status_code == 200, mine.text
    assert [i["request_id"] for i in mine.json()["items"]] == [rid]
    assert {c["camera_id"] for c in mine.json()["items"][0]["cameras"]} == set(near.camera_ids)
    assert requests_client.get("/v1/owner/requests", headers=far.headers).json()["items"] == []
    assert requests_client.get(f"/v1/owner/requests/{rid}", headers=far.headers).status_code == 404
    assert (
        requests_client.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=far.headers
        ).status_code
        == 404
    )
    forged = {"Authorization": f"Bearer cvo_{near.registration_id.replace('-', '')}_not-the-secret"}
    assert requests_client.get("/v1/owner/requests", headers=forged).status_code == 401
    view = requests_client.get(f"/v1/owner/requests/{rid}", headers=near.headers)
    assert view.json()["state"] == "viewed"
    assert "accept" in view.json()["allowed_answers"]

    # 5. Accept, then upload: the answer carries the SHA-256 computed while streaming.
    acc = requests_client.post(
        f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=near.headers
    )
    assert acc.status_code == 200, acc.text
    assert acc.json()["state"] == "accepted"
    content = os.urandom(300_000)
    files = {"file": ("front.mp4", content, "video/mp4")}
    assert (
        requests_client.post(f"/v1/owner/evidence/{rid}", files=files, headers=far.headers).status_code == 404
    )
    up = requests_client.post(
        f"/v1/owner/evidence/{rid}", files=files, data={"camera_id": near.camera_ids[0]}, headers=near.headers
    )
    assert up.status_code == 201, up.text
    evidence = up.json()
    assert evidence["sha256"] == hashlib.sha256(content).hexdigest()
    assert evidence["size_bytes"] == len(content)
    assert evidence["camera_id"] == near.camera_ids[0]

    # 6. The agency sees the sharing owner (only), downloads, and the hash matches.
    seen = flow.read(rid)
    assert [t["registration_id"] for t in seen["targets"]] == [near.registration_id]
    assert seen["targets"][0]["state"] == "uploaded"
    assert seen["summary"]["uploaded"] == 1
    eid = evidence["id"]
    assert requests_client.get(f"/v1/evidence/{eid}/content", headers=outsider.inv()).status_code == 404
    assert requests_client.get(f"/v1/evidence/{eid}/content", headers=near.headers).status_code == 401
    down = requests_client.get(f"/v1/evidence/{eid}/content", headers=flow.inv())
    assert down.status_code == 200
    assert hashlib.sha256(down.content).hexdigest() == evidence["sha256"] == down.headers["x-content-sha256"]
    listed = requests_client.get(f"/v1/requests/{rid}/evidence", headers=flow.inv()).json()["items"]
    assert [e["id"] for e in listed] == [eid]
    custody = requests_client.get(f"/v1/evidence/{eid}/custody", headers=flow.inv())
    assert custody.status_code == 200
    assert [(r["action"], r["outcome"]) for r in custody.json()["records"]] == [
        ("upload", "ok"),
        ("download", "ok"),
    ]
    assert custody.json()["chain_intact"] is True
    assert requests_client.get(f"/v1/evidence/{eid}/custody", headers=outsider.inv()).status_code == 404

    # 7. The agency is told of the answers (by email to the creator when their token carries one): checked in
    # the notification tests. Close: the uploaded target completes, the silent one expires.
    closed = flow.act(rid, "close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed"
    assert closed.json()["targets"][0]["state"] == "completed"
    assert closed.json()["summary"]["not_fulfilled"] == 1
    assert flow.act(rid, "close").status_code == 409
    late = requests_client.post(
        f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=urgent.headers
    )
    assert late.status_code == 409

    # The history shows every request transition, and only the sharing owner's.
    hist = requests_client.get(f"/v1/requests/{rid}/events", headers=flow.inv()).json()
    actions = [(e["subject"], e["action"], e["to_state"]) for e in hist["events"]]
    request_steps = [a for s, a, _ in actions if s == "request"]
    assert request_steps == ["create", "submit", "approve", "send", "close"]
    # The sharing owner's steps from their accept on; nothing of the silent owner, not even a count.
    assert [a for s, a, _ in actions if s == "target"] == ["accept", "upload", "complete"]
    assert {e["target_id"] for e in hist["events"] if e["target_id"]} == {closed.json()["targets"][0]["id"]}
    assert set(hist) == {"request_id", "events"}
    assert [e["id"] for e in hist["events"]] == list(range(1, len(actions) + 1))
    approve = next(e for e in hist["events"] if e["action"] == "approve")
    assert approve["actor"] == flow.supervisor and approve["note"] == "proportionate"
    assert re.match(r"\d{4}-\d\d-\d\dT", approve["at"])
