"""Fixtures for the requests tests: agencies with their own patch of map and registrations, made over HTTP in
registry_api; helpers that create, approve and send footage requests in requests_api."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.requests_api import worker
from services.requests_api.owner_texts import evidence_context
from services.requests_api.upstream import close_client
from shared.db import make_engine, session_factory
from shared.keystore import close_keystore
from shared.settings import get_settings
from tests.conftest import Suite, Token
from tests.support import Db, open_owner_text
from tests.support import eventually as eventually  # the requests tests import it from here

OFFSET = 0.0005  # about 55 m of latitude


@dataclass
class Agency:
    slug: str
    west: float
    south: float

    @property
    def centre(self) -> list[float]:
        return [round(self.west + 0.05, 6), round(self.south + 0.05, 6)]

    def near(self, dx: float = 0.0, dy: float = 0.0) -> list[float]:
        lon, lat = self.centre
        return [round(lon + dx, 6), round(lat + dy, 6)]


@dataclass
class Owner:
    registration_id: str
    credential: str
    email: str
    camera_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


NewAgency = Callable[..., Agency]
NewOwner = Callable[..., Owner]


@pytest.fixture
def new_agency(registry: httpx.Client, auth: Token) -> NewAgency:
    def _new(**policy: Any) -> Agency:
        slug = "r-" + uuid.uuid4().hex[:10]
        west, south = round(random.uniform(-120, -75), 4), round(random.uniform(28, 47), 4)
        body: dict[str, Any] = {
            "slug": slug,
            "name": f"Police Department {slug}",
            "jurisdiction": box(west, south, west + 0.1, south + 0.1),
            "policy": {"requires_approval": True, **policy},
        }
        r = registry.post("/v1/agencies", json=body, headers=auth("agency_admin", slug))
        assert r.status_code == 201, r.text
        return Agency(slug, west, south)

    return _new


@pytest.fixture
def new_owner(registry: httpx.Client) -> NewOwner:
    def _new(
        agency: Agency, at: list[float], *, retention_days: int = 30, cameras: int = 1, **extra: Any
    ) -> Owner:
        email = f"owner-{uuid.uuid4().hex[:12]}@example.org"
        cams = [
            {
                "location": {"type": "Point", "coordinates": [at[0] + i * 0.00002, at[1]]},
                "retention_days": retention_days,
            }
            for i in range(cameras)
        ]
        body = {
            "agency": agency.slug,
            "location": {"type": "Point", "coordinates": at},
            "contact": {"email": email},
            "cameras": cams,
            **extra,
        }
        r = registry.post("/v1/registrations", json=body)
        assert r.status_code == 201, r.text
        out = r.json()
        return Owner(out["id"], out["credential"], email, [c["id"] for c in out["properties"]["cameras"]])

    return _new


def request_body(agency: Agency, **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "case_number": f"C-{uuid.uuid4().hex[:8]}",
        "category": "burglary",
        "incident": {"type": "Point", "coordinates": agency.centre},
        "radius_m": 200,
        "window": {"start": iso(now - timedelta(hours=6)), "end": iso(now - timedelta(hours=4))},
        "message": "A burglary on this block. Footage of the street would help.",
    }
    body.update(over)
    return body


@dataclass
class Flow:
    """Drives requests through requests_api as an agency's investigator and supervisor."""

    client: httpx.Client
    auth: Token
    agency: Agency
    investigator: str = "det-1"
    supervisor: str = "sgt-1"

    def inv(self, **extra: Any) -> dict[str, str]:
        return self.auth("investigator", self.agency.slug, sub=self.investigator, **extra)

    def sup(self) -> dict[str, str]:
        return self.auth("supervisor", self.agency.slug, sub=self.supervisor)

    def create(self, **over: Any) -> dict[str, Any]:
        r = self.client.post("/v1/requests", json=request_body(self.agency, **over), headers=self.inv())
        assert r.status_code == 201, r.text
        return r.json()

    def act(
        self, request_id: str, action: str, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        # Any version (`*`): these transitions are guarded by the request's state; If-Match itself is tested apart.
        who = headers or (self.sup() if action in ("approve", "reject") else self.inv())
        return self.client.post(
            f"/v1/requests/{request_id}/transitions",
            json={"action": action, **body},
            headers={"If-Match": "*", **who},
        )

    def sent(self, **over: Any) -> dict[str, Any]:
        """A request created, submitted and approved (approval sends it)."""
        req = self.create(**over)
        assert self.act(req["id"], "submit").status_code == 200
        r = self.act(req["id"], "approve")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "sent"
        return r.json()

    def read(self, request_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/requests/{request_id}", headers=self.inv())
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def flow(requests_client: httpx.Client, auth: Token, new_agency: NewAgency) -> Flow:
    return Flow(requests_client, auth, new_agency())


def patch_registration(
    registry: httpx.Client, owner: Owner, body: dict[str, Any], camera_id: str | None = None
) -> dict[str, Any]:
    """Change an owner's registration (or one of its cameras) as the owner does, with its current ETag."""
    url = f"/v1/registrations/{owner.registration_id}"
    etag = registry.get(url, headers=owner.headers).headers["etag"]
    r = registry.patch(
        url + (f"/cameras/{camera_id}" if camera_id else ""),
        json=body,
        headers={**owner.headers, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def stored_evidence_texts(db: Db, evidence_id: Any) -> dict[str, str | None]:
    """An evidence item's file name, name as sent and description as stored: sealed under the owner's data key
    (services/requests_api/owner_texts.py), opened here with the key from the run's key store."""
    eid = uuid.UUID(str(evidence_id))
    (row,) = db.fetch(
        "SELECT e.filename_enc, e.original_filename_enc, e.description_enc, t.registration_id"
        " FROM requests.evidence e JOIN requests.targets t ON t.id = e.target_id WHERE e.id = $1",
        eid,
    )
    return {
        f: open_owner_text(row["registration_id"], row[f + "_enc"], evidence_context(eid, f))
        for f in ("filename", "original_filename", "description")
    }


@pytest.fixture
def run_job(suite: Suite, app_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`run_job(feed, registry_url=None, page=500)`: one run of the worker's erasure job in this process."""

    def _run(feed: str, registry_url: str | None = None, page: int = worker.FEED_PAGE) -> int:
        monkeypatch.setenv("REGISTRY_API_URL", registry_url or suite.registry.url)
        get_settings.cache_clear()

        async def go() -> int:
            engine = make_engine(app_database_url, get_settings(), "requests_worker_test")
            try:
                return await worker.erase_deleted_owners(session_factory(engine), feed=feed, page=page)
            finally:
                await close_client()
                await close_keystore()  # its pool belongs to this event loop
                await engine.dispose()

        return asyncio.run(go())

    yield _run
    monkeypatch.undo()
    get_settings.cache_clear()
