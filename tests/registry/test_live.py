"""Level 2 live sharing: only the owner opens a window, for chosen agencies and a limited time; only those
agencies see its cameras (never their stream addresses), only while it is open; it closes by itself; open, close and view are audited."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Token
from tests.registry.conftest import NewAgency, Register, box, owner, point
from tests.support import eventually

PROBLEM = "application/problem+json"
ENDPOINT = "rtsps://cam.example.net:322/front"


def _live_registration(register: Register, agency: Any, share_with: list[str]) -> tuple[dict[str, Any], str]:
    return register(
        agency,
        share_with=share_with,
        cameras=[
            {"label": "front", "live_mode": "on_alert", "live_endpoint": ENDPOINT},
            {"label": "yard", "live_mode": "emergency", "live_endpoint": "rtsps://cam.example.net:322/yard"},
            {"label": "garage"},
        ],
    )


def test_window_is_visible_only_to_its_agencies_and_closes_by_itself(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    city = new_agency()
    county = new_agency(within=city)
    outsider = new_agency(within=city)
    reg, cred = _live_registration(register, city, [county.slug, outsider.slug])
    r = registry.post(
        f"/v1/registrations/{reg['id']}/live-windows",
        json={"agencies": [city.slug, county.slug], "duration_s": 2, "reason": "alert"},
        headers=owner(cred),
    )
    assert r.status_code == 201, r.text
    window = r.json()
    assert window["state"] == "open" and window["agencies"] == sorted([city.slug, county.slug])
    front = next(c["id"] for c in reg["properties"]["cameras"] if c["label"] == "front")
    assert window["cameras"] == [front]  # the emergency-only camera stays out of an alert window
    wid = window["id"]

    seen = registry.get(f"/v1/live-windows/{wid}", headers=auth("investigator", county.slug, sub="det-k"))
    assert seen.status_code == 200, seen.text
    assert [c["id"] for c in seen.json()["cameras"]] == [front]
    assert "live_endpoint" not in seen.json()["cameras"][0] and "rtsps://" not in seen.text
    listed = registry.get("/v1/live-windows", headers=auth("cad", city.slug)).json()
    assert wid in {w["id"] for w in listed}
    # An agency the registration is shared with, but not in the window: nothing.
    assert (
        registry.get(f"/v1/live-windows/{wid}", headers=auth("investigator", outsider.slug)).status_code
        == 404
    )
    assert wid not in {
        w["id"] for w in registry.get("/v1/live-windows", headers=auth("investigator", outsider.slug)).json()
    }
    assert registry.get(f"/v1/live-windows/{wid}", headers=auth("advocate", county.slug)).status_code == 403
    assert registry.get(f"/v1/live-windows/{wid}").status_code == 401

    # Past its two seconds the window closes by itself (the clock decides; nothing closes it). Watched through
    # the list, which is not audited: each view of the window is.
    assert eventually(
        lambda: (
            wid
            not in {w["id"] for w in registry.get("/v1/live-windows", headers=auth("cad", city.slug)).json()}
        ),
        timeout=15,
    )
    assert (
        registry.get(f"/v1/live-windows/{wid}", headers=auth("investigator", county.slug)).status_code == 404
    )
    mine = registry.get(f"/v1/registrations/{reg['id']}/live-windows", headers=owner(cred)).json()
    assert [(w["id"], w["state"]) for w in mine] == [(wid, "expired")]

    events = db.fetch(
        "SELECT action, actor, agency FROM audit.events WHERE subject_type = 'live_window' AND subject_id = $1 ORDER BY seq",
        wid,
    )
    assert [(e["action"], e["agency"]) for e in events] == [
        ("live_window.open", city.slug),
        ("live_window.view", county.slug),
    ]
    assert events[0]["actor"] == f"owner:{reg['id']}" and events[1]["actor"] == "det-k"
    # The endpoint is stored sealed.
    sealed = db.fetchval("SELECT live_endpoint_enc FROM registry.cameras WHERE id = $1", uuid.UUID(front))
    assert ENDPOINT.encode() not in bytes(sealed)


def test_owner_closes_a_window_and_pausing_closes_them_all(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency()
    reg, cred = _live_registration(register, a, [])
    base = f"/v1/registrations/{reg['id']}/live-windows"
    w = registry.post(base, json={"reason": "emergency", "duration_s": 3600}, headers=owner(cred)).json()
    assert len(w["cameras"]) == 2 and w["agencies"] == [a.slug]
    viewer = auth("supervisor", a.slug)
    assert registry.get(f"/v1/live-windows/{w['id']}", headers=viewer).status_code == 200
    r = registry.post(f"{base}/{w['id']}/close", headers=owner(cred))
    assert r.status_code == 200 and r.json()["state"] == "closed"
    assert registry.get(f"/v1/live-windows/{w['id']}", headers=viewer).status_code == 404
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'live_window.close' AND subject_id = $1",
            w["id"],
        )
        == 1
    )

    w2 = registry.post(base, json={"duration_s": 3600}, headers=owner(cred)).json()
    assert registry.get(f"/v1/live-windows/{w2['id']}", headers=viewer).status_code == 200
    url = f"/v1/registrations/{reg['id']}"
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    assert (
        registry.patch(url, json={"status": "paused"}, headers={**owner(cred), "If-Match": etag}).status_code
        == 200
    )
    assert registry.get(f"/v1/live-windows/{w2['id']}", headers=viewer).status_code == 404
    assert registry.post(base, json={}, headers=owner(cred)).status_code == 409


def test_only_the_owner_opens_windows_within_the_limits(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register
) -> None:
    a = new_agency()
    other = new_agency()
    reg, cred = _live_registration(register, a, [])
    plain, plain_cred = register(a)
    base = f"/v1/registrations/{reg['id']}/live-windows"
    assert registry.post(base, json={}, headers=auth("investigator", a.slug)).status_code == 401
    assert registry.post(base, json={}).status_code == 401
    for body, pointer in [
        ({"duration_s": 0}, "/body/duration_s"),
        ({"duration_s": 24 * 3600 + 1}, "/body/duration_s"),
        ({"duration_s": "60"}, "/body/duration_s"),
        ({"agencies": [other.slug]}, "/body/agencies/0"),
        ({"cameras": [str(uuid.uuid4())]}, "/body/cameras/0"),
        ({"reason": "curiosity"}, "/body/reason"),
        ({"until": "forever"}, "/body/until"),
    ]:
        r = registry.post(base, json=body, headers=owner(cred))
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert any(e["pointer"].startswith(pointer) for e in r.json()["errors"]), r.json()
    garage = next(c["id"] for c in reg["properties"]["cameras"] if c["label"] == "garage")
    r = registry.post(base, json={"cameras": [garage]}, headers=owner(cred))
    assert r.status_code == 422 and "no live endpoint" in r.json()["detail"]
    r = registry.post(f"/v1/registrations/{plain['id']}/live-windows", json={}, headers=owner(plain_cred))
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/cameras"


def test_an_agency_sees_only_the_window_cameras_inside_its_jurisdiction(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register
) -> None:
    city = new_agency()
    # A neighbour whose jurisdiction covers the city's western half only.
    lon, lat = city.centre
    slug = "t-" + uuid.uuid4().hex[:10]
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": slug,
            "name": "Neighbour PD",
            "jurisdiction": box(lon - 0.2, lat - 0.2, lon, lat + 0.2),
        },
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text
    west, east = city.inside(-0.02), city.inside(0.02)
    reg, cred = register(
        city,
        share_with=[slug],
        cameras=[
            {"label": "west", "location": point(west), "live_mode": "on_alert", "live_endpoint": ENDPOINT},
            {
                "label": "east",
                "location": point(east),
                "live_mode": "on_alert",
                "live_endpoint": ENDPOINT + "2",
            },
        ],
    )
    r = registry.post(
        f"/v1/registrations/{reg['id']}/live-windows",
        json={"agencies": [city.slug, slug], "duration_s": 60, "reason": "alert"},
        headers=owner(cred),
    )
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    labels = {c["id"]: c["label"] for c in reg["properties"]["cameras"]}
    seen = {
        agency: sorted(
            labels[c["id"]]
            for c in registry.get(f"/v1/live-windows/{wid}", headers=auth("investigator", agency)).json()[
                "cameras"
            ]
        )
        for agency in (city.slug, slug)
    }
    assert seen == {city.slug: ["east", "west"], slug: ["west"]}


def _patch(registry: httpx.Client, url: str, cred: str, body: dict[str, Any]) -> httpx.Response:
    etag = registry.get(f"/v1/registrations/{url.split('/')[3]}", headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json=body, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    return r


def test_an_agency_removed_from_the_shares_loses_the_window_for_good(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register
) -> None:
    city = new_agency()
    county = new_agency(within=city)
    reg, cred = _live_registration(register, city, [county.slug])
    url = f"/v1/registrations/{reg['id']}"
    w = registry.post(
        f"{url}/live-windows",
        json={"agencies": [city.slug, county.slug], "duration_s": 3600, "reason": "emergency"},
        headers=owner(cred),
    ).json()
    viewer = auth("investigator", county.slug)
    assert registry.get(f"/v1/live-windows/{w['id']}", headers=viewer).status_code == 200

    _patch(registry, url, cred, {"share_with": []})
    _patch(registry, url, cred, {"share_with": [county.slug]})  # shared again, for searches

    r = registry.get(f"/v1/live-windows/{w['id']}", headers=viewer)
    assert r.status_code == 404 and ENDPOINT not in r.text
    assert w["id"] not in {x["id"] for x in registry.get("/v1/live-windows", headers=viewer).json()}
    # The program agency keeps the window; the owner sees whom it is still open to.
    assert registry.get(f"/v1/live-windows/{w['id']}", headers=auth("cad", city.slug)).status_code == 200
    mine = registry.get(f"{url}/live-windows", headers=owner(cred)).json()
    assert [(x["id"], x["agencies"], x["state"]) for x in mine] == [(w["id"], [city.slug], "open")]


def test_a_camera_whose_live_mode_stops_allowing_the_reason_leaves_the_window_for_good(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency()
    reg, cred = _live_registration(register, a, [])
    url = f"/v1/registrations/{reg['id']}"
    cams = {c["label"]: c["id"] for c in reg["properties"]["cameras"]}
    w = registry.post(
        f"{url}/live-windows", json={"duration_s": 3600, "reason": "emergency"}, headers=owner(cred)
    ).json()
    assert sorted(w["cameras"]) == sorted([cams["front"], cams["yard"]])
    viewer = auth("investigator", a.slug)

    _patch(registry, f"{url}/cameras/{cams['yard']}", cred, {"live_mode": "never"})
    _patch(registry, f"{url}/cameras/{cams['yard']}", cred, {"live_mode": "emergency"})
    seen = registry.get(f"/v1/live-windows/{w['id']}", headers=viewer)
    assert seen.status_code == 200 and [c["id"] for c in seen.json()["cameras"]] == [cams["front"]]
    listed = {x["id"]: x for x in registry.get("/v1/live-windows", headers=viewer).json()}
    assert listed[w["id"]]["camera_count"] == 1

    # The last camera leaves: the window closes, and switching the mode back opens nothing.
    _patch(registry, f"{url}/cameras/{cams['front']}", cred, {"live_mode": "never"})
    _patch(registry, f"{url}/cameras/{cams['front']}", cred, {"live_mode": "on_alert"})
    r = registry.get(f"/v1/live-windows/{w['id']}", headers=viewer)
    assert r.status_code == 404 and ENDPOINT not in r.text
    mine = registry.get(f"{url}/live-windows", headers=owner(cred)).json()
    assert [(x["id"], x["state"]) for x in mine] == [(w["id"], "closed")]
    actions = [
        r["action"]
        for r in db.fetch(
            "SELECT action FROM audit.events WHERE subject_type = 'live_window' AND subject_id = $1 ORDER BY seq",
            w["id"],
        )
    ]
    assert actions == ["live_window.open", "live_window.narrow", "live_window.view", "live_window.close"]


def test_the_window_list_shows_only_windows_with_a_camera_the_agency_sees_and_their_count(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register
) -> None:
    city = new_agency()
    # A neighbour whose jurisdiction covers the city's western half only.
    lon, lat = city.centre
    slug = "t-" + uuid.uuid4().hex[:10]
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": slug,
            "name": "Neighbour PD",
            "jurisdiction": box(lon - 0.2, lat - 0.2, lon, lat + 0.2),
        },
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text
    west, east = city.inside(-0.02), city.inside(0.02)
    reg, cred = register(
        city,
        share_with=[slug],
        cameras=[
            {"label": "w", "location": point(west), "live_mode": "on_alert", "live_endpoint": ENDPOINT},
            {"label": "e", "location": point(east), "live_mode": "on_alert", "live_endpoint": ENDPOINT + "2"},
            {
                "label": "e2",
                "location": point(east),
                "live_mode": "emergency",
                "live_endpoint": ENDPOINT + "3",
            },
        ],
    )
    cams = {c["label"]: c["id"] for c in reg["properties"]["cameras"]}
    base = f"/v1/registrations/{reg['id']}/live-windows"
    both = {"agencies": [city.slug, slug], "duration_s": 600}
    east_only = registry.post(
        base, json={**both, "cameras": [cams["e"], cams["e2"]], "reason": "emergency"}, headers=owner(cred)
    ).json()
    everything = registry.post(base, json={**both, "reason": "emergency"}, headers=owner(cred)).json()
    listed = {
        a: {
            w["id"]: w["camera_count"]
            for w in registry.get("/v1/live-windows", headers=auth("cad", a)).json()
        }
        for a in (city.slug, slug)
    }
    assert listed[city.slug] == {east_only["id"]: 2, everything["id"]: 3}
    assert listed[slug] == {everything["id"]: 1}  # the east-only window has no camera the neighbour sees
    r = registry.get(f"/v1/live-windows/{east_only['id']}", headers=auth("cad", slug))
    assert r.status_code == 404 and reg["id"] not in r.text


def test_a_window_whose_cameras_are_all_mode_never_is_not_listed(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency()
    reg, cred = _live_registration(register, a, [])
    w = registry.post(
        f"/v1/registrations/{reg['id']}/live-windows",
        json={"reason": "alert", "duration_s": 600},
        headers=owner(cred),
    ).json()
    viewer = auth("cad", a.slug)
    assert {x["id"]: x["camera_count"] for x in registry.get("/v1/live-windows", headers=viewer).json()} == {
        w["id"]: 1
    }
    # Written straight to the table (as an import or a future path might): the read rule alone must hold.
    db.execute(
        "UPDATE registry.cameras SET live_mode = 'never' WHERE registration_id = $1", uuid.UUID(reg["id"])
    )
    assert registry.get("/v1/live-windows", headers=viewer).json() == []
