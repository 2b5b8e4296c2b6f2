"""A small world for the contract tests: agencies X and Y with their own jurisdictions, and owners A and B
registered with X, all created over the public HTTP contracts; and a scene on it with a real object behind
every path id (a request sent to A with evidence, a live window open to X, an import job of X)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Token

X_BOX = (-87.98, 42.98, -87.86, 43.10)  # a Milwaukee-sized program
Y_BOX = (-89.45, 43.02, -89.33, 43.14)  # another city's


def polygon(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclass
class Owner:
    registration_id: str
    credential: str
    camera_ids: list[str]
    email: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


@dataclass
class World:
    x: str
    y: str
    a: Owner
    b: Owner
    extra: dict[str, Any] = field(default_factory=dict)


def create_agency(
    registry: httpx.Client, auth: Token, slug: str, bbox: tuple[float, float, float, float]
) -> None:
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": slug,
            "name": f"Police {slug}",
            "jurisdiction": polygon(*bbox),
            "policy": {"requires_approval": True},
        },
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text


def register(registry: httpx.Client, agency: str, lon: float, lat: float) -> Owner:
    body = {
        "agency": agency,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "contact": {"email": f"owner-{uuid.uuid4().hex[:10]}@example.org"},
        "cameras": [
            {
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "direction_deg": 90,
                "fov_deg": 110,
                "range_m": 30,
                "placement": "outdoor",
                "retention_days": 14,
            }
        ],
        "terms": {"version": "2026-01"},
    }
    r = registry.post("/v1/registrations", json=body)
    assert r.status_code == 201, r.text
    doc = r.json()
    return Owner(doc["id"], doc["credential"], [c["id"] for c in doc["properties"]["cameras"]])


@pytest.fixture(scope="session")
def world(registry: httpx.Client, auth: Token) -> World:
    suffix = uuid.uuid4().hex[:8]
    x, y = f"x-{suffix}", f"y-{suffix}"
    create_agency(registry, auth, x, X_BOX)
    create_agency(registry, auth, y, Y_BOX)
    a = register(registry, x, -87.9065, 43.0389)
    b = register(registry, x, -87.9100, 43.0400)
    return World(x=x, y=y, a=a, b=b)


@pytest.fixture(scope="session")
def registry_agency(world: World) -> str:
    return world.x


# --- a fuller scene for the authorization matrix and the bad-input corpus -------------------------------

LIVE_ENDPOINT = "rtsps://cam.example.net:322/stream1"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def registration_body(
    agency: str, lon: float, lat: float, *, cameras: int = 1, live: bool = False
) -> dict[str, Any]:
    camera: dict[str, Any] = {"direction_deg": 90, "fov_deg": 110, "range_m": 30, "retention_days": 14}
    if live:
        camera |= {"live_mode": "on_alert", "live_endpoint": LIVE_ENDPOINT}
    return {
        "agency": agency,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "contact": {"email": f"owner-{uuid.uuid4().hex[:10]}@example.org"},
        "cameras": [
            {**camera, "location": {"type": "Point", "coordinates": [round(lon + i * 0.00002, 6), lat]}}
            for i in range(cameras)
        ],
        "terms": {"version": "2026-01"},
    }


def register_owner(
    registry: httpx.Client, agency: str, lon: float, lat: float, *, cameras: int = 1, live: bool = False
) -> Owner:
    body = registration_body(agency, lon, lat, cameras=cameras, live=live)
    r = registry.post("/v1/registrations", json=body)
    assert r.status_code == 201, r.text
    doc = r.json()
    email = body["contact"]["email"]
    return Owner(doc["id"], doc["credential"], [c["id"] for c in doc["properties"]["cameras"]], email)


def request_body(owner: Owner, lon: float, lat: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "case_number": f"C-{uuid.uuid4().hex[:8]}",
        "category": "burglary",
        "incident": {"type": "Point", "coordinates": [lon, lat]},
        "radius_m": 100,
        "camera_ids": owner.camera_ids[:1],
        "window": {"start": iso(now - timedelta(hours=6)), "end": iso(now - timedelta(hours=4))},
        "message": "A burglary on this block. Footage of the street would help.",
    }


@dataclass
class Scene:
    """The world plus the objects every operation needs a real id of: a request of X sent to owner A (accepted,
    with one evidence item), a live window open to X, and an import job of X."""

    world: World
    registry: httpx.Client
    geo: httpx.Client
    requests: httpx.Client
    auth: Token
    a_lonlat: tuple[float, float]
    request_id: str = ""
    evidence_id: str = ""
    live_owner: Owner | None = None
    window_id: str = ""
    agent_id: str = ""
    import_id: str = ""
    community: httpx.Client | None = None

    @property
    def community_client(self) -> httpx.Client:
        assert self.community is not None, "the suite runs community_api"
        return self.community

    def agent(self, role: str, agency: str | None = None) -> dict[str, str]:
        slug = self.world.x if agency is None else agency
        return self.auth(role, slug, sub=f"{role}-{slug}")

    def new_owner(self, *, cameras: int = 1, live: bool = False) -> Owner:
        return register_owner(self.registry, self.world.x, *self.a_lonlat, cameras=cameras, live=live)

    def draft(self, owner: Owner | None = None) -> str:
        """A draft request of X, created by X's investigator, asking owner A (or `owner`)."""
        r = self.requests.post(
            "/v1/requests",
            json=request_body(owner or self.world.a, *self.a_lonlat),
            headers=self.agent("investigator"),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def sent(self, owner: Owner | None = None) -> str:
        """A request of X that reached owner A (or `owner`): submitted by the investigator, approved (and so sent)
        by the supervisor."""
        rid = self.draft(owner)
        for action, who in (("submit", "investigator"), ("approve", "supervisor")):
            r = self.requests.post(
                f"/v1/requests/{rid}/transitions",
                json={"action": action},
                headers={**self.agent(who), "If-Match": "*"},
            )
            assert r.status_code == 200, r.text
        return rid

    def upload(
        self, request_id: str, owner: Owner, payload: bytes = b"\x00\x00\x00\x18ftypmp42footage"
    ) -> httpx.Response:
        return self.requests.post(
            f"/v1/owner/evidence/{request_id}",
            files={"file": ("clip.mp4", payload, "video/mp4")},
            headers=owner.headers,
        )

    def open_window(self, owner: Owner) -> str:
        r = self.registry.post(
            f"/v1/registrations/{owner.registration_id}/live-windows",
            json={"reason": "alert", "duration_s": 3600},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def enrolment_code(self, owner: Owner) -> str:
        r = self.registry.post(
            f"/v1/registrations/{owner.registration_id}/edge-agents", headers=owner.headers
        )
        assert r.status_code == 201, r.text
        return str(r.json()["code"])

    def edge_agent(self, owner: Owner) -> tuple[str, str]:
        """An edge agent enrolled for the owner's registration: its id and credential."""
        r = self.registry.post("/v1/edge-agents/enrol", json={"code": self.enrolment_code(owner)})
        assert r.status_code == 201, r.text
        return str(r.json()["agent_id"]), str(r.json()["credential"])

    def import_job(self) -> str:
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(self.a_lonlat)},
            "properties": {"external_id": f"m-{uuid.uuid4().hex[:8]}", "contact_email": "shop@example.org"},
        }
        r = self.registry.post(
            "/v1/imports",
            params={"dry_run": "true"},
            content=orjson.dumps({"type": "FeatureCollection", "features": [feature]}),
            headers={**self.agent("integrator"), "Content-Type": "application/geo+json"},
        )
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


@pytest.fixture(scope="session")
def scene(
    world: World,
    registry: httpx.Client,
    geo: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    community: httpx.Client,
) -> Scene:
    s = Scene(world, registry, geo, requests_client, auth, a_lonlat=(-87.9065, 43.0389), community=community)
    s.request_id = s.sent()
    r = requests_client.post(
        f"/v1/owner/requests/{s.request_id}/answer", json={"answer": "accept"}, headers=world.a.headers
    )
    assert r.status_code == 200, r.text
    up = s.upload(s.request_id, world.a)
    assert up.status_code == 201, up.text
    s.evidence_id = str(up.json()["id"])
    s.live_owner = s.new_owner(live=True)
    s.window_id = s.open_window(s.live_owner)
    s.agent_id = s.edge_agent(world.a)[0]
    s.import_id = s.import_job()
    return s
