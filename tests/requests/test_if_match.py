"""requests_api's writes of a request take If-Match as registry_api's updates do (shared/concurrency.py): none is
a 428 that changes nothing, a stale one a 412 naming the current ETag, the current one (or `*`) goes through."""

from __future__ import annotations

import threading
import uuid

from tests.requests.conftest import Flow
from tests.support import Db, eventually


def test_a_transition_without_if_match_is_428_and_leaves_the_request_as_it_was(flow: Flow) -> None:
    req = flow.create()
    path = f"/v1/requests/{req['id']}/transitions"
    for headers in (flow.inv(), {**flow.inv(), "If-Match": ""}):
        r = flow.client.post(path, json={"action": "submit"}, headers=headers)
        assert r.status_code == 428, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "If-Match" in r.json()["detail"]
    after = flow.read(req["id"])
    assert (after["state"], after["version"]) == ("draft", req["version"])


def test_a_transition_with_a_stale_if_match_is_412_and_the_current_one_goes_through(flow: Flow) -> None:
    req = flow.create()
    path = f"/v1/requests/{req['id']}/transitions"
    stale = f'"{req["version"] + 1}"'
    r = flow.client.post(path, json={"action": "submit"}, headers={**flow.inv(), "If-Match": stale})
    assert r.status_code == 412, r.text
    assert r.headers["etag"] == f'"{req["version"]}"'
    assert flow.read(req["id"])["state"] == "draft"
    r = flow.client.post(
        path, json={"action": "submit"}, headers={**flow.inv(), "If-Match": r.headers["etag"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending_approval"
    assert r.headers["etag"] == f'"{r.json()["version"]}"' != f'"{req["version"]}"'


def test_a_legal_hold_without_if_match_is_428_and_with_the_current_etag_is_set(flow: Flow) -> None:
    req = flow.create()
    path = f"/v1/requests/{req['id']}/legal-hold"
    r = flow.client.put(path, json={"legal_hold": True}, headers=flow.sup())
    assert r.status_code == 428, r.text
    assert flow.read(req["id"])["legal_hold"] is False
    etag = f'"{req["version"]}"'
    r = flow.client.put(path, json={"legal_hold": True}, headers={**flow.sup(), "If-Match": '"999"'})
    assert r.status_code == 412, r.text
    r = flow.client.put(path, json={"legal_hold": True}, headers={**flow.sup(), "If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["legal_hold"] is True and r.json()["version"] == req["version"] + 1


def test_two_legal_holds_naming_the_same_etag_at_once_one_is_set_and_the_other_is_412(
    flow: Flow, db: Db, database_url: str
) -> None:
    """Both updates read the request while a third session holds its row, so both have checked (or wait to
    check) their If-Match before either writes: only the one that writes first may go through."""
    req = flow.create()
    path = f"/v1/requests/{req['id']}/legal-hold"
    headers = {**flow.sup(), "If-Match": f'"{req["version"]}"'}
    waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND (database IS NULL OR database = $1)"
    oid = db.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
    holder = Db(database_url)
    answers: list[int] = []
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM requests.requests WHERE id = $1 FOR UPDATE", uuid.UUID(req["id"]))
        puts = [
            threading.Thread(
                target=lambda hold=hold: answers.append(
                    flow.client.put(path, json={"legal_hold": hold}, headers=headers).status_code
                )
            )
            for hold in (True, False)
        ]
        for t in puts:
            t.start()
        assert eventually(lambda: db.fetchval(waiting, oid) >= 2)  # both updates wait on the held row
        holder.execute("COMMIT")
        for t in puts:
            t.join(30)
    finally:
        holder.close()
    assert sorted(answers) == [200, 412], answers
    after = flow.read(req["id"])
    assert after["version"] == req["version"] + 1
