"""requests_api's writes of a request take If-Match as registry_api's updates do (shared/concurrency.py): none is
a 428 that changes nothing, a stale one a 412 naming the current ETag, the current one (or `*`) goes through."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from functools import partial

import httpx

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


# Sessions of this test's database waiting for a lock (pg_locks shows every database's; a row lock's waiter waits
# on a transaction id, which names none, so its session's database is asked of pg_stat_activity).
WAITING = (
    "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND a.datname = current_database()"
)
Call = Callable[[], httpx.Response]


def _waiting_at_least(db: Db, n: int) -> bool:
    return bool(db.fetchval(WAITING) >= n)


def _queued_on_the_row(db: Db, database_url: str, request_id: str, calls: Sequence[Call]) -> list[int]:
    """Make the calls while a third session holds the request's row, each started once the ones before it are
    seen waiting for the row, so that they reach it in this order when it is let go; their statuses, in order.
    Every call has read (or waits to read) the request before any writes it: only the first to write may go
    through."""
    holder = Db(database_url)
    answers: dict[int, int] = {}

    def run(i: int, call: Call) -> None:
        answers[i] = call().status_code

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM requests.requests WHERE id = $1 FOR UPDATE", uuid.UUID(request_id))
        for n, t in enumerate(threads, 1):
            t.start()
            assert eventually(partial(_waiting_at_least, db, n)), f"call {n} never waited for the row"
        holder.execute("COMMIT")
        for t in threads:
            t.join(30)
    finally:
        holder.close()
    return [answers.get(i, 0) for i in range(len(calls))]


def test_two_legal_holds_naming_the_same_etag_at_once_one_is_set_and_the_other_is_412(
    flow: Flow, db: Db, database_url: str
) -> None:
    req = flow.create()
    path = f"/v1/requests/{req['id']}/legal-hold"
    headers = {**flow.sup(), "If-Match": f'"{req["version"]}"'}
    answers = _queued_on_the_row(
        db,
        database_url,
        req["id"],
        [
            partial(flow.client.put, path, json={"legal_hold": hold}, headers=headers)
            for hold in (True, False)
        ],
    )
    assert answers == [200, 412], answers
    after = flow.read(req["id"])
    assert (after["version"], after["legal_hold"]) == (req["version"] + 1, True)


def test_a_legal_hold_and_a_transition_naming_the_same_etag_the_first_goes_through_the_other_is_412(
    flow: Flow, db: Db, database_url: str
) -> None:
    """Whichever reaches the request first: the hold first (the transition checked its If-Match on a request it
    had not locked, and went through too), or the transition first."""
    for hold_first in (True, False):
        req = flow.create()
        etag = {"If-Match": f'"{req["version"]}"'}
        hold = partial(
            flow.client.put,
            f"/v1/requests/{req['id']}/legal-hold",
            json={"legal_hold": True},
            headers={**flow.sup(), **etag},
        )
        submit = partial(
            flow.client.post,
            f"/v1/requests/{req['id']}/transitions",
            json={"action": "submit"},
            headers={**flow.inv(), **etag},
        )
        calls = [hold, submit] if hold_first else [submit, hold]
        assert _queued_on_the_row(db, database_url, req["id"], calls) == [200, 412], hold_first
        after = flow.read(req["id"])
        assert after["version"] == req["version"] + 1
        assert (after["legal_hold"], after["state"]) == (
            (True, "draft") if hold_first else (False, "pending_approval")
        )


def test_two_transitions_naming_the_same_etag_one_goes_through_and_the_other_is_412(
    flow: Flow, db: Db, database_url: str
) -> None:
    """Two transitions both possible from the state read: the second is refused for its stale ETag (412), not
    tried against the state the first left (it was a 409)."""
    req = flow.create()
    path = f"/v1/requests/{req['id']}/transitions"
    headers = {**flow.inv(), "If-Match": f'"{req["version"]}"'}
    answers = _queued_on_the_row(
        db,
        database_url,
        req["id"],
        [partial(flow.client.post, path, json={"action": a}, headers=headers) for a in ("submit", "cancel")],
    )
    assert answers == [200, 412], answers
    after = flow.read(req["id"])
    assert (after["state"], after["version"]) == ("pending_approval", req["version"] + 1)
