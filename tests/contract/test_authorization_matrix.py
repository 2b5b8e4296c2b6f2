"""The authorization matrix: every operation of the three services (read from the apps' own OpenAPI, built from
their route tables) × every kind of caller, each check a real HTTP request with real ids, against the outcome
written in the table below. A route added without an entry fails the test, naming it.

Outcomes: `ALLOW` (a 2xx, or the operation's documented answer once authorization has passed, e.g. 409 for an
agency that exists), 401 (no credential of the kind the operation needs), 403 (wrong role, or another agency named
in the path), 404 (another agency's or owner's object: by design its existence is not revealed). Destructive
operations run last, each allowed check on an object made for it.
"""

from __future__ import annotations

import importlib
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import mapbox_vector_tile
import orjson

from tests.contract.conftest import LIVE_ENDPOINT, X_BOX, Y_BOX, Owner, Scene, polygon, request_body
from tests.support import Mailbox

ALLOW = "allow"
Outcome = str | int

CALLERS = (
    "anonymous",
    "owner_a",
    "owner_b",
    "advocate",
    "investigator",
    "supervisor",
    "investigator_y",
    "agency_admin",
    "integrator",
    "cad",
    "auditor",
    "service",
)
SHORT = {
    "anonymous": "anon",
    "owner_a": "ownA",
    "owner_b": "ownB",
    "advocate": "advX",
    "investigator": "invX",
    "supervisor": "supX",
    "investigator_y": "invY",
    "agency_admin": "admX",
    "integrator": "intX",
    "cad": "cadX",
    "auditor": "audX",
    "service": "svc",
}
OWNERS = ("owner_a", "owner_b")
AGENCY_X = ("advocate", "investigator", "supervisor", "agency_admin", "integrator", "cad", "auditor")
JWT = (*AGENCY_X, "investigator_y", "service")
SERVICES = ("registry_api", "geo_query", "requests_api", "community_api")
UNLISTED = {"/healthz", "/readyz"}


def role_of(caller: str) -> str:
    return "investigator" if caller == "investigator_y" else caller


# --- expected outcomes -----------------------------------------------------------------------------------


def public() -> dict[str, Outcome]:
    return dict.fromkeys(CALLERS, ALLOW)


def owner_only() -> dict[str, Outcome]:
    """The registration's management credential: another owner's is a 404, any JWT or none a 401."""
    return {"anonymous": 401, "owner_a": ALLOW, "owner_b": 404, **dict.fromkeys(JWT, 401)}


def agency(*roles: str, y: Outcome = 404) -> dict[str, Outcome]:
    """Agency users with one of `roles`; another agency's investigator gets `y` where investigators may call."""
    out: dict[str, Outcome] = {"anonymous": 401, **dict.fromkeys(OWNERS, 401)}
    for c in JWT:
        if role_of(c) not in roles:
            out[c] = 403
        else:
            out[c] = y if c == "investigator_y" else ALLOW
    return out


def service_only() -> dict[str, Outcome]:
    return {"anonymous": 401, **dict.fromkeys(OWNERS, 401), **dict.fromkeys(JWT, 403), "service": ALLOW}


def registering() -> dict[str, Outcome]:
    """Anyone registers without a token (an owner's credential is no agency token: it registers as anyone);
    agency staff only as advocates (or agency admins) of their own program."""
    out: dict[str, Outcome] = {"anonymous": ALLOW, **dict.fromkeys(OWNERS, ALLOW), **dict.fromkeys(JWT, 403)}
    out["advocate"] = out["agency_admin"] = ALLOW
    return out


def owners_own_list() -> dict[str, Outcome]:
    return {"anonymous": 401, **dict.fromkeys(OWNERS, ALLOW), **dict.fromkeys(JWT, 401)}


SEARCH = ("investigator", "supervisor", "cad", "agency_admin")
AGENCY_USER = ("investigator", "supervisor")


# --- requests --------------------------------------------------------------------------------------------


@dataclass
class Req:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    files: dict[str, Any] | None = None
    owner: Owner | None = None  # who "owner A" is for this check (the path's registration's owner)


@dataclass
class Ctx:
    scene: Scene
    mailbox: Mailbox
    probes: dict[str, Any] = field(default_factory=dict)

    @property
    def x(self) -> str:
        return self.scene.world.x

    @property
    def a(self) -> Owner:
        return self.scene.world.a

    def probe(self, key: str, make: Callable[[], Any]) -> Any:
        """An object the denied callers aim at (they must not change it); made once."""
        if key not in self.probes:
            self.probes[key] = make()
        return self.probes[key]

    def target(self, key: str, allowed: bool, make: Callable[[], Any]) -> Any:
        """A fresh object for an allowed (destructive) check; the shared probe for a denied one."""
        return make() if allowed else self.probe(key, make)

    def etag(self, client: httpx.Client, path: str, headers: dict[str, str]) -> str:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, r.text
        return r.headers["etag"]

    def reset_code(self) -> str:
        """A real one-time code, mailed to a fresh owner."""
        owner = self.scene.new_owner()
        r = self.scene.registry.post("/v1/credential-resets", json={"email": owner.email})
        assert r.status_code == 202, r.text
        mail = self.mailbox.wait_for(owner.email, lambda m: "one-time code" in str(m.get_payload()))
        found = re.search(r"cvr_[A-Za-z0-9_-]+", str(mail.get_payload()))
        assert found, mail.get_payload()
        return found.group(0)

    def with_webhook(self, req: Req) -> Req:
        """`req`, once X has a webhook (so reading or removing it could succeed)."""
        r = self.scene.requests.put(
            f"/v1/agencies/{self.x}/webhook",
            json={"url": "https://rms.example.gov/canvass/events"},
            headers=self.scene.agent("agency_admin"),
        )
        assert r.status_code == 200, r.text
        return req


Build = Callable[[Ctx, bool, str], Req]  # (context, allowed?, caller) -> the request


@dataclass
class Op:
    service: str
    expect: dict[str, Outcome]
    build: Build
    ok: frozenset[int] | None = None  # what an allowed caller gets, when not a 2xx
    last: bool = False  # destructive: after the others
    verify: Callable[[Ctx, str, httpx.Response], str | None] | None = None


def _around(ctx: Ctx, d: float = 0.002) -> tuple[float, float, float, float]:
    lon, lat = ctx.scene.a_lonlat
    return (lon - d, lat - d, lon + d, lat + d)


def _multipart(payload: bytes = b"\x00\x00\x00\x18ftypmp42more footage") -> dict[str, Any]:
    return {"file": ("clip.mp4", payload, "video/mp4")}


def _route(ctx: Ctx) -> dict[str, Any]:
    """A walk past owner A's camera: west to east, 100 m south of it, looking 300 m either side."""
    w, s, e, n = _around(ctx)
    lat = (s + n) / 2 - 0.0009
    return {
        "path": {"type": "LineString", "coordinates": [[w, lat], [e, lat]]},
        "buffer_m": 300,
        "start": "2026-11-20T22:15:00Z",
        "speed": "walking",
    }


def _sees_a_camera(ctx: Ctx, caller: str, r: httpx.Response) -> str | None:
    if caller == "investigator_y":
        return None
    return None if ctx.a.camera_ids[0] in r.text else "does not list owner A's camera"


def _tile_path(ctx: Ctx, z: int = 16) -> str:
    """The zoom-16 tile that holds owner A's camera."""
    lon, lat = ctx.scene.a_lonlat
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/v1/tiles/cameras/{z}/{x}/{y}.mvt"


def _tile_sees_a_camera(ctx: Ctx, caller: str, r: httpx.Response) -> str | None:
    layers = mapbox_vector_tile.decode(r.content)
    ids = {f["properties"]["id"] for f in layers.get("cameras", {}).get("features", [])}
    if caller == "investigator_y":
        return None if ctx.a.camera_ids[0] not in ids else "another agency's tile shows owner A's camera"
    return None if ctx.a.camera_ids[0] in ids else "the tile does not show owner A's camera"


def _coverage_counts_a_camera(ctx: Ctx, caller: str, r: httpx.Response) -> str | None:
    counted = sum(f["properties"]["cameras"] for f in r.json()["features"])
    return None if counted >= 1 else "the agency's coverage map counts no camera (owner A's is shared with X)"


def _sees_window(ctx: Ctx, caller: str, r: httpx.Response) -> str | None:
    if caller == "investigator_y":
        return None
    return None if ctx.scene.window_id in r.text else "does not list the window open to X"


def _policy_for_own_users(ctx: Ctx, caller: str, r: httpx.Response) -> str | None:
    own = caller in AGENCY_X
    shown = r.json()["properties"].get("policy") is not None
    return None if shown == own else f"policy {'shown' if shown else 'hidden'} to {caller}"


def _lists_request(ctx: Ctx, caller: str, r: httpx.Response) -> str | None:
    if caller in ("investigator_y", "owner_b"):
        return None
    return None if ctx.scene.request_id in r.text else "does not list the request"


def _geo_params(ctx: Ctx, **extra: Any) -> dict[str, Any]:
    lon, lat = ctx.scene.a_lonlat
    return {"lon": lon, "lat": lat, "case_number": "2026-0001", **extra}


def _new_request(ctx: Ctx, caller: str) -> Req:
    """Each agency's investigator asks in its own jurisdiction."""
    s = ctx.scene
    if caller == "investigator_y":
        w, so, e, n = Y_BOX
        body = request_body(ctx.a, (w + e) / 2, (so + n) / 2)
        del body["camera_ids"]
        return Req("POST", "/v1/requests", json=body)
    return Req("POST", "/v1/requests", json=request_body(ctx.a, *s.a_lonlat))


def _import_body(ctx: Ctx) -> bytes:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(ctx.scene.a_lonlat)},
        "properties": {"external_id": f"m-{uuid.uuid4().hex[:8]}", "contact_email": "shop@example.org"},
    }
    return orjson.dumps({"type": "FeatureCollection", "features": [feature]})


def _live_owner(ctx: Ctx) -> Owner:
    owner = ctx.scene.live_owner
    assert owner is not None
    return owner


def _owner_req(method: str, path: str, owner: Owner, **kw: Any) -> Req:
    return Req(method, path.format(rid=owner.registration_id), owner=owner, **kw)


# The table. Keys are "METHOD path" exactly as in the services' OpenAPI documents.
MATRIX: dict[str, Op] = {
    # ---------------------------------------------------------------- registry_api
    "POST /v1/agencies": Op(
        "registry_api",
        agency("agency_admin"),
        lambda c, ok, who: Req(
            "POST", "/v1/agencies", json={"slug": c.x, "name": "X", "jurisdiction": polygon(*X_BOX)}
        ),
        ok=frozenset({409}),  # X exists: the answer once the admin of X is let through
    ),
    "GET /v1/agencies": Op("registry_api", public(), lambda c, ok, who: Req("GET", "/v1/agencies")),
    "GET /v1/agencies/covering": Op(
        "registry_api",
        public(),
        lambda c, ok, who: Req(
            "GET", "/v1/agencies/covering", params=dict(zip(("lon", "lat"), c.scene.a_lonlat, strict=True))
        ),
    ),
    "GET /v1/agencies/{slug}": Op(
        "registry_api",
        public(),
        lambda c, ok, who: Req("GET", f"/v1/agencies/{c.x}"),
        verify=_policy_for_own_users,
    ),
    "PATCH /v1/agencies/{slug}": Op(
        "registry_api",
        agency("agency_admin"),
        lambda c, ok, who: Req(
            "PATCH",
            f"/v1/agencies/{c.x}",
            json={"name": f"Police {c.x}"},
            headers={
                "If-Match": c.etag(c.scene.registry, f"/v1/agencies/{c.x}", c.scene.agent("agency_admin"))
            },
        ),
    ),
    "POST /v1/registrations": Op(
        "registry_api",
        registering(),
        lambda c, ok, who: Req(
            "POST",
            "/v1/registrations",
            json={
                "agency": c.x,
                "location": {"type": "Point", "coordinates": list(c.scene.a_lonlat)},
                "contact": {"phone": "+14145550123"},
            },
        ),
    ),
    "GET /v1/registrations/{registration_id}": Op(
        "registry_api", owner_only(), lambda c, ok, who: _owner_req("GET", "/v1/registrations/{rid}", c.a)
    ),
    "PATCH /v1/registrations/{registration_id}": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req(
            "PATCH",
            "/v1/registrations/{rid}",
            c.a,
            json={"notes_for_investigators": "Ring the side door."},
            headers={
                "If-Match": c.etag(c.scene.registry, f"/v1/registrations/{c.a.registration_id}", c.a.headers)
            },
        ),
    ),
    "DELETE /v1/registrations/{registration_id}": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req(
            "DELETE", "/v1/registrations/{rid}", c.target("delete-reg", ok, c.scene.new_owner)
        ),
        last=True,
    ),
    "POST /v1/registrations/{registration_id}/confirmation": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req("POST", "/v1/registrations/{rid}/confirmation", c.a),
    ),
    "POST /v1/registrations/{registration_id}/cameras": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req(
            "POST",
            "/v1/registrations/{rid}/cameras",
            c.target("add-camera", ok, c.scene.new_owner),
            json={"direction_deg": 180, "label": "back door"},
        ),
    ),
    "PATCH /v1/registrations/{registration_id}/cameras/{camera_id}": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: (
            lambda o: Req(
                "PATCH",
                f"/v1/registrations/{o.registration_id}/cameras/{o.camera_ids[0]}",
                json={"direction_deg": 270},
                headers={
                    "If-Match": c.etag(c.scene.registry, f"/v1/registrations/{o.registration_id}", o.headers)
                },
                owner=o,
            )
        )(c.target("patch-camera", ok, c.scene.new_owner)),
    ),
    "DELETE /v1/registrations/{registration_id}/cameras/{camera_id}": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: (
            lambda o: Req(
                "DELETE", f"/v1/registrations/{o.registration_id}/cameras/{o.camera_ids[1]}", owner=o
            )
        )(c.target("delete-camera", ok, lambda: c.scene.new_owner(cameras=2))),
        last=True,
    ),
    "POST /v1/registrations/{registration_id}/credential": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req(
            "POST", "/v1/registrations/{rid}/credential", c.target("rotate", ok, c.scene.new_owner)
        ),
        last=True,
    ),
    "POST /v1/credential-resets": Op(
        "registry_api",
        public(),
        lambda c, ok, who: Req(
            "POST", "/v1/credential-resets", json={"email": f"n-{uuid.uuid4().hex[:8]}@example.org"}
        ),
    ),
    "POST /v1/credential-resets/redeem": Op(
        "registry_api",
        public(),  # the one-time code is the authorization
        lambda c, ok, who: Req("POST", "/v1/credential-resets/redeem", json={"token": c.reset_code()}),
        last=True,
    ),
    "POST /v1/registrations/{registration_id}/live-windows": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req(
            "POST",
            "/v1/registrations/{rid}/live-windows",
            c.target("open-window", ok, lambda: c.scene.new_owner(live=True)),
            json={"reason": "alert", "duration_s": 600},
        ),
    ),
    "GET /v1/registrations/{registration_id}/live-windows": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req("GET", "/v1/registrations/{rid}/live-windows", _live_owner(c)),
    ),
    "POST /v1/registrations/{registration_id}/live-windows/{window_id}/close": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: (
            lambda ow: Req(
                "POST",
                f"/v1/registrations/{ow[0].registration_id}/live-windows/{ow[1]}/close",
                owner=ow[0],
            )
        )(
            c.target(
                "close-window",
                ok,
                lambda: (lambda o: (o, c.scene.open_window(o)))(c.scene.new_owner(live=True)),
            )
        ),
        last=True,
    ),
    "GET /v1/live-windows": Op(
        "registry_api",
        agency("investigator", "supervisor", "cad", y=ALLOW),
        lambda c, ok, who: Req("GET", "/v1/live-windows"),
        verify=_sees_window,
    ),
    "GET /v1/live-windows/{window_id}": Op(
        "registry_api",
        agency("investigator", "supervisor", "cad"),
        lambda c, ok, who: Req("GET", f"/v1/live-windows/{c.scene.window_id}"),
        verify=lambda c, caller, r: (
            "hands the agency the camera's stream address"
            if LIVE_ENDPOINT in r.text
            else None
            if _live_owner(c).camera_ids[0] in r.text
            else "does not show the window's camera"
        ),
    ),
    "POST /v1/registrations/{registration_id}/edge-agents": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req("POST", "/v1/registrations/{rid}/edge-agents", c.a),
    ),
    "GET /v1/registrations/{registration_id}/edge-agents": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req("GET", "/v1/registrations/{rid}/edge-agents", c.a),
        verify=lambda c, caller, r: None if c.scene.agent_id in r.text else "does not list the owner's agent",
    ),
    "DELETE /v1/registrations/{registration_id}/edge-agents/{agent_id}": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: (
            lambda oa: _owner_req("DELETE", f"/v1/registrations/{{rid}}/edge-agents/{oa[1]}", oa[0])
        )(
            c.target(
                "revoke-agent",
                ok,
                lambda: (lambda o: (o, c.scene.edge_agent(o)[0]))(c.scene.new_owner()),
            )
        ),
        last=True,
    ),
    "POST /v1/edge-agents/enrol": Op(
        "registry_api",
        public(),  # the one-time code is the authorization
        lambda c, ok, who: Req(
            "POST", "/v1/edge-agents/enrol", json={"code": c.scene.enrolment_code(c.scene.new_owner())}
        ),
        last=True,
    ),
    # An edge agent's credential is none of the callers': every one of them is refused (tests/registry/
    # test_edge_agents.py calls it as an agent).
    "GET /v1/edge-agents/me/windows": Op(
        "registry_api",
        dict.fromkeys(CALLERS, 401),
        lambda c, ok, who: Req("GET", "/v1/edge-agents/me/windows"),
    ),
    "GET /v1/edge-agents/me": Op(
        "registry_api",
        dict.fromkeys(CALLERS, 401),
        lambda c, ok, who: Req("GET", "/v1/edge-agents/me"),
    ),
    "POST /v1/edge-agents/me/live-windows": Op(
        "registry_api",
        dict.fromkeys(CALLERS, 401),
        lambda c, ok, who: Req("POST", "/v1/edge-agents/me/live-windows", json={"duration_s": 60}),
    ),
    "POST /v1/edge-agents/me/live-windows/{window_id}/close": Op(
        "registry_api",
        dict.fromkeys(CALLERS, 401),
        lambda c, ok, who: Req("POST", f"/v1/edge-agents/me/live-windows/{c.scene.window_id}/close"),
    ),
    "GET /v1/live-windows/check": Op(
        "registry_api",
        service_only(),
        lambda c, ok, who: Req(
            "GET",
            "/v1/live-windows/check",
            params={"agency": c.x, "camera_id": _live_owner(c).camera_ids[0]},
        ),
        verify=lambda c, caller, r: (
            None if r.json()["window_id"] == c.scene.window_id else "not the open window"
        ),
    ),
    "GET /v1/registrations/{registration_id}/contact": Op(
        "registry_api",
        agency("investigator", "supervisor"),
        lambda c, ok, who: Req(
            "GET", f"/v1/registrations/{c.a.registration_id}/contact", params={"case_number": "2026-0001"}
        ),
    ),
    "GET /v1/agencies/{slug}/reconfirmations-due": Op(
        "registry_api",
        agency("agency_admin", "advocate", "supervisor"),
        lambda c, ok, who: Req("GET", f"/v1/agencies/{c.x}/reconfirmations-due", params={"within_days": 400}),
    ),
    "POST /v1/registrations/{registration_id}/notifications": Op(
        "registry_api",
        service_only(),
        lambda c, ok, who: Req(
            "POST",
            f"/v1/registrations/{c.a.registration_id}/notifications",
            json={
                "notification_id": str(uuid.uuid4()),
                "kind": "request",
                "subject": "A footage request",
                "body": "An agency asks for footage.",
            },
        ),
    ),
    "GET /v1/deleted-registrations": Op(
        "registry_api",
        service_only(),
        lambda c, ok, who: Req("GET", "/v1/deleted-registrations", params={"limit": 10}),
    ),
    "POST /v1/imports": Op(
        "registry_api",
        agency("integrator", "agency_admin"),
        lambda c, ok, who: Req(
            "POST",
            "/v1/imports",
            params={"dry_run": "true"},
            content=_import_body(c),
            headers={"Content-Type": "application/geo+json"},
        ),
    ),
    "GET /v1/imports/{job_id}": Op(
        "registry_api",
        agency("integrator", "agency_admin"),
        lambda c, ok, who: Req("GET", f"/v1/imports/{c.scene.import_id}"),
    ),
    "GET /v1/imports/{job_id}/report": Op(
        "registry_api",
        agency("integrator", "agency_admin"),
        lambda c, ok, who: Req("GET", f"/v1/imports/{c.scene.import_id}/report"),
    ),
    "GET /v1/audit/records": Op(
        "registry_api",
        agency("auditor"),
        lambda c, ok, who: Req("GET", "/v1/audit/records", params={"limit": 50}),
        verify=lambda c, caller, r: (
            None
            if r.json()["features"] and {f["properties"]["agency"] for f in r.json()["features"]} == {c.x}
            else "not exactly its own agency's records"
        ),
    ),
    "GET /v1/audit/export": Op(
        "registry_api",
        agency("auditor"),
        lambda c, ok, who: Req(
            "GET", "/v1/audit/export", params={"format": "csv", "action": "agency.create"}
        ),
    ),
    "GET /v1/registrations/{registration_id}/access-report": Op(
        "registry_api",
        owner_only(),
        lambda c, ok, who: _owner_req("GET", "/v1/registrations/{rid}/access-report", c.a),
    ),
    # ---------------------------------------------------------------- geo_query
    "GET /v1/cameras/radius": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req("GET", "/v1/cameras/radius", params=_geo_params(c, radius_m=300, limit=1000)),
        verify=_sees_a_camera,
    ),
    "GET /v1/cameras/nearest": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req("GET", "/v1/cameras/nearest", params=_geo_params(c, k=1000)),
        verify=_sees_a_camera,
    ),
    "GET /v1/cameras/bbox": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req(
            "GET",
            "/v1/cameras/bbox",
            params={"bbox": ",".join(map(str, _around(c))), "case_number": "2026-0001", "limit": 1000},
        ),
        verify=_sees_a_camera,
    ),
    "POST /v1/cameras/area": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req(
            "POST",
            "/v1/cameras/area",
            params={"case_number": "2026-0001"},
            json={"area": polygon(*_around(c))},
        ),
        verify=_sees_a_camera,
    ),
    "POST /v1/cameras/route": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req(
            "POST",
            "/v1/cameras/route",
            params={"case_number": "2026-0001", "limit": 1000},
            json=_route(c),
        ),
        verify=_sees_a_camera,
    ),
    "GET /v1/tiles/cameras/{z}/{x}/{y}.mvt": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req("GET", _tile_path(c)),
        verify=_tile_sees_a_camera,
    ),
    "GET /v1/tiles/cameras.json": Op(
        "geo_query", agency(*SEARCH, y=ALLOW), lambda c, ok, who: Req("GET", "/v1/tiles/cameras.json")
    ),
    # The public coverage map: aggregates above a threshold, no one's data; the agency's exact map is its admin's.
    "GET /v1/coverage": Op(
        "geo_query", public(), lambda c, ok, who: Req("GET", "/v1/coverage", params={"agency": c.x})
    ),
    "GET /v1/tiles/coverage/{z}/{x}/{y}.mvt": Op(
        "geo_query",
        public(),
        lambda c, ok, who: Req(
            "GET", _tile_path(c, 12).replace("/cameras/", "/coverage/"), params={"agency": c.x}
        ),
    ),
    "GET /v1/tiles/coverage.json": Op(
        "geo_query",
        public(),
        lambda c, ok, who: Req("GET", "/v1/tiles/coverage.json", params={"agency": c.x}),
    ),
    "GET /v1/coverage/agency": Op(
        "geo_query",
        agency("agency_admin"),
        lambda c, ok, who: Req("GET", "/v1/coverage/agency", params={"size": 5000}),
        verify=_coverage_counts_a_camera,
    ),
    "GET /v1/ogc": Op("geo_query", agency(*SEARCH, y=ALLOW), lambda c, ok, who: Req("GET", "/v1/ogc")),
    "GET /v1/ogc/conformance": Op(
        "geo_query", agency(*SEARCH, y=ALLOW), lambda c, ok, who: Req("GET", "/v1/ogc/conformance")
    ),
    "GET /v1/ogc/collections": Op(
        "geo_query", agency(*SEARCH, y=ALLOW), lambda c, ok, who: Req("GET", "/v1/ogc/collections")
    ),
    "GET /v1/ogc/collections/{collection_id}": Op(
        "geo_query", agency(*SEARCH, y=ALLOW), lambda c, ok, who: Req("GET", "/v1/ogc/collections/cameras")
    ),
    "GET /v1/ogc/collections/{collection_id}/queryables": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req("GET", "/v1/ogc/collections/cameras/queryables"),
    ),
    # The OGC API's OpenAPI description is as public as /openapi.json, which it is cut from.
    "GET /v1/ogc/api": Op("geo_query", public(), lambda c, ok, who: Req("GET", "/v1/ogc/api")),
    "GET /v1/ogc/collections/{collection_id}/items": Op(
        "geo_query",
        agency(*SEARCH, y=ALLOW),
        lambda c, ok, who: Req(
            "GET",
            "/v1/ogc/collections/cameras/items",
            params={"bbox": ",".join(map(str, _around(c))), "limit": 1000},
        ),
        verify=_sees_a_camera,
    ),
    "GET /v1/ogc/collections/{collection_id}/items/{feature_id}": Op(
        "geo_query",
        agency(*SEARCH),
        lambda c, ok, who: Req("GET", f"/v1/ogc/collections/cameras/items/{c.a.camera_ids[0]}"),
    ),
    # ---------------------------------------------------------------- requests_api
    "POST /v1/requests": Op(
        "requests_api", agency(*AGENCY_USER, y=ALLOW), lambda c, ok, who: _new_request(c, who)
    ),
    "GET /v1/requests": Op(
        "requests_api",
        agency(*AGENCY_USER, y=ALLOW),
        lambda c, ok, who: Req("GET", "/v1/requests"),
        verify=_lists_request,
    ),
    "GET /v1/requests/{request_id}": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("GET", f"/v1/requests/{c.scene.request_id}"),
    ),
    "POST /v1/requests/{request_id}/transitions": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req(
            "POST",
            f"/v1/requests/{c.target('cancel', ok, c.scene.draft)}/transitions",
            json={"action": "cancel", "note": "matrix"},
            headers={"If-Match": "*"},
        ),
        last=True,
    ),
    "GET /v1/requests/{request_id}/events": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("GET", f"/v1/requests/{c.scene.request_id}/events"),
    ),
    "PUT /v1/requests/{request_id}/legal-hold": Op(
        "requests_api",
        agency("supervisor", "agency_admin"),
        lambda c, ok, who: Req(
            "PUT",
            f"/v1/requests/{c.scene.request_id}/legal-hold",
            json={"legal_hold": True},
            headers={"If-Match": "*"},
        ),
    ),
    "GET /v1/requests/{request_id}/evidence": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("GET", f"/v1/requests/{c.scene.request_id}/evidence"),
    ),
    "GET /v1/owner/requests": Op(
        "requests_api",
        owners_own_list(),
        lambda c, ok, who: Req("GET", "/v1/owner/requests"),
        verify=_lists_request,
    ),
    "GET /v1/owner/requests/{request_id}": Op(
        "requests_api",
        owner_only(),
        lambda c, ok, who: Req("GET", f"/v1/owner/requests/{c.scene.request_id}"),
    ),
    "POST /v1/owner/requests/{request_id}/answer": Op(
        "requests_api",
        owner_only(),
        lambda c, ok, who: Req(
            "POST",
            f"/v1/owner/requests/{c.target('answer', ok, c.scene.sent)}/answer",
            json={"answer": "decline"},
        ),
        last=True,
    ),
    "POST /v1/owner/evidence/{request_id}": Op(
        "requests_api",
        owner_only(),
        lambda c, ok, who: Req("POST", f"/v1/owner/evidence/{c.scene.request_id}", files=_multipart()),
    ),
    "GET /v1/evidence/{evidence_id}": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("GET", f"/v1/evidence/{c.scene.evidence_id}"),
    ),
    "GET /v1/evidence/{evidence_id}/content": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("GET", f"/v1/evidence/{c.scene.evidence_id}/content"),
    ),
    "POST /v1/evidence/{evidence_id}/verification": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("POST", f"/v1/evidence/{c.scene.evidence_id}/verification"),
    ),
    "GET /v1/evidence/{evidence_id}/custody": Op(
        "requests_api",
        agency(*AGENCY_USER),
        lambda c, ok, who: Req("GET", f"/v1/evidence/{c.scene.evidence_id}/custody"),
    ),
    "PUT /v1/agencies/{slug}/webhook": Op(
        "requests_api",
        agency("agency_admin"),
        lambda c, ok, who: Req(
            "PUT", f"/v1/agencies/{c.x}/webhook", json={"url": "https://rms.example.gov/canvass/events"}
        ),
    ),
    "GET /v1/agencies/{slug}/webhook": Op(
        "requests_api",
        agency("agency_admin"),
        lambda c, ok, who: c.with_webhook(Req("GET", f"/v1/agencies/{c.x}/webhook")),
    ),
    "DELETE /v1/agencies/{slug}/webhook": Op(
        "requests_api",
        agency("agency_admin"),
        lambda c, ok, who: c.with_webhook(Req("DELETE", f"/v1/agencies/{c.x}/webhook")),
        last=True,
    ),
    "GET /v1/transparency": Op(
        "requests_api", public(), lambda c, ok, who: Req("GET", "/v1/transparency", params={"months": 12})
    ),
}


def _with_community() -> None:
    from tests.contract.community_matrix import entries

    MATRIX.update(entries())


_with_community()


def app_operations() -> dict[str, str]:
    """Every operation of the three services, from each app's own OpenAPI (generated from its route table)."""
    ops: dict[str, str] = {}
    for svc in SERVICES:
        app = importlib.import_module(f"services.{svc}.main").app
        for path, item in app.openapi()["paths"].items():
            if path in UNLISTED:
                continue
            for method in item:
                if method in ("get", "post", "put", "patch", "delete", "head", "options", "trace"):
                    ops[f"{method.upper()} {path}"] = svc
    return ops


def test_every_operation_has_an_entry_in_the_matrix() -> None:
    ops = app_operations()
    missing = sorted(set(ops) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(ops))
    assert not missing, "operations without an entry in the authorization matrix: " + "; ".join(
        f"{ops[k]} {k}" for k in missing
    )
    assert not stale, "matrix entries for operations that no longer exist: " + "; ".join(stale)
    for key, op in MATRIX.items():
        assert op.service == ops[key], f"{key} is served by {ops[key]}, not {op.service}"
        assert set(op.expect) == set(CALLERS), f"{key}: an outcome for every caller"


# --- running it ------------------------------------------------------------------------------------------


def caller_headers(ctx: Ctx, caller: str, owner_a: Owner) -> dict[str, str]:
    s = ctx.scene
    if caller == "anonymous":
        return {}
    if caller == "owner_a":
        return owner_a.headers
    if caller == "owner_b":
        return s.world.b.headers
    if caller == "investigator_y":
        return s.agent("investigator", s.world.y)
    if caller == "service":
        return s.auth("service", None, sub="requests_api")
    return s.agent(caller)


def secrets_of_x(ctx: Ctx) -> list[str]:
    """Ids that only X's users and owner A may learn: none may appear in an answer to another agency, to owner B
    or to anyone without a credential."""
    s = ctx.scene
    live = _live_owner(ctx)
    return [
        ctx.a.registration_id,
        *ctx.a.camera_ids,
        live.registration_id,
        *live.camera_ids,
        s.request_id,
        s.evidence_id,
        s.window_id,
        s.import_id,
    ]


def client_for(ctx: Ctx, service: str) -> httpx.Client:
    return {
        "registry_api": ctx.scene.registry,
        "geo_query": ctx.scene.geo,
        "requests_api": ctx.scene.requests,
        "community_api": ctx.scene.community_client,
    }[service]


def run_check(ctx: Ctx, key: str, op: Op, caller: str) -> tuple[int, str | None]:
    expected = op.expect[caller]
    allowed = expected == ALLOW
    req = op.build(ctx, allowed, caller)
    headers = {**req.headers, **caller_headers(ctx, caller, req.owner or ctx.a)}
    r = client_for(ctx, op.service).request(
        req.method,
        req.path,
        json=req.json,
        params=req.params,
        content=req.content,
        files=req.files,
        headers=headers,
    )
    status = r.status_code
    if allowed:
        good = status in op.ok if op.ok else 200 <= status < 300
        if not good:
            return status, f"expected to be let through, got {status}: {r.text[:200]}"
        if caller in ("anonymous", "owner_b", "investigator_y"):
            leaked = [v for v in secrets_of_x(ctx) if v in r.text]
            if leaked:
                return status, f"answer reveals X's/A's ids {leaked}"
        if op.verify is not None:
            problem = op.verify(ctx, caller, r)
            if problem:
                return status, problem
        return status, None
    if status != expected:
        return status, f"expected {expected}, got {status}: {r.text[:200]}"
    if r.headers.get("content-type") != "application/problem+json":
        return status, f"a denial that is not problem+json ({r.headers.get('content-type')})"
    return status, None


def test_every_operation_answers_every_caller_as_the_matrix_says(scene: Scene, mailbox: Mailbox) -> None:
    test_every_operation_has_an_entry_in_the_matrix()
    ctx = Ctx(scene, mailbox)
    order = [k for k, op in MATRIX.items() if not op.last] + [k for k, op in MATRIX.items() if op.last]
    results: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    for key in order:
        op = MATRIX[key]
        results[key] = {}
        for caller in CALLERS:
            status, problem = run_check(ctx, key, op, caller)
            results[key][caller] = status
            if problem:
                failures.append(f"{op.service} {key} as {caller}: {problem}")

    checks = len(MATRIX) * len(CALLERS)
    print(f"\nauthorization matrix: {len(MATRIX)} operations × {len(CALLERS)} callers = {checks} checks")
    print(f"  {'operation':62} " + " ".join(f"{SHORT[c]:>4}" for c in CALLERS))
    for key in MATRIX:
        cells = []
        for c in CALLERS:
            mark = "+" if MATRIX[key].expect[c] == ALLOW else ""
            cells.append(f"{mark}{results[key][c]}".rjust(4))
        print(f"  {key[:62]:62} " + " ".join(cells))
    print("  (+ = let through; every other cell is the denial the table expects)")
    assert not failures, f"{len(failures)} of {checks} checks failed:\n" + "\n".join(failures)
