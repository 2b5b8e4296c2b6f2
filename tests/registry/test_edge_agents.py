"""Edge agents and the relay's window check: an owner's one-time enrolment code works once and expires; the agent's
credential is stored only as a hash, is good for its own registration alone, and stops working the moment it is
revoked or the registration deleted; the service-only window check says yes only for an open window to that agency
that includes that camera as the agency sees it; and no answer an agency can read carries a camera's address."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import Token
from tests.registry.conftest import Agency, NewAgency, Register, owner, point
from tests.support import eventually

PROBLEM = "application/problem+json"


def _live(
    register: Register, agency: Agency, share_with: list[str], endpoint: str
) -> tuple[dict[str, Any], str]:
    return register(
        agency,
        share_with=share_with,
        cameras=[
            {"label": "front", "live_mode": "on_alert", "live_endpoint": endpoint},
            {"label": "garage"},
        ],
    )


def _camera(reg: dict[str, Any], label: str) -> str:
    return next(str(c["id"]) for c in reg["properties"]["cameras"] if c["label"] == label)


def _code(registry: httpx.Client, rid: str, cred: str) -> str:
    r = registry.post(f"/v1/registrations/{rid}/edge-agents", headers=owner(cred))
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return str(r.json()["code"])


def _enrol(registry: httpx.Client, rid: str, cred: str) -> dict[str, Any]:
    r = registry.post("/v1/edge-agents/enrol", json={"code": _code(registry, rid, cred)})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    assert out["registration_id"] == rid
    return out


def _as_agent(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _open(registry: httpx.Client, rid: str, cred: str, **body: Any) -> str:
    r = registry.post(
        f"/v1/registrations/{rid}/live-windows",
        json={"reason": "alert", "duration_s": 3600, **body},
        headers=owner(cred),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _patch(registry: httpx.Client, rid: str, cred: str, body: dict[str, Any]) -> None:
    etag = registry.get(f"/v1/registrations/{rid}", headers=owner(cred)).headers["etag"]
    r = registry.patch(f"/v1/registrations/{rid}", json=body, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text


def _registry_rows_text(db: Any) -> str:
    """Every row of every table of the registry schema, as text (bytea as hex)."""
    tables = db.fetch(
        "SELECT quote_ident(table_name) AS t FROM information_schema.tables"
        " WHERE table_schema = 'registry' AND table_type = 'BASE TABLE'"
    )
    return "\n".join(
        r["row"]
        for t in tables
        for r in db.fetch(f"SELECT x::text AS row FROM registry.{t['t']} x")  # noqa: S608
    )


def test_an_enrolment_code_works_once_and_code_and_credential_are_stored_only_as_hashes(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any
) -> None:
    city = new_agency()
    reg, cred = _live(register, city, [], "rtsps://cam.example.net:322/once")
    rid = reg["id"]
    code = _code(registry, rid, cred)
    r = registry.post("/v1/edge-agents/enrol", json={"code": code})
    assert r.status_code == 201, r.text
    enrolled = r.json()
    credential = enrolled["credential"]
    assert credential.startswith(f"cva_{uuid.UUID(enrolled['agent_id']).hex}_")

    again = registry.post("/v1/edge-agents/enrol", json={"code": code})
    assert again.status_code == 400 and again.headers["content-type"] == PROBLEM
    assert again.json()["type"].endswith("/invalid-enrolment-code")

    # Neither the code nor the credential's secret is anywhere in the registry's tables or the audit trail; the
    # agent's row holds the credential's SHA-256.
    secret = credential.split("_", 2)[2]
    stored = _registry_rows_text(db)
    audit = "\n".join(r["row"] for r in db.fetch("SELECT x::text AS row FROM audit.events x"))
    for plain in (code, secret, code.encode().hex(), secret.encode().hex()):
        assert plain not in stored and plain not in audit
    [row] = db.fetch(
        "SELECT registration_id, credential_hash FROM registry.edge_agents WHERE id = $1",
        uuid.UUID(enrolled["agent_id"]),
    )
    assert str(row["registration_id"]) == rid
    assert bytes(row["credential_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert db.fetchval(
        "SELECT used_at IS NOT NULL FROM registry.edge_agent_enrolments WHERE code_hash = $1",
        hashlib.sha256(code.encode()).digest(),
    )

    # The agent works, and the owner sees it (with when it was last seen); both steps are audited.
    assert registry.get("/v1/edge-agents/me/windows", headers=_as_agent(credential)).json() == []
    listed = registry.get(f"/v1/registrations/{rid}/edge-agents", headers=owner(cred)).json()
    assert [(a["id"], a["revoked_at"]) for a in listed] == [(enrolled["agent_id"], None)]
    assert listed[0]["last_seen_at"] is not None
    actions = [
        r["action"]
        for r in db.fetch(
            "SELECT action FROM audit.events WHERE action LIKE 'edge_agent.%'"
            " AND (subject_id = $1 OR subject_id = $2) ORDER BY seq",
            rid,
            enrolled["agent_id"],
        )
    ]
    assert actions == ["edge_agent.enrolment_code", "edge_agent.enrol"]


def test_an_expired_enrolment_code_is_refused(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any
) -> None:
    reg, cred = register(new_agency())
    code = _code(registry, reg["id"], cred)
    expires = db.fetchval(
        "SELECT expires_at FROM registry.edge_agent_enrolments WHERE code_hash = $1",
        hashlib.sha256(code.encode()).digest(),
    )
    now = datetime.now(UTC)
    assert now + timedelta(minutes=14) < expires <= now + timedelta(minutes=16)  # the 15 minutes promised
    db.execute(
        "UPDATE registry.edge_agent_enrolments SET expires_at = now() - interval '1 second' WHERE code_hash = $1",
        hashlib.sha256(code.encode()).digest(),
    )
    r = registry.post("/v1/edge-agents/enrol", json={"code": code})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert (
        db.fetchval(
            "SELECT count(*) FROM registry.edge_agents WHERE registration_id = $1", uuid.UUID(reg["id"])
        )
        == 0
    )


def test_revoking_an_agent_or_deleting_the_registration_refuses_its_credential_at_once(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any
) -> None:
    reg, cred = register(new_agency())
    rid = reg["id"]
    first, second = _enrol(registry, rid, cred), _enrol(registry, rid, cred)
    me = "/v1/edge-agents/me/windows"
    assert registry.get(me, headers=_as_agent(first["credential"])).status_code == 200

    r = registry.delete(f"/v1/registrations/{rid}/edge-agents/{first['agent_id']}", headers=owner(cred))
    assert r.status_code == 204, r.text
    refused = registry.get(me, headers=_as_agent(first["credential"]))
    assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM
    assert registry.get(me, headers=_as_agent(second["credential"])).status_code == 200
    listed = {
        a["id"]: a["revoked_at"]
        for a in registry.get(f"/v1/registrations/{rid}/edge-agents", headers=owner(cred)).json()
    }
    assert listed[first["agent_id"]] is not None and listed[second["agent_id"]] is None
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'edge_agent.revoke' AND subject_id = $1",
            first["agent_id"],
        )
        == 1
    )
    # Another registration's agent id, or one never enrolled: 404.
    assert (
        registry.delete(
            f"/v1/registrations/{rid}/edge-agents/{uuid.uuid4()}", headers=owner(cred)
        ).status_code
        == 404
    )

    etag = registry.get(f"/v1/registrations/{rid}", headers=owner(cred)).headers["etag"]
    assert (
        registry.delete(f"/v1/registrations/{rid}", headers={**owner(cred), "If-Match": etag}).status_code
        == 204
    )
    assert registry.get(me, headers=_as_agent(second["credential"])).status_code == 401
    assert (
        db.fetchval("SELECT count(*) FROM registry.edge_agents WHERE registration_id = $1", uuid.UUID(rid))
        == 0
    )
    assert (
        db.fetchval(
            "SELECT count(*) FROM registry.edge_agent_enrolments WHERE registration_id = $1", uuid.UUID(rid)
        )
        == 0
    )


def test_an_agent_sees_its_own_registrations_open_windows_and_nothing_of_another(
    registry: httpx.Client, new_agency: NewAgency, register: Register
) -> None:
    city = new_agency()
    mine, mine_cred = _live(register, city, [], "rtsps://cam.example.net:322/mine")
    other, other_cred = _live(register, city, [], "rtsps://cam.example.net:322/other")
    agent = _enrol(registry, mine["id"], mine_cred)
    stranger = _enrol(registry, other["id"], other_cred)
    wid = _open(registry, mine["id"], mine_cred)

    windows = registry.get("/v1/edge-agents/me/windows", headers=_as_agent(agent["credential"]))
    assert windows.status_code == 200, windows.text
    [w] = windows.json()
    assert w["window_id"] == wid and w["cameras"] == [_camera(mine, "front")]
    assert registry.get("/v1/edge-agents/me/windows", headers=_as_agent(stranger["credential"])).json() == []

    # The agent's credential is no owner credential: it manages nothing, its own registration included.
    for path in (f"/v1/registrations/{mine['id']}", f"/v1/registrations/{mine['id']}/edge-agents"):
        assert registry.get(path, headers=_as_agent(agent["credential"])).status_code == 401
    # Nor is an owner's credential an agent's; and a secret is good only with its own agent's id.
    assert registry.get("/v1/edge-agents/me/windows", headers=owner(mine_cred)).status_code == 401
    swapped = f"cva_{uuid.UUID(stranger['agent_id']).hex}_{agent['credential'].split('_', 2)[2]}"
    assert registry.get("/v1/edge-agents/me/windows", headers=_as_agent(swapped)).status_code == 401

    registry.post(f"/v1/registrations/{mine['id']}/live-windows/{wid}/close", headers=owner(mine_cred))
    assert registry.get("/v1/edge-agents/me/windows", headers=_as_agent(agent["credential"])).json() == []


def test_the_window_check_is_true_only_for_an_open_window_to_that_agency_that_includes_that_camera(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register
) -> None:
    city = new_agency()
    county = new_agency(within=city)
    outsider = new_agency(within=city)
    far = new_agency()  # shared with, in the window, but the camera is outside its jurisdiction
    reg, cred = _live(
        register, city, [county.slug, outsider.slug, far.slug], "rtsps://cam.example.net:322/chk"
    )
    rid, front, garage = reg["id"], _camera(reg, "front"), _camera(reg, "garage")
    service = auth("service", None, sub="live_relay")

    def check(agency: str, camera: str, headers: dict[str, str] = service) -> httpx.Response:
        return registry.get(
            "/v1/live-windows/check", params={"agency": agency, "camera_id": camera}, headers=headers
        )

    assert check(county.slug, front).status_code == 404  # no window yet
    wid = _open(registry, rid, cred, agencies=[city.slug, county.slug, far.slug])
    ok = check(county.slug, front)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["window_id"] == wid and body["camera_id"] == front and body["registration_id"] == rid
    mine = registry.get(f"/v1/registrations/{rid}/live-windows", headers=owner(cred)).json()
    assert body["expires_at"] == next(w["expires_at"] for w in mine if w["id"] == wid)
    assert check(city.slug, front).status_code == 200
    for agency, camera in (
        (outsider.slug, front),  # shared with, not in the window
        (far.slug, front),  # in the window, the camera outside its jurisdiction
        (county.slug, garage),  # not in the window (no live mode)
        (county.slug, str(uuid.uuid4())),
        ("no-such-agency", front),
    ):
        r = check(agency, camera)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, (agency, camera, r.text)

    # Only a Canvass service asks.
    assert check(county.slug, front, auth("investigator", county.slug)).status_code == 403
    assert check(county.slug, front, owner(cred)).status_code == 401
    assert check(county.slug, front, {}).status_code == 401

    # Unsharing takes the agency out for good; closing ends it for everyone.
    _patch(registry, rid, cred, {"share_with": [outsider.slug, far.slug]})
    assert check(county.slug, front).status_code == 404
    assert check(city.slug, front).status_code == 200
    registry.post(f"/v1/registrations/{rid}/live-windows/{wid}/close", headers=owner(cred))
    assert check(city.slug, front).status_code == 404

    # Withdrawing the registration closes its windows.
    _open(registry, rid, cred)
    assert check(city.slug, front).status_code == 200
    _patch(registry, rid, cred, {"status": "withdrawn"})
    assert check(city.slug, front).status_code == 404

    # A window ends by the clock.
    _patch(registry, rid, cred, {"status": "active"})
    _open(registry, rid, cred, duration_s=1)
    assert eventually(lambda: check(city.slug, front).status_code == 404, timeout=15)


def test_no_answer_an_agency_reads_carries_a_cameras_stream_address(
    registry: httpx.Client,
    geo: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    new_agency: NewAgency,
    register: Register,
) -> None:
    city = new_agency()
    address = f"rtsps://viewer:pw-{uuid.uuid4().hex}@cam.example.net:322/leak"
    lon, lat = city.inside()
    reg, cred = register(
        city,
        location=point([lon, lat]),
        cameras=[
            {
                "label": "front",
                "location": point([lon, lat]),
                "live_mode": "on_alert",
                "live_endpoint": address,
            }
        ],
    )
    rid, cam = reg["id"], _camera(reg, "front")
    # The owner still sees and manages their own endpoint.
    assert (
        registry.get(f"/v1/registrations/{rid}", headers=owner(cred)).json()["properties"]["cameras"][0][
            "live_endpoint"
        ]
        == address
    )
    wid = _open(registry, rid, cred)
    inv = auth("investigator", city.slug, sub="det-leak")
    now = datetime.now(UTC)
    made = requests_client.post(
        "/v1/requests",
        json={
            "case_number": f"C-{uuid.uuid4().hex[:8]}",
            "category": "burglary",
            "incident": point([lon, lat]),
            "radius_m": 100,
            "camera_ids": [cam],
            "window": {
                "start": (now - timedelta(hours=6)).isoformat(),
                "end": (now - timedelta(hours=4)).isoformat(),
            },
            "message": "Footage of the street, please.",
        },
        headers=inv,
    )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    d = 0.01
    answers = [
        registry.get("/v1/live-windows", headers=inv),
        registry.get(f"/v1/live-windows/{wid}", headers=inv),
        registry.get(f"/v1/registrations/{rid}/contact", params={"case_number": "2026-0001"}, headers=inv),
        geo.get(
            "/v1/cameras/radius",
            params={"lon": lon, "lat": lat, "radius_m": 500, "case_number": "2026-0001"},
            headers=inv,
        ),
        geo.get(
            "/v1/cameras/nearest", params={"lon": lon, "lat": lat, "case_number": "2026-0001"}, headers=inv
        ),
        geo.get(
            "/v1/cameras/bbox",
            params={"bbox": f"{lon - d},{lat - d},{lon + d},{lat + d}", "case_number": "2026-0001"},
            headers=inv,
        ),
        geo.get(
            "/v1/ogc/collections/cameras/items",
            params={"bbox": f"{lon - d},{lat - d},{lon + d},{lat + d}"},
            headers=inv,
        ),
        geo.get(f"/v1/ogc/collections/cameras/items/{cam}", headers=inv),
        requests_client.get(f"/v1/requests/{request_id}", headers=inv),
        requests_client.get("/v1/requests", headers=inv),
        requests_client.get(f"/v1/requests/{request_id}/events", headers=inv),
    ]
    for r in answers:
        assert r.status_code == 200, (str(r.url), r.status_code, r.text[:300])
    # The searches and the window did find the camera: its address is not there because it is never given.
    for r in answers[1:2] + answers[3:8]:
        assert cam in r.text, str(r.url)
    leaked = [str(r.url) for r in answers if address in r.text or "cam.example.net" in r.text]
    assert leaked == []


def test_with_an_edge_agent_a_camera_joins_windows_without_any_address_and_leaves_them_with_the_last_agent(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    city = new_agency()
    reg, cred = register(city, cameras=[{"label": "door", "live_mode": "on_alert"}])
    rid, door = reg["id"], _camera(reg, "door")
    base = f"/v1/registrations/{rid}/live-windows"
    refused = registry.post(base, json={"duration_s": 600}, headers=owner(cred))
    assert refused.status_code == 422, refused.text  # no endpoint, no agent: nothing to watch

    agent = _enrol(registry, rid, cred)
    wid = _open(registry, rid, cred)
    service = auth("service", None, sub="live_relay")
    params = {"agency": city.slug, "camera_id": door}
    assert registry.get("/v1/live-windows/check", params=params, headers=service).json()["window_id"] == wid
    [w] = registry.get("/v1/edge-agents/me/windows", headers=_as_agent(agent["credential"])).json()
    assert w["cameras"] == [door]
    assert (
        db.fetchval("SELECT live_endpoint_enc FROM registry.cameras WHERE id = $1", uuid.UUID(door)) is None
    )

    # Revoking the only agent takes the camera out of the window for good (the window, left with none, closes).
    r = registry.delete(f"/v1/registrations/{rid}/edge-agents/{agent['agent_id']}", headers=owner(cred))
    assert r.status_code == 204
    assert registry.get("/v1/live-windows/check", params=params, headers=service).status_code == 404
    mine = registry.get(base, headers=owner(cred)).json()
    assert [(x["id"], x["state"]) for x in mine] == [(wid, "closed")]
    again = _enrol(registry, rid, cred)
    assert registry.get("/v1/live-windows/check", params=params, headers=service).status_code == 404
    assert registry.get("/v1/edge-agents/me/windows", headers=_as_agent(again["credential"])).json() == []


def test_an_agent_opens_and_closes_windows_of_its_own_registration_only_and_says_who_it_is(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any
) -> None:
    city = new_agency()
    reg, cred = _live(register, city, [city.slug], "rtsps://cam.example.net:322/trigger")
    other, other_cred = _live(register, city, [city.slug], "rtsps://cam.example.net:322/neighbour")
    agent = _enrol(registry, reg["id"], cred)
    me = registry.get("/v1/edge-agents/me", headers=_as_agent(agent["credential"]))
    assert me.status_code == 200, me.text
    assert me.json() == {"agent_id": agent["agent_id"], "registration_id": reg["id"]}

    # The local trigger: a window on the agent's registration, under the owner's rules, audited as the agent.
    r = registry.post(
        "/v1/edge-agents/me/live-windows",
        json={"reason": "alert", "duration_s": 120, "agencies": [city.slug]},
        headers=_as_agent(agent["credential"]),
    )
    assert r.status_code == 201, r.text
    window = r.json()
    assert window["registration_id"] == reg["id"] and window["state"] == "open"
    assert window["cameras"] == [_camera(reg, "front")]
    [row] = db.fetch(
        "SELECT actor, actor_role FROM audit.events WHERE action = 'live_window.open' AND subject_id = $1",
        window["id"],
    )
    assert (row["actor"], row["actor_role"]) == (f"edge_agent:{agent['agent_id']}", "edge_agent")
    # Under the same rules as the owner's: an agency the registration is not shared with is refused.
    bad = registry.post(
        "/v1/edge-agents/me/live-windows",
        json={"agencies": [new_agency().slug]},
        headers=_as_agent(agent["credential"]),
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM

    # Another registration's window is not the agent's to close: 404, and it stays open.
    theirs = _open(registry, other["id"], other_cred)
    r = registry.post(
        f"/v1/edge-agents/me/live-windows/{theirs}/close", headers=_as_agent(agent["credential"])
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    listed = registry.get(f"/v1/registrations/{other['id']}/live-windows", headers=owner(other_cred)).json()
    assert [w["state"] for w in listed if w["id"] == theirs] == ["open"]

    r = registry.post(
        f"/v1/edge-agents/me/live-windows/{window['id']}/close", headers=_as_agent(agent["credential"])
    )
    assert r.status_code == 200 and r.json()["state"] == "closed"

    # Revoked, the credential opens nothing any more.
    r = registry.delete(f"/v1/registrations/{reg['id']}/edge-agents/{agent['agent_id']}", headers=owner(cred))
    assert r.status_code == 204
    for method, path in (("GET", "/v1/edge-agents/me"), ("POST", "/v1/edge-agents/me/live-windows")):
        r = registry.request(
            method, path, json={} if method == "POST" else None, headers=_as_agent(agent["credential"])
        )
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
