"""Fixtures for the registry tests: agencies with their own patch of map, and registrations made over HTTP."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Token
from tests.support import Db, eventually


@dataclass
class Agency:
    slug: str
    id: str
    name: str
    west: float
    south: float
    east: float
    north: float

    @property
    def centre(self) -> tuple[float, float]:
        return (round((self.west + self.east) / 2, 6), round((self.south + self.north) / 2, 6))

    def inside(self, dx: float = 0.0, dy: float = 0.0) -> list[float]:
        lon, lat = self.centre
        return [round(lon + dx, 6), round(lat + dy, 6)]

    def outside(self) -> list[float]:
        return [round(self.east + 0.5, 6), round(self.north + 0.5, 6)]


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    # Clockwise on purpose: either winding is accepted, and output must follow the right-hand rule.
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [west, north], [east, north], [east, south], [west, south]]],
    }


def point(coords: list[float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": coords}


def owner(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def fresh_email() -> str:
    return f"owner-{uuid.uuid4().hex[:12]}@example.org"


NewAgency = Callable[..., Agency]
Register = Callable[..., tuple[dict[str, Any], str]]


@pytest.fixture
def new_agency(registry: httpx.Client, auth: Token) -> NewAgency:
    """Create an agency (as its own admin) whose jurisdiction is a ~10 km box nobody else uses."""

    def _new(slug: str | None = None, within: Agency | None = None, **policy: Any) -> Agency:
        slug = slug or "t-" + uuid.uuid4().hex[:10]
        if within is not None:  # a box overlapping the other agency's centre (a county around a city)
            lon, lat = within.centre
            w, s, e, n = lon - 0.2, lat - 0.2, lon + 0.2, lat + 0.2
        else:
            lon, lat = random.uniform(-120, -75), random.uniform(28, 47)
            w, s, e, n = round(lon, 4), round(lat, 4), round(lon + 0.1, 4), round(lat + 0.1, 4)
        body: dict[str, Any] = {
            "slug": slug,
            "name": f"Police Department {slug}",
            "jurisdiction": box(w, s, e, n),
        }
        if policy:
            body["policy"] = policy
        r = registry.post("/v1/agencies", json=body, headers=auth("agency_admin", slug))
        assert r.status_code == 201, r.text
        return Agency(slug, r.json()["id"], body["name"], w, s, e, n)

    return _new


@pytest.fixture
def register(registry: httpx.Client) -> Register:
    """Register with an agency's program; gives the registration Feature and its credential."""

    def _register(
        agency: Agency, *, email: str | None = None, headers: dict[str, str] | None = None, **extra: Any
    ) -> tuple[dict[str, Any], str]:
        body: dict[str, Any] = {
            "agency": agency.slug,
            "location": point(agency.inside()),
            "contact": {"email": email or fresh_email()},
        }
        body.update(extra)
        r = registry.post("/v1/registrations", json=body, headers=headers or {})
        assert r.status_code == 201, r.text
        out = r.json()
        return out, out["credential"]

    return _register


def reset_settled(registry: httpx.Client, db: Db, email: str) -> httpx.Response:
    """Ask for a credential reset at `email` and return its answer once the work done after the answer (the
    look-up, the codes, the mails) has had its chance: its look-up ran and its transaction ended, so whatever it
    decided — a code for each registration found, or nothing — is committed, and a mail is sent only for a
    committed code. Deterministic: the registrations are held against row locks (EXCLUSIVE: plain reads go on)
    until the look-up (`FOR UPDATE`, services/registry_api/repository/registrations.py) is seen waiting for this
    session, then let go, and the look-up's session is watched until its transaction ends. The look-up is this
    request's, not another reset's still running nor another database's: its session carries the request's id
    (sent as X-Request-ID) in its application_name until its transaction ends (services/registry_api/credentials.py)."""
    request_id = uuid.uuid4().hex
    tagged = "SELECT pid FROM pg_stat_activity WHERE application_name LIKE '% reset ' || $1"
    holder = Db(db.url)
    try:
        holder_pid = holder.fetchval("SELECT pg_backend_pid()")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE registry.registrations IN EXCLUSIVE MODE")
        r = registry.post(
            "/v1/credential-resets", json={"email": email}, headers={"X-Request-ID": request_id}
        )
        assert r.status_code == 202, r.text
        waiting = tagged + " AND $2 = ANY(pg_blocking_pids(pid))"
        assert eventually(lambda: db.fetchval(waiting, request_id, holder_pid), timeout=30), (
            "the reset's look-up never ran"
        )
        holder.execute("COMMIT")
        assert eventually(lambda: db.fetchval(tagged, request_id) is None, timeout=30), (
            "the reset's transaction never ended"
        )
        return r
    finally:
        holder.close()  # a lock still held (a failed wait) goes with the connection
