"""A small world for the contract tests: agencies X and Y with their own jurisdictions, and owners A and B
registered with X, all created over the public HTTP contracts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
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
