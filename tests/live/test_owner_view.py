"""What the owner sees of live sharing, all real on loopback (the synthetic camera, the agent, the relay,
registry_api), asked of the relay with the owner's credential (which registry_api checks): whether their edge agent
is connected now, and each viewing of their cameras — the agency, the camera, the window, when and how long — from
the relay's audit records, never who watched; another owner reads neither."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import Token
from tests.live.conftest import MakeSite, investigator, open_window
from tests.registry.conftest import owner
from tests.support import Server, eventually


def _read_stream(url: str, grant: str, until: threading.Event, got: list[int]) -> None:
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {grant}"}, timeout=30) as r:
        got.append(r.status_code)
        for chunk in r.iter_raw():
            got.append(len(chunk))
            if until.is_set():
                return


def test_the_relay_tells_the_owner_alone_whether_their_agent_is_connected(
    registry: httpx.Client, site: MakeSite, relay: Server
) -> None:
    s, other = site(), site()
    url = f"{relay.url}/v1/registrations/{s.registration_id}/edge-agent"
    agents = registry.get(f"/v1/registrations/{s.registration_id}/edge-agents", headers=owner(s.credential))
    agent_id = agents.json()[0]["id"]
    r = eventually(
        lambda: (got := httpx.get(url, headers=owner(s.credential), timeout=10)).json().get("online") and got,
        timeout=20,
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["online"] is True and body["agent_id"] == agent_id
    assert body["cameras"] == [s.camera_id] and body["streaming"] == []
    # Another owner's credential, a wrong one, none: nothing about this registration.
    theirs = httpx.get(url, headers=owner(other.credential), timeout=10)
    assert theirs.status_code == 401 and agent_id not in theirs.text
    wrong = httpx.get(url, headers=owner(s.credential[:-4] + "AAAA"), timeout=10)
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert httpx.get(url, timeout=10).status_code == 401
    # The agent stops: the relay says so at once (its connection is what the answer is made of).
    s.agent.terminate()
    s.agent.wait(10)
    assert eventually(
        lambda: httpx.get(url, headers=owner(s.credential), timeout=10).json()["online"] is False,
        timeout=10,
    )


def test_the_owner_lists_each_viewing_with_agency_camera_start_and_duration_never_the_investigator(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token
) -> None:
    s, other = site(), site()
    window_id = open_window(registry, s)
    sub = "det-hidden-name-4711"
    r = httpx.post(
        relay.url + "/v1/viewings",
        json={"camera_id": s.camera_id},
        headers=investigator(auth, s.agency, sub=sub),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    v = r.json()
    url = f"{relay.url}/v1/registrations/{s.registration_id}/viewings"

    def listed() -> list[dict[str, Any]]:
        got = httpx.get(url, headers=owner(s.credential), timeout=10)
        assert got.status_code == 200, got.text
        assert sub not in got.text  # never who watched
        out: list[dict[str, Any]] = got.json()
        return out

    assert listed() == []
    until, got = threading.Event(), list[int]()
    reader = threading.Thread(target=_read_stream, args=(relay.url + v["stream"], v["grant"], until, got))
    reader.start()
    # While it is watched: listed, without an end.
    ongoing = eventually(lambda: listed(), timeout=30)
    assert (
        ongoing[0]["viewing_id"] == v["id"]
        and ongoing[0]["ended_at"] is None
        and ongoing[0]["seconds"] is None
    )
    assert eventually(lambda: sum(got[1:]) > 10_000, timeout=30)
    until.set()
    reader.join(30)
    done = eventually(lambda: [w for w in listed() if w["ended_at"] is not None], timeout=10)
    assert len(done) == 1
    viewing = done[0]
    assert viewing == {
        "viewing_id": v["id"],
        "agency": s.agency.slug,
        "camera_id": s.camera_id,
        "window_id": window_id,
        "started_at": viewing["started_at"],
        "ended_at": viewing["ended_at"],
        "seconds": viewing["seconds"],
        "bytes": viewing["bytes"],
        "ended_by": "closed-by-viewer",
    }
    assert viewing["bytes"] > 10_000
    started = datetime.fromisoformat(viewing["started_at"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(viewing["ended_at"].replace("Z", "+00:00"))
    assert 0 < viewing["seconds"] <= (ended - started).total_seconds() + 1
    # Another owner's credential opens their own registration, not this one's viewings; the other registration
    # has none.
    theirs = httpx.get(url, headers=owner(other.credential), timeout=10)
    assert theirs.status_code == 401 and sub not in theirs.text and v["id"] not in theirs.text
    mine = httpx.get(
        f"{relay.url}/v1/registrations/{other.registration_id}/viewings",
        headers=owner(other.credential),
        timeout=10,
    )
    assert mine.status_code == 200 and mine.json() == []
    assert httpx.get(url, timeout=10).status_code == 401
