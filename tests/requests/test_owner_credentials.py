"""An owner's management credential that is replaced (rotated or reset) or whose registration is deleted is
refused by requests_api from the moment registry_api acknowledged the change, as registry_api itself refuses it:
requests_api keeps no cache of credentials it saw work. And an owner's words are written only after the
credential was checked: a deleted owner's note never reaches the table."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import Message

import httpx

from tests.conftest import Suite
from tests.requests.conftest import OFFSET, Flow, NewOwner, Owner, eventually
from tests.support import Db, Mailbox, Server, start_server

NOTE = "Call me after six on 555-0199, the porch camera saw it."


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _both_answer(flow: Flow, registry: httpx.Client, owner: Owner, credential: str) -> tuple[int, int]:
    """What requests_api and registry_api answer to the credential, asked one right after the other."""
    here = flow.client.get("/v1/owner/requests", headers=_bearer(credential)).status_code
    there = registry.get(
        f"/v1/registrations/{owner.registration_id}", headers=_bearer(credential)
    ).status_code
    return here, there


def _text(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def _rotate(registry: httpx.Client, owner: Owner, mailbox: Mailbox) -> str | None:
    r = registry.post(f"/v1/registrations/{owner.registration_id}/credential", headers=owner.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["credential"])


def _reset(registry: httpx.Client, owner: Owner, mailbox: Mailbox) -> str | None:
    assert registry.post("/v1/credential-resets", json={"email": owner.email}).status_code == 202
    mail = mailbox.wait_for(owner.email, lambda m: "cvr_" in _text(m))
    found = re.search(r"cvr_[A-Za-z0-9_-]+", _text(mail))
    assert found is not None
    r = registry.post("/v1/credential-resets/redeem", json={"token": found.group(0)})
    assert r.status_code == 200, r.text
    return str(r.json()["credential"])


def _delete(registry: httpx.Client, owner: Owner, mailbox: Mailbox) -> str | None:
    r = registry.delete(f"/v1/registrations/{owner.registration_id}", headers=owner.headers)
    assert r.status_code == 204, r.text
    return None


def test_a_replaced_or_deleted_credential_is_refused_by_requests_api_at_once(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, mailbox: Mailbox, db: Db
) -> None:
    changes: list[Callable[[httpx.Client, Owner, Mailbox], str | None]] = [_rotate, _reset, _delete]
    for change in changes:
        owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
        rid = flow.sent()["id"]
        # Seen working a moment before the change (a cache would remember this).
        assert _both_answer(flow, registry, owner, owner.credential) == (200, 200)
        assert flow.client.get(f"/v1/owner/requests/{rid}", headers=owner.headers).status_code == 200
        new = change(registry, owner, mailbox)
        assert _both_answer(flow, registry, owner, owner.credential) == (401, 401), change.__name__
        answer = flow.client.post(
            f"/v1/owner/requests/{rid}/answer", json={"answer": "accept", "note": NOTE}, headers=owner.headers
        )
        assert answer.status_code == 401, (change.__name__, answer.text)
        upload = flow.client.post(
            f"/v1/owner/evidence/{rid}",
            files={"file": ("clip.mp4", b"x" * 100, "video/mp4")},
            data={"description": NOTE},
            headers=owner.headers,
        )
        assert upload.status_code == 401, (change.__name__, upload.text)
        state = db.fetchval(
            "SELECT state FROM requests.targets WHERE request_id = $1 AND registration_id = $2",
            rid,
            owner.registration_id,
        )
        assert state in ("notified", "viewed"), change.__name__
        if new is not None:
            assert _both_answer(flow, registry, owner, new) == (200, 200), change.__name__
    assert not db.fetchval("SELECT count(*) FROM requests.events WHERE note = $1", NOTE)
    # An owner's texts are stored sealed (owner_texts.py): the only ones this test sent were refused, so none is.
    assert not db.fetchval(
        "SELECT count(*) FROM requests.events e JOIN requests.requests r ON r.id = e.request_id"
        " WHERE r.agency = $1 AND e.note_enc IS NOT NULL",
        flow.agency.slug,
    )
    assert not db.fetchval(
        "SELECT count(*) FROM requests.evidence v JOIN requests.requests r ON r.id = v.request_id"
        " WHERE r.agency = $1 AND (v.description_enc IS NOT NULL OR v.filename_enc IS NOT NULL)",
        flow.agency.slug,
    )


BLOCKED_BY = (
    "SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database()"
    " AND pg_backend_pid() = ANY(pg_blocking_pids(a.pid))"
)


def test_a_note_is_written_only_after_the_credential_is_checked_again(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, mailbox: Mailbox, database_url: str, db: Db
) -> None:
    """The owner is deleted while their answer, its credential already checked at the door, waits for their
    target (held by this test). The history table is locked by this test too: an answer that wrote its note
    before asking registry_api again would wait on it; the refusal comes while it is held, so nothing was
    written, not even to be rolled back."""
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    rid = flow.sent()["id"]
    target_id = db.fetchval(
        "SELECT id FROM requests.targets WHERE request_id = $1 AND registration_id = $2",
        rid,
        owner.registration_id,
    )
    base = str(flow.client.base_url).rstrip("/")
    target_holder, history_holder = Db(database_url), Db(database_url)
    try:
        target_holder.execute("BEGIN")
        target_holder.execute("SELECT 1 FROM requests.targets WHERE id = $1 FOR UPDATE", target_id)
        history_holder.execute("BEGIN")
        history_holder.execute("LOCK TABLE requests.events IN SHARE MODE")
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(
                httpx.post,
                f"{base}/v1/owner/requests/{rid}/answer",
                json={"answer": "accept", "note": NOTE},
                headers=owner.headers,
                timeout=60,
            )
            assert eventually(lambda: target_holder.fetchval(BLOCKED_BY) == 1, interval=0.01)
            _delete(registry, owner, mailbox)
            target_holder.execute("COMMIT")
            assert eventually(sent.done)
            assert sent.result().status_code == 401, sent.result().text
        history_holder.execute("COMMIT")
    finally:
        target_holder.close()
        history_holder.close()
    assert not db.fetchval("SELECT count(*) FROM requests.events WHERE note = $1", NOTE)


def test_one_guesser_through_requests_api_does_not_lock_out_other_owners(
    suite: Suite, flow: Flow, new_owner: NewOwner
) -> None:
    """As deployed with requests_api in its own container, registry_api does not trust its X-Forwarded-For: the
    owner's address reaches the guess limits with requests_api's service token, so a guesser's wrong credentials
    are counted as the guesser's, not as every owner's."""
    limit = 4
    registry = start_server(
        "registry_api",
        dict(suite.env, FORWARDED_ALLOW_IPS="10.255.255.254", CANVASS_GUESS_LIMIT_PER_CLIENT=str(limit)),
    )
    requests = None
    try:
        requests = start_server("requests_api", dict(suite.env, REGISTRY_API_URL=registry.url))
        victim = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
        other = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
        wrong = other.credential[:-4] + ("AAAA" if not other.credential.endswith("AAAA") else "BBBB")
        with (
            _client_at(requests, "127.0.0.61") as guesser,
            _client_at(requests, "127.0.0.62") as owner,
        ):
            for _ in range(limit):
                assert guesser.get("/v1/owner/requests", headers=_bearer(wrong)).status_code == 401
            assert guesser.get("/v1/owner/requests", headers=_bearer(wrong)).status_code == 429
            assert owner.get("/v1/owner/requests", headers=_bearer(victim.credential)).status_code == 200
    finally:
        if requests is not None:
            requests.stop()
        registry.stop()


def _client_at(server: Server, address: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))
