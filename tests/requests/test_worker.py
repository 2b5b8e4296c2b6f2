"""The worker (running beside the services): the agency is told of answers by email and by a signed webhook,
retried with backoff under one delivery id; a message to a deleted registration is marked undeliverable, not
retried forever; reminders go once before the due date and before footage is overwritten; requests past their
due date expire; evidence past retention is deleted unless the request is under legal hold."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.requests_api.webhooks import WebhookDelivery
from tests.conftest import Suite, Token
from tests.requests.conftest import (
    OFFSET,
    Agency,
    Flow,
    NewAgency,
    NewOwner,
    Owner,
    box,
    eventually,
    patch_registration,
    request_body,
)
from tests.support import Db, Mailbox, QuietHandler, http_server


class Hook:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        self.lock = threading.Lock()


@pytest.fixture
def hook() -> Iterator[tuple[str, Hook]]:
    state = Hook()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = state.fail_next > 0
                state.fail_next -= 1 if failing else 0
            self.send_response(503 if failing else 204)
            self.end_headers()

    with http_server(Handler) as port:
        yield f"http://127.0.0.1:{port}/hook", state


def test_the_agency_is_told_of_answers_by_signed_webhook_retried_under_one_id(
    flow: Flow, new_owner: NewOwner, auth: Token, hook: tuple[str, Hook], db: Db
) -> None:
    url, state = hook
    admin = auth("agency_admin", flow.agency.slug)
    put = flow.client.put(f"/v1/agencies/{flow.agency.slug}/webhook", json={"url": url}, headers=admin)
    assert put.status_code == 200, put.text
    secret = put.json()["secret"]
    assert (
        secret
        and flow.client.get(f"/v1/agencies/{flow.agency.slug}/webhook", headers=admin).json()["secret"]
        is None
    )
    assert (
        flow.client.put(
            f"/v1/agencies/{flow.agency.slug}/webhook",
            json={"url": url},
            headers=auth("agency_admin", "other-pd"),
        ).status_code
        == 403
    )
    decliner = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    sharer = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    state.fail_next = 1
    c = flow.client
    assert (
        c.post(
            f"/v1/owner/requests/{req['id']}/answer", json={"answer": "decline"}, headers=decliner.headers
        ).status_code
        == 200
    )
    assert (
        c.post(
            f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=sharer.headers
        ).status_code
        == 200
    )

    # The first attempt failed: the message waits with backoff; bring its next attempt forward.
    assert eventually(lambda: len(state.received) == 1)
    row = eventually(
        lambda: db.fetch(
            "SELECT id, attempts, next_attempt_at > now() + interval '10 seconds' AS later, status FROM requests.outbox"
            " WHERE request_id = $1 AND channel = 'agency_webhook' AND attempts = 1 AND last_error IS NOT NULL",
            req["id"],
        )
    )
    assert row and row[0]["later"] and row[0]["status"] == "pending"
    db.execute("UPDATE requests.outbox SET next_attempt_at = now() WHERE id = $1", row[0]["id"])
    assert eventually(lambda: len(state.received) == 2)
    (h1, b1), (h2, b2) = state.received
    assert h1["x-canvass-delivery"] == h2["x-canvass-delivery"] == str(row[0]["id"]) == h2["idempotency-key"]
    assert b1 == b2
    t, v1 = (part.split("=", 1)[1] for part in h2["x-canvass-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{t}.".encode() + b2, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(v1, expected)
    event = json.loads(b2)
    assert event["event"] == "target.accepted" and event["data"]["summary"]["accepted"] == 1
    # Silent decline: the webhook never carried the decline, nor who declined.
    assert all(decliner.registration_id not in b.decode() for _, b in state.received)
    assert all(json.loads(b)["event"] != "target.declined" for _, b in state.received)
    assert eventually(
        lambda: db.fetchval("SELECT status FROM requests.outbox WHERE id = $1", row[0]["id"]) == "delivered"
    )


def test_the_creator_is_told_when_an_owner_who_accepted_finds_the_footage_unavailable(
    flow: Flow, new_owner: NewOwner, mailbox: Mailbox
) -> None:
    """The agency saw the accept and waits for footage: it hears that none will come. An 'unavailable' from an
    owner who never accepted stays silent (tests/requests/test_silence.py)."""
    silent = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    email = f"det-u-{flow.agency.slug}@agency.example"
    r = flow.client.post("/v1/requests", json=request_body(flow.agency), headers=flow.inv(email=email))
    assert r.status_code == 201
    rid = r.json()["id"]
    assert flow.act(rid, "submit").status_code == 200
    assert flow.act(rid, "approve").status_code == 200

    def answer(who: Owner, what: str) -> None:
        resp = flow.client.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": what}, headers=who.headers
        )
        assert resp.status_code == 200, resp.text

    answer(silent, "unavailable")
    answer(owner, "accept")
    answer(owner, "unavailable")
    mail = mailbox.wait_for(email, lambda m: "unavailable" in str(m["Subject"]), timeout=15)
    assert r.json()["case_number"] in str(mail["Subject"])
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert owner.email not in text and silent.email not in text
    mailbox.wait_for(email, lambda m: "unavailable" not in str(m["Subject"]), timeout=15)
    subjects = [str(m["Subject"]) for m in mailbox.to(email)]
    assert sum("unavailable" not in s for s in subjects) == 1  # the accept
    assert sum("unavailable" in s for s in subjects) == 1  # the owner who accepted, not the silent one


def test_the_creator_is_emailed_when_an_owner_accepts(
    flow: Flow, new_owner: NewOwner, mailbox: Mailbox
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    email = f"det-{flow.agency.slug}@agency.example"
    r = flow.client.post(
        "/v1/requests",
        json=__import__("tests.requests.conftest", fromlist=["request_body"]).request_body(flow.agency),
        headers=flow.inv(email=email),
    )
    assert r.status_code == 201
    rid = r.json()["id"]
    assert flow.act(rid, "submit").status_code == 200
    assert flow.act(rid, "approve").status_code == 200
    assert (
        flow.client.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=owner.headers
        ).status_code
        == 200
    )
    mail = mailbox.wait_for(email, timeout=15)
    assert "accepted" in str(mail["Subject"]) and r.json()["case_number"] in str(mail["Subject"])
    assert owner.email not in mail.get_payload(decode=True).decode()  # type: ignore[union-attr]


def test_a_message_to_a_deleted_registration_is_undeliverable_not_retried(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    gone = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    assert eventually(
        lambda: (
            db.fetchval(
                "SELECT status FROM requests.outbox WHERE request_id = $1 AND kind = 'request'", req["id"]
            )
            == "delivered"
        )
    )
    # Deleted after the request reached them (an owner deleted before it is sent is never a target): the
    # reminder that follows cannot be delivered.
    assert (
        registry.delete(f"/v1/registrations/{gone.registration_id}", headers=gone.headers).status_code == 204
    )
    db.execute(
        "UPDATE requests.targets SET notified_at = now() - interval '3 days' WHERE request_id = $1", req["id"]
    )
    db.execute("UPDATE requests.requests SET due_at = now() + interval '20 hours' WHERE id = $1", req["id"])
    status = eventually(
        lambda: (
            db.fetchval(
                "SELECT status FROM requests.outbox WHERE request_id = $1 AND kind = 'reminder_due'",
                req["id"],
            )
            in ("undeliverable",)
        )
    )
    assert status
    row = db.fetch(
        "SELECT attempts, last_error, payload FROM requests.outbox WHERE request_id = $1 AND kind = 'reminder_due'",
        req["id"],
    )[0]
    assert row["attempts"] == 1 and row["last_error"].startswith("404")
    assert row["payload"] == "{}", "a message that can never arrive keeps nothing of what it said"


def test_owners_are_reminded_once_before_the_due_date_and_before_footage_is_overwritten(
    flow: Flow, new_owner: NewOwner, db: Db, mailbox: Mailbox
) -> None:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET), retention_days=30)
    # A second owner of the same request, whose reminders come later: the rounds that send them look at the
    # first owner's target again, and must not remind them twice.
    later = new_owner(flow.agency, flow.agency.near(dx=OFFSET), retention_days=30)
    req = flow.sent()
    rid = req["id"]
    for o in (owner, later):
        mailbox.wait_for(o.email, lambda m: "asks for camera footage" in str(m["Subject"]), timeout=15)

    def as_if_notified_three_days_ago(o: Any) -> None:
        # Footage overwritten within half a day, the request due within a day.
        db.execute(
            "UPDATE requests.targets SET notified_at = now() - interval '3 days',"
            " footage_until = now() + interval '12 hours' WHERE request_id = $1 AND registration_id = $2",
            rid,
            uuid.UUID(o.registration_id),
        )

    db.execute("UPDATE requests.requests SET due_at = now() + interval '20 hours' WHERE id = $1", rid)
    as_if_notified_three_days_ago(owner)
    mailbox.wait_for(owner.email, lambda m: "due" in str(m["Subject"]), timeout=15)
    mailbox.wait_for(owner.email, lambda m: "overwritten" in str(m["Subject"]), timeout=15)
    as_if_notified_three_days_ago(later)
    mailbox.wait_for(later.email, lambda m: "due" in str(m["Subject"]), timeout=15)
    mailbox.wait_for(later.email, lambda m: "overwritten" in str(m["Subject"]), timeout=15)
    reminders = db.fetchval(
        "SELECT count(*) FROM requests.outbox o JOIN requests.targets t ON t.id = o.target_id"
        " WHERE t.request_id = $1 AND t.registration_id = $2 AND o.kind LIKE 'reminder%'",
        rid,
        uuid.UUID(owner.registration_id),
    )
    assert reminders == 2
    subjects = [str(m["Subject"]) for m in mailbox.to(owner.email)]
    assert sum("Reminder" in s for s in subjects) == 2, subjects


def test_requests_past_their_due_date_expire_with_their_open_targets(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    waiting = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    sharer = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    req = flow.sent()
    rid = req["id"]
    c = flow.client
    assert (
        c.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=sharer.headers
        ).status_code
        == 200
    )
    up = c.post(
        f"/v1/owner/evidence/{rid}",
        files={"file": ("a.mp4", b"z" * 100, "video/mp4")},
        headers=sharer.headers,
    )
    assert up.status_code == 201
    draft = flow.create()
    db.execute(
        "UPDATE requests.requests SET due_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])",
        [rid, draft["id"]],
    )
    assert eventually(lambda: flow.read(rid)["state"] == "expired")
    assert eventually(lambda: flow.read(draft["id"])["state"] == "expired")
    states = {
        r["registration_id"]: r["state"]
        for r in db.fetch(
            "SELECT registration_id::text, state FROM requests.targets WHERE request_id = $1", rid
        )
    }
    assert states == {waiting.registration_id: "expired", sharer.registration_id: "completed"}
    late = c.post(f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=waiting.headers)
    assert late.status_code == 409
    steps = [
        e["action"]
        for e in c.get(f"/v1/requests/{rid}/events", headers=flow.inv()).json()["events"]
        if e["subject"] == "request"
    ]
    assert steps[-1] == "expire"


def test_evidence_past_retention_is_deleted_unless_under_legal_hold(
    flow: Flow, new_owner: NewOwner, db: Db, suite: Suite, auth: Token
) -> None:
    files: dict[str, Path] = {}
    ids: dict[str, str] = {}
    root = Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "objects"
    for name in ("held", "expired"):
        owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
        req = flow.sent()
        assert (
            flow.client.post(
                f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=owner.headers
            ).status_code
            == 200
        )
        up = flow.client.post(
            f"/v1/owner/evidence/{req['id']}",
            files={"file": (f"{name}.mp4", name.encode() * 1000, "video/mp4")},
            headers=owner.headers,
        )
        sha = up.json()["sha256"]
        files[name], ids[name] = root / sha[:2] / sha[2:4] / sha, up.json()["id"]
        if name == "held":
            assert (
                flow.client.put(
                    f"/v1/requests/{req['id']}/legal-hold",
                    json={"legal_hold": True},
                    headers={**flow.inv(), "If-Match": "*"},
                ).status_code
                == 403
            )
            r = flow.client.put(
                f"/v1/requests/{req['id']}/legal-hold",
                json={"legal_hold": True, "note": "court order"},
                headers={**flow.sup(), "If-Match": "*"},
            )
            assert r.status_code == 200 and r.json()["legal_hold"] is True
        assert flow.act(req["id"], "close").status_code == 200
    db.execute(
        "UPDATE requests.evidence SET uploaded_at = now() - interval '400 days' WHERE id = ANY($1::uuid[])",
        list(ids.values()),
    )
    assert eventually(lambda: not files["expired"].exists())
    assert files["held"].exists()
    gone = flow.client.get(f"/v1/evidence/{ids['expired']}", headers=flow.inv()).json()
    assert gone["deleted_at"] and gone["deleted_reason"].startswith("retention")
    assert flow.client.get(f"/v1/evidence/{ids['expired']}/content", headers=flow.inv()).status_code == 410
    custody = flow.client.get(f"/v1/evidence/{ids['expired']}/custody", headers=flow.inv()).json()
    assert [r["action"] for r in custody["records"]] == ["upload", "delete"] and custody["chain_intact"]
    assert db.fetchval("SELECT deleted_at FROM requests.evidence WHERE id = $1", ids["held"]) is None


def test_webhook_events_carry_a_per_target_sequence_that_orders_them_whatever_the_arrival(
    flow: Flow, new_owner: NewOwner, auth: Token, hook: tuple[str, Hook], db: Db
) -> None:
    url, state = hook
    admin = auth("agency_admin", flow.agency.slug)
    assert flow.client.put(
        f"/v1/agencies/{flow.agency.slug}/webhook", json={"url": url}, headers=admin
    ).is_success
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    other = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    req = flow.sent()
    c = flow.client
    state.fail_next = 1  # the accept's first delivery fails: it is retried after the upload's
    accept = c.post(
        f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=owner.headers
    )
    assert accept.status_code == 200
    assert eventually(lambda: len(state.received) == 1)
    up = c.post(
        f"/v1/owner/evidence/{req['id']}",
        files={"file": ("a.mp4", b"\x00\x00\x00\x18ftypmp42" + b"a" * 64, "video/mp4")},
        headers=owner.headers,
    )
    assert up.status_code == 201, up.text
    assert eventually(lambda: len(state.received) == 2)
    db.execute(
        "UPDATE requests.outbox SET next_attempt_at = now() WHERE request_id = $1 AND status = 'pending'"
        " AND channel = 'agency_webhook'",
        req["id"],
    )
    assert eventually(lambda: len(state.received) == 3)
    # Another target's events are numbered on their own.
    c.post(f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=other.headers)
    assert eventually(lambda: len(state.received) == 4)
    delivered = [WebhookDelivery.model_validate_json(b) for _, b in state.received[1:]]
    arrival = [(d.event, d.data.sequence) for d in delivered]
    assert arrival[:2] == [("target.uploaded", 2), ("target.accepted", 1)]  # out of order on arrival...
    mine = sorted(
        (d for d in delivered if d.data.target_id == delivered[0].data.target_id),
        key=lambda d: d.data.sequence or 0,
    )
    assert [d.event for d in mine] == ["target.accepted", "target.uploaded"]  # ...in order by sequence
    assert arrival[2] == ("target.accepted", 1)


def _trail(db: Db, slug: str) -> Counter[tuple[Any, ...]]:
    """The agency's whole audit trail (both services), as counts of rows of each kind: which service, actor and
    role did what to what kind of subject, with which details — each detail by its name, and by its value where
    that is a count, a flag or a word (a kind, a state), not a time, place or identifier that differs anyway
    between two requests."""
    rows = db.fetch(
        "SELECT service, actor, actor_role, action, subject_type, details::text AS d FROM audit.events"
        " WHERE agency = $1 ORDER BY seq",
        slug,
    )
    out: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        details = json.loads(row["d"])
        kept = tuple(
            sorted(
                (k, v if isinstance(v, int) or (isinstance(v, str) and re.fullmatch(r"[a-z_.]+", v)) else "…")
                for k, v in details.items()
            )
        )
        out[(row["service"], row["actor"], row["actor_role"], row["action"], row["subject_type"], kept)] += 1
    return out


def _settled(db: Db, rid: str, kind: str | None = None) -> bool:
    """The worker took up every owner message queued for the request (sent, or dropped); with `kind`, and one
    of that kind was queued."""
    return bool(
        db.fetchval(
            "SELECT ($2::text IS NULL OR count(*) FILTER (WHERE kind = $2) > 0)"
            " AND count(*) FILTER (WHERE status = 'pending') = 0 FROM requests.outbox WHERE request_id = $1",
            rid,
            kind,
        )
    )


def test_the_audit_trail_does_not_tell_an_owner_who_declined_from_one_who_did_not_answer(
    requests_client: httpx.Client,
    auth: Token,
    new_agency: NewAgency,
    new_owner: NewOwner,
    db: Db,
    mailbox: Mailbox,
) -> None:
    """One owner asked, who declines or does not answer: the agency's whole trail, after the reminder window
    opened and after the request was cancelled, is the same either way (a reminder and a cancellation go only to
    an owner who has not answered, so a record per mail sent would give the answer away)."""
    trails: dict[str, list[Counter[tuple[Any, ...]]]] = {}
    for answer in ("decline", None):
        flow = Flow(requests_client, auth, new_agency())
        owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
        req = flow.sent()
        rid = req["id"]
        mailbox.wait_for(owner.email, lambda m: "asks for camera footage" in str(m["Subject"]), timeout=15)
        assert eventually(partial(_settled, db, rid, "request"))
        if answer:
            r = flow.client.post(
                f"/v1/owner/requests/{rid}/answer", json={"answer": answer}, headers=owner.headers
            )
            assert r.status_code == 200, r.text
        # The reminder window opens: only an owner who has not answered is written to.
        db.execute(
            "UPDATE requests.targets SET notified_at = now() - interval '3 days' WHERE request_id = $1", rid
        )
        db.execute("UPDATE requests.requests SET due_at = now() + interval '20 hours' WHERE id = $1", rid)
        assert eventually(partial(_settled, db, rid, "reminder_due"))
        reminded = any("due" in str(m["Subject"]) for m in mailbox.to(owner.email))
        assert reminded is (answer is None)
        after_reminder = _trail(db, flow.agency.slug)
        assert flow.act(rid, "cancel").status_code == 200
        assert eventually(partial(_settled, db, rid))
        told = any("no longer" in str(m["Subject"]) for m in mailbox.to(owner.email))
        assert told is (answer is None)
        after_cancel = _trail(db, flow.agency.slug)
        everything = db.fetch("SELECT * FROM audit.events WHERE agency = $1", flow.agency.slug)
        assert not any(owner.registration_id in str(dict(row)) for row in everything)
        trails[answer or "silent"] = [after_reminder, after_cancel]
    assert trails["decline"][0] == trails["silent"][0]
    assert trails["decline"][1] == trails["silent"][1]


@pytest.mark.parametrize("change", ["paused", "unshared"])
def test_an_owner_who_paused_or_stopped_sharing_gets_no_reminder_or_cancellation_from_the_agency(
    change: str,
    requests_client: httpx.Client,
    registry: httpx.Client,
    auth: Token,
    new_agency: NewAgency,
    new_owner: NewOwner,
    db: Db,
    mailbox: Mailbox,
) -> None:
    """Asked by an agency it shared with, the owner pauses the registration or stops sharing it with that agency:
    the agency's reminder and its "no longer needs footage" are dropped, not mailed."""
    program = asking = new_agency()
    if change == "unshared":  # another agency over the same area, which the owner shared with
        asking = Agency("r-" + uuid.uuid4().hex[:10], program.west, program.south)
        jurisdiction = box(program.west, program.south, program.west + 0.1, program.south + 0.1)
        r = registry.post(
            "/v1/agencies",
            json={"slug": asking.slug, "name": f"County {asking.slug}", "jurisdiction": jurisdiction},
            headers=auth("agency_admin", asking.slug),
        )
        assert r.status_code == 201, r.text
    owner = new_owner(program, asking.near(dx=OFFSET), share_with=[asking.slug] if asking != program else [])
    flow = Flow(requests_client, auth, asking)
    req = flow.sent()
    rid = req["id"]
    mailbox.wait_for(owner.email, lambda m: "asks for camera footage" in str(m["Subject"]), timeout=15)
    patch_registration(registry, owner, {"status": "paused"} if change == "paused" else {"share_with": []})
    db.execute(
        "UPDATE requests.targets SET notified_at = now() - interval '3 days' WHERE request_id = $1", rid
    )
    db.execute("UPDATE requests.requests SET due_at = now() + interval '20 hours' WHERE id = $1", rid)
    assert eventually(lambda: _settled(db, rid, "reminder_due"))
    assert flow.act(rid, "cancel").status_code == 200
    assert eventually(lambda: _settled(db, rid, "request_cancelled"))
    statuses = db.fetch(
        "SELECT kind, status FROM requests.outbox WHERE request_id = $1 AND channel = 'owner_email'"
        " ORDER BY created_at",
        rid,
    )
    assert [(r["kind"], r["status"]) for r in statuses] == [
        ("request", "delivered"),
        ("reminder_due", "cancelled"),
        ("request_cancelled", "cancelled"),
    ]
    subjects = [str(m["Subject"]) for m in mailbox.to(owner.email)]
    assert not any("due" in s or "no longer" in s for s in subjects), subjects


def test_a_worker_killed_mid_batch_sends_each_mail_once_under_its_outbox_message_id(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    """A batch of 20 held by a slow webhook: its mails are settled as they go, so a kill -9 of the worker at that
    point re-sends none of them; every mail carries the Message-ID of its outbox row."""
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from services.requests_api.webhooks import secret_context
    from shared.crypto import keyring
    from shared.mail import message_id
    from tests.conftest import APP_URL, BASE_URL
    from tests.support import ROOT, create_test_database, drop_database, free_port, smtp_sink, with_database

    arrived, release = threading.Event(), threading.Event()
    deliveries: list[str] = []

    class SlowHook(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            deliveries.append(self.headers["X-Canvass-Delivery"])
            arrived.set()
            release.wait(60)  # the test holds the batch here until it has killed the worker
            try:
                self.send_response(204)
                self.end_headers()
            except OSError:  # the killed worker's connection is gone
                pass

    # A database of its own, so that the suite's worker takes none of these messages.
    name = create_test_database(BASE_URL)
    db = Db(with_database(BASE_URL, name))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with smtp_sink() as (smtp_port, box), http_server(SlowHook) as hook_port:
            agency = "t-kill-" + uuid.uuid4().hex[:6]
            now = datetime.now(UTC)
            db.execute(
                "INSERT INTO requests.agency_webhooks (agency, url, secret_enc) VALUES ($1, $2, $3)",
                agency,
                f"http://127.0.0.1:{hook_port}/hook",
                keyring().seal("s3cret", secret_context(agency)),
            )
            mails: dict[uuid.UUID, str] = {}
            for i in range(39):
                rid, to = uuid.uuid4(), f"creator-{i}-{uuid.uuid4().hex[:6]}@example.org"
                db.execute(
                    "INSERT INTO requests.requests (id, agency, agency_name, case_number, category, incident_point,"
                    " area_kind, area, area_m2, window_start, window_end, message, due_at, state,"
                    " requires_approval, evidence_retention_days, created_by, creator_email_enc)"
                    " VALUES ($1, $2, 'PD', $3, 'burglary', ST_SetSRID(ST_MakePoint(-87.9, 43.0), 4326), 'radius',"
                    " ST_Buffer(ST_SetSRID(ST_MakePoint(-87.9, 43.0), 4326), 0.001), 100, $4, $5, 'm', $6, 'sent',"
                    " false, 30, 'det', $7)",
                    rid,
                    agency,
                    f"C-{i}",
                    now - timedelta(hours=2),
                    now - timedelta(hours=1),
                    now + timedelta(days=7),
                    keyring().seal(to, f"request:{rid}:creator_email"),
                )
                oid = uuid.uuid4()
                db.execute(
                    "INSERT INTO requests.outbox (id, channel, kind, request_id, agency, payload, next_attempt_at)"
                    " VALUES ($1, 'agency_email', 'target.accepted', $2, $3, $4, now() - interval '30 minutes')",
                    oid,
                    rid,
                    agency,
                    json.dumps({"subject": f"Accepted {i}", "body": "An owner accepted."}),
                )
                mails[oid] = to
            hook_id = uuid.uuid4()
            # The webhook is due first, so it is in the first batch of 20, with 19 mails.
            db.execute(
                "INSERT INTO requests.outbox (id, channel, kind, agency, payload, next_attempt_at)"
                " VALUES ($1, 'agency_webhook', 'target.accepted', $2, '{}', now() - interval '1 hour')",
                hook_id,
                agency,
            )
            env = dict(
                service_env,
                DATABASE_URL=with_database(APP_URL, name),
                CANVASS_SMTP_PORT=str(smtp_port),
                REGISTRY_API_URL=f"http://127.0.0.1:{free_port()}",
                CANVASS_WORKER_POLL_S="0.1",
                CANVASS_WORKER_JOBS_S="3600",
                CANVASS_OUTBOX_LEASE_S="2",
                CANVASS_DELIVERY_TIMEOUT_S="60",
            )

            def start() -> subprocess.Popen[bytes]:
                p = subprocess.Popen(
                    [sys.executable, "-m", "services.requests_api.worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=(tmp_path / f"worker-{len(workers)}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
                workers.append(p)
                return p

            def delivered() -> int:
                return int(
                    db.fetchval(
                        "SELECT count(*) FROM requests.outbox WHERE status = 'delivered' AND channel = 'agency_email'"
                    )
                )

            first = start()
            assert arrived.wait(60), "the webhook was not called"
            # While the webhook holds the batch, its 19 mails are sent and each already settled.
            assert eventually(lambda: delivered() == 19, timeout=30), delivered()
            first.kill()  # kill -9, by its own process id, with the webhook still in flight
            first.wait(10)
            release.set()
            second = start()
            assert eventually(lambda: delivered() == 39, timeout=60), delivered()
            assert eventually(
                lambda: (
                    db.fetchval("SELECT status FROM requests.outbox WHERE id = $1", hook_id) == "delivered"
                ),
                timeout=30,
            )
            second.terminate()
            second.wait(10)

            with box.lock:
                sent = [m for m in box.messages if str(m["To"]) in mails.values()]
            per_id = Counter(str(m["Message-ID"]) for m in sent)
            assert per_id == Counter({message_id("outbox", oid): 1 for oid in mails}), per_id
            for m in sent:  # each under its own row's id
                assert mails[uuid.UUID(str(m["Message-ID"]).split(".", 1)[1].split("@")[0])] == str(m["To"])
            # The webhook in flight at the kill is delivered again, under the same delivery id.
            assert deliveries == [str(hook_id), str(hook_id)]
    finally:
        release.set()
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        db.close()
        drop_database(BASE_URL, name)
