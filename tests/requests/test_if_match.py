"""requests_api's writes of a request take If-Match as registry_api's updates do (shared/concurrency.py): none is
a 428 that changes nothing, a stale one a 412 naming the current ETag, the current one (or `*`) goes through."""

from __future__ import annotations

from tests.requests.conftest import Flow


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
