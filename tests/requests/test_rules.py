"""The rules of a request: caps on area and window from the agency's policy, one transition table (409 for
anything else), exactly one winner of concurrent transitions, silent decline, a rolled-back transition sends
nothing, idempotent creation, and targets from explicit camera ids."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.settings import get_settings
from tests.conftest import Suite
from tests.requests.conftest import OFFSET, Flow, NewAgency, NewOwner, eventually, iso, request_body
from tests.support import Db, Mailbox, start_server


def test_area_and_window_beyond_the_agency_caps_are_refused(flow: Flow, new_agency: NewAgency, auth) -> None:  # type: ignore[no-untyped-def]
    small = Flow(flow.client, auth, new_agency(max_request_area_m2=50_000.0, max_request_window_hours=2.0))
    r = small.client.post("/v1/requests", json=request_body(small.agency, radius_m=150), headers=small.inv())
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/radius_m", r.text
    now = datetime.now(UTC)
    poly = {
        "type": "Polygon",
        "coordinates": [
            [
                [small.agency.centre[0] - 0.003, small.agency.centre[1] - 0.003],
                [small.agency.centre[0] + 0.003, small.agency.centre[1] - 0.003],
                [small.agency.centre[0] + 0.003, small.agency.centre[1] + 0.003],
                [small.agency.centre[0] - 0.003, small.agency.centre[1] - 0.003],
            ]
        ],
    }
    body = request_body(small.agency, radius_m=None, area=poly)
    r = small.client.post("/v1/requests", json=body, headers=small.inv())
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/area", r.text
    window = {"start": iso(now - timedelta(hours=5)), "end": iso(now - timedelta(hours=2))}
    r = small.client.post(
        "/v1/requests", json=request_body(small.agency, radius_m=100, window=window), headers=small.inv()
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/window", r.text
    ok = small.client.post("/v1/requests", json=request_body(small.agency, radius_m=100), headers=small.inv())
    assert ok.status_code == 201, ok.text
    assert abs(ok.json()["area_m2"] - 31_416) < 100  # π·100², geodesically
    both = request_body(small.agency, radius_m=100, area=poly)
    assert small.client.post("/v1/requests", json=both, headers=small.inv()).status_code == 422
    no_case = request_body(small.agency, radius_m=100, case_number="")
    assert small.client.post("/v1/requests", json=no_case, headers=small.inv()).status_code == 422
    owner_token = small.client.post(
        "/v1/requests", json=request_body(small.agency), headers=auth("cad", small.agency.slug)
    )
    assert owner_token.status_code == 403


def test_forbidden_transitions_are_409_and_list_what_is_possible(flow: Flow, new_owner: NewOwner) -> None:
    new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.create()
    r = flow.act(req["id"], "close")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert "submit" in r.json()["detail"]
    # The agency requires approval: sending a draft directly is refused too.
    assert flow.act(req["id"], "send").status_code == 409
    assert flow.act(req["id"], "approve").status_code == 409  # not submitted yet
    assert flow.act(req["id"], "cancel").json()["state"] == "cancelled"
    assert flow.act(req["id"], "submit").status_code == 409  # final


def test_without_approval_policy_a_draft_is_sent_directly(
    new_agency: NewAgency, new_owner: NewOwner, requests_client: httpx.Client, auth, mailbox: Mailbox
) -> None:  # type: ignore[no-untyped-def]
    f = Flow(requests_client, auth, new_agency(requires_approval=False))
    owner = new_owner(f.agency, f.agency.near(dy=OFFSET))
    req = f.create()
    assert req["requires_approval"] is False
    sent = f.act(req["id"], "send")
    assert sent.status_code == 200, sent.text
    assert sent.json()["state"] == "sent"
    mailbox.wait_for(owner.email, timeout=15)


def test_concurrent_transitions_of_one_request_have_exactly_one_winner(
    flow: Flow, new_owner: NewOwner
) -> None:
    new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.create()
    assert flow.act(req["id"], "submit").status_code == 200
    # Actions that cannot follow one another (cancel could legally follow an approval, which sends it).
    actions = ["approve", "reject"] * 6
    results: list[int] = []
    barrier = threading.Barrier(len(actions))

    def go(action: str) -> None:
        with httpx.Client(base_url=str(flow.client.base_url), timeout=30) as c:
            headers = {**(flow.sup() if action in ("approve", "reject") else flow.inv()), "If-Match": "*"}
            barrier.wait()
            r = c.post(f"/v1/requests/{req['id']}/transitions", json={"action": action}, headers=headers)
            results.append(r.status_code)

    threads = [threading.Thread(target=go, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * (len(actions) - 1), results
    hist = flow.client.get(f"/v1/requests/{req['id']}/events", headers=flow.inv()).json()["events"]
    after_submit = [e["action"] for e in hist if e["subject"] == "request"][2:]
    assert after_submit in (["approve", "send"], ["reject"]), after_submit


def test_concurrent_owner_answers_have_exactly_one_winner(flow: Flow, new_owner: NewOwner) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    # Answers that cannot follow one another ("unavailable" could legally follow an accept).
    answers = ["accept", "decline"] * 6
    results: list[int] = []
    barrier = threading.Barrier(len(answers))

    def go(answer: str) -> None:
        with httpx.Client(base_url=str(flow.client.base_url), timeout=30) as c:
            barrier.wait()
            r = c.post(
                f"/v1/owner/requests/{req['id']}/answer", json={"answer": answer}, headers=owner.headers
            )
            results.append(r.status_code)

    threads = [threading.Thread(target=go, args=(a,)) for a in answers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 1 and results.count(409) == len(answers) - 1, results
    states = flow.client.get(f"/v1/owner/requests/{req['id']}", headers=owner.headers).json()["state"]
    assert states in ("accepted", "declined")


def test_declining_is_silent_the_agency_sees_only_counts_and_sharers(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    decliner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    ignorer = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    sharer = new_owner(flow.agency, flow.agency.near(dx=-OFFSET))
    req = flow.sent()
    rid = req["id"]
    c = flow.client
    assert (
        c.post(
            f"/v1/owner/requests/{rid}/answer",
            json={"answer": "decline", "note": "no"},
            headers=decliner.headers,
        ).status_code
        == 200
    )
    assert c.get(f"/v1/owner/requests/{rid}", headers=ignorer.headers).json()["state"] == "viewed"
    assert (
        c.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=sharer.headers
        ).status_code
        == 200
    )

    seen = flow.read(rid)
    assert seen["summary"] == {
        "targets": 3,
        "cameras": 3,
        "notified": 3,
        "accepted": 1,
        "uploaded": 0,
        "not_fulfilled": 2,
        "dropped": 0,
    }
    assert [t["registration_id"] for t in seen["targets"]] == [sharer.registration_id]
    body = (
        c.get(f"/v1/requests/{rid}", headers=flow.inv()).text
        + c.get(f"/v1/requests/{rid}/events", headers=flow.inv()).text
    )
    for hidden in (decliner.registration_id, ignorer.registration_id):
        assert hidden not in body
    assert "declined" not in body and "viewed" not in body and '"no"' not in body
    listing = c.get("/v1/requests", headers=flow.inv()).json()["items"]
    assert next(i for i in listing if i["id"] == rid)["summary"]["not_fulfilled"] == 2
    # The decline is real (the owner's own view says so) but the agency is never told of it.
    assert c.get(f"/v1/owner/requests/{rid}", headers=decliner.headers).json()["state"] == "declined"
    told = db.fetch(
        "SELECT kind FROM requests.outbox WHERE request_id = $1 AND channel <> 'owner_email'", rid
    )
    assert all(r["kind"] != "target.declined" for r in told)


def test_a_rolled_back_transition_sends_nothing(
    flow: Flow, new_owner: NewOwner, db: Db, mailbox: Mailbox
) -> None:
    """The send writes the targets' moves and their outbox messages first and the request's own history entry
    last; a failure at that last write (forced by a trigger) rolls all of it back: no outbox row, no mail."""
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.create()
    rid = req["id"]
    assert flow.act(rid, "submit").status_code == 200
    fn = f"fail_{uuid.uuid4().hex[:8]}"
    db.execute(
        f"""CREATE FUNCTION requests.{fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.request_id = '{rid}'::uuid AND NEW.target_id IS NULL AND NEW.to_state = 'sent' THEN
                RAISE EXCEPTION 'forced failure after the outbox insert';
            END IF;
            RETURN NEW;
        END $$"""
    )
    db.execute(
        f"CREATE TRIGGER {fn} BEFORE INSERT ON requests.events FOR EACH ROW EXECUTE FUNCTION requests.{fn}()"
    )
    try:
        r = flow.act(rid, "approve")
        assert r.status_code == 500, r.text
        assert r.headers["content-type"] == "application/problem+json"
    finally:
        db.execute(f"DROP TRIGGER {fn} ON requests.events")
        db.execute(f"DROP FUNCTION requests.{fn}()")
    assert db.fetchval("SELECT count(*) FROM requests.outbox WHERE request_id = $1", rid) == 0
    assert db.fetchval("SELECT state FROM requests.requests WHERE id = $1", rid) == "pending_approval"
    assert (
        db.fetchval("SELECT count(*) FROM requests.targets WHERE request_id = $1 AND state <> 'pending'", rid)
        == 0
    )
    # The worker mails owners only from the outbox, which holds nothing of this request: nothing can be sent.
    assert mailbox.to(owner.email) == []
    # The same approval, without the fault, goes through and the owner is told.
    assert flow.act(rid, "approve").status_code == 200
    mailbox.wait_for(owner.email, timeout=15)
    assert eventually(
        lambda: (
            db.fetchval(
                "SELECT count(*) FROM requests.outbox WHERE request_id = $1 AND status = 'delivered'", rid
            )
            == 1
        )
    )


def test_a_retried_create_with_the_same_idempotency_key_gives_the_same_answer(flow: Flow) -> None:
    body = request_body(flow.agency)
    headers = {**flow.inv(), "Idempotency-Key": str(uuid.uuid4())}
    first = flow.client.post("/v1/requests", json=body, headers=headers)
    again = flow.client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert (again.headers["etag"], again.headers["location"]) == (
        first.headers["etag"],
        first.headers["location"],
    )
    assert "idempotent-replayed" not in first.headers


def test_an_idempotency_key_belongs_to_its_caller_and_binds_the_body(flow: Flow, db: Any) -> None:
    key = str(uuid.uuid4())
    body = request_body(flow.agency)
    a = flow.client.post("/v1/requests", json=body, headers={**flow.inv(), "Idempotency-Key": key})
    assert a.status_code == 201
    # A colleague of the same agency using the same key (and body) creates their own request.
    colleague = flow.auth("investigator", flow.agency.slug, sub="det-2")
    b = flow.client.post("/v1/requests", json=body, headers={**colleague, "Idempotency-Key": key})
    assert b.status_code == 201, b.text
    assert "idempotent-replayed" not in b.headers
    assert b.json()["id"] != a.json()["id"] and b.json()["created_by"] == "det-2"
    # The same caller, the same key, another body: refused, and nothing created.
    count = db.fetchval("SELECT count(*) FROM requests.requests WHERE agency = $1", flow.agency.slug)
    other = flow.client.post(
        "/v1/requests",
        json={**body, "message": "Another message."},
        headers={**flow.inv(), "Idempotency-Key": key},
    )
    assert other.status_code == 422 and other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("idempotency-key-reused")
    assert db.fetchval("SELECT count(*) FROM requests.requests WHERE agency = $1", flow.agency.slug) == count
    # The stored answer is sealed: the request's message is not in it in clear.
    sealed = db.fetchval(
        "SELECT body FROM requests.idempotency_keys WHERE request_id = $1", uuid.UUID(a.json()["id"])
    )
    assert body["message"].encode() not in bytes(sealed)


def test_an_idempotency_key_starts_afresh_after_the_replay_window(flow: Flow, db: Any) -> None:
    key = str(uuid.uuid4())
    body = request_body(flow.agency)
    headers = {**flow.inv(), "Idempotency-Key": key}
    first = flow.client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == 201
    window = get_settings().idempotency_replay_window_s
    db.execute(
        "UPDATE requests.idempotency_keys SET created_at = now() - make_interval(secs => $1) WHERE key = $2",
        float(window + 1),
        key,
    )
    later = flow.client.post("/v1/requests", json=body, headers=headers)
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    # ... and that new answer is the one replayed now.
    again = flow.client.post("/v1/requests", json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == later.json()["id"]


def test_explicit_camera_ids_ask_only_those_owners(
    flow: Flow, new_owner: NewOwner, new_agency: NewAgency
) -> None:
    a = new_owner(flow.agency, flow.agency.near(dx=OFFSET), retention_days=7, cameras=2)
    new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    req = flow.create(camera_ids=[a.camera_ids[1]])
    assert [t["registration_id"] for t in req["targets"]] == [a.registration_id]
    cam = req["targets"][0]["cameras"]
    assert [c["camera_id"] for c in cam] == [a.camera_ids[1]]
    start = datetime.fromisoformat(req["window"]["start"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(cam[0]["footage_until"].replace("Z", "+00:00"))
    assert until - start == timedelta(days=7)
    # A camera the agency may not see (another agency's) is refused, naming it.
    other = new_agency()
    stranger = new_owner(other, other.centre)
    r = flow.client.post(
        "/v1/requests",
        json=request_body(flow.agency, camera_ids=[stranger.camera_ids[0]]),
        headers=flow.inv(),
    )
    assert r.status_code == 422 and stranger.camera_ids[0] in r.text


def test_the_creator_approving_as_an_investigator_is_told_about_roles_a_supervisor_about_creators(
    flow: Flow, new_owner: NewOwner
) -> None:
    new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.create()
    assert flow.act(req["id"], "submit").status_code == 200
    r = flow.act(req["id"], "approve", flow.inv())
    assert r.status_code == 403
    assert r.json()["detail"] == "The action 'approve' needs one of the roles: supervisor."
    # A supervisor who created a request may not approve it: that message is about the creator.
    own = flow.client.post("/v1/requests", json=request_body(flow.agency), headers=flow.sup())
    assert own.status_code == 201
    assert flow.act(own.json()["id"], "submit", flow.sup()).status_code == 200
    r = flow.act(own.json()["id"], "approve", flow.sup())
    assert r.status_code == 403 and "other than the request's creator" in r.json()["detail"]


def test_concurrent_creates_with_one_key_make_one_request_and_replay_it(flow: Flow, db: Db) -> None:
    body = request_body(flow.agency)
    headers = {**flow.inv(), "Idempotency-Key": str(uuid.uuid4())}
    n = 8
    barrier = threading.Barrier(n)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def create() -> None:
        with httpx.Client(base_url=str(flow.client.base_url), timeout=30) as c:
            barrier.wait()
            r = c.post("/v1/requests", json=body, headers=headers)
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=create) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200] * (n - 1) + [201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert all(r.headers.get("idempotent-replayed") == "true" for r in answers if r.status_code == 200)
    count = db.fetchval("SELECT count(*) FROM requests.requests WHERE case_number = $1", body["case_number"])
    assert count == 1


def test_the_cap_on_explicit_camera_ids_is_the_deployments_setting(
    flow: Flow, new_owner: NewOwner, suite: Suite
) -> None:
    """CANVASS_REQUEST_MAX_CAMERAS caps how many cameras a request may list: over it a 422 pointing at
    `camera_ids` and naming the figure, before anything is looked up; at it, the request is made."""
    a = new_owner(flow.agency, flow.agency.near(dx=OFFSET), cameras=2)
    server = start_server("requests_api", dict(suite.env, CANVASS_REQUEST_MAX_CAMERAS="2"))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            capped = Flow(client, flow.auth, flow.agency)
            over = [*a.camera_ids, str(uuid.uuid4())]
            r = client.post(
                "/v1/requests", json=request_body(flow.agency, camera_ids=over), headers=capped.inv()
            )
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["errors"][0]["pointer"] == "/body/camera_ids" and "at most 2" in r.text
            req = capped.create(camera_ids=a.camera_ids)
            assert [t["registration_id"] for t in req["targets"]] == [a.registration_id]
    finally:
        server.stop()
    # The suite's instance keeps the default of 50: 51 are refused, naming the figure.
    many = [str(uuid.uuid4()) for _ in range(51)]
    r = flow.client.post("/v1/requests", json=request_body(flow.agency, camera_ids=many), headers=flow.inv())
    assert r.status_code == 422 and "at most 50" in r.text, r.text
