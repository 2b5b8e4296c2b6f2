"""Fixtures for the import tests: an integrator's agency, uploads built in memory, and jobs followed to the end."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from email.message import Message
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Token
from tests.registry.conftest import Agency, new_agency  # noqa: F401 - the fixture, shared with the registry tests
from tests.support import Mailbox

GEOJSON = "application/geo+json"
SEQ = "application/geo+json-seq"
CSV = "text/csv"


def feature(lon: float, lat: float, external_id: str, **props: Any) -> dict[str, Any]:
    """A feature with a contact email of its own, unless contact_email=None (then give a phone)."""
    props.setdefault("contact_email", f"{external_id}@example.org")
    if props["contact_email"] is None:
        del props["contact_email"]
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"external_id": external_id, **props},
    }


def collection(features: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def sequence(features: list[dict[str, Any]]) -> bytes:
    return b"".join(b"\x1e" + orjson.dumps(f) + b"\n" for f in features)


def spread(agency: Agency, n: int, prefix: str | None = None, **props: Any) -> list[dict[str, Any]]:
    """n features inside the agency's box, each its own registration."""
    prefix = prefix or uuid.uuid4().hex[:8]
    out = []
    for i in range(n):
        dx = (i % 100) / 100 * 0.08 - 0.04
        dy = (i // 100 % 100) / 100 * 0.08 - 0.04
        lon, lat = agency.inside(dx, dy)
        out.append(feature(lon, lat, f"{prefix}-{i}", **props))
    return out


Importer = Callable[..., dict[str, Any]]


def wait_job(
    client: httpx.Client, job: dict[str, Any], headers: dict[str, str], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"job did not finish: {job}"
        time.sleep(0.1)
        r = client.get(f"/v1/imports/{job['id']}", headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
    return job


@pytest.fixture
def run_import(registry: httpx.Client, auth: Token) -> Importer:
    """Submit an upload as the agency's integrator and follow the job to its end."""

    def _run(
        agency: Agency,
        body: bytes,
        content_type: str = GEOJSON,
        *,
        headers: dict[str, str] | None = None,
        expect: int = 202,
        **params: Any,
    ) -> dict[str, Any]:
        h = auth("integrator", agency.slug, sub="integrator-1")
        r = registry.post(
            "/v1/imports",
            content=body,
            params={k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()},
            headers={**h, "Content-Type": content_type, **(headers or {})},
        )
        assert r.status_code == expect, r.text
        if expect != 202:
            return r.json()
        assert r.headers["location"] == f"/v1/imports/{r.json()['id']}"
        return wait_job(registry, r.json(), h)

    return _run


def report(registry: httpx.Client, auth: Token, agency: Agency, job: dict[str, Any]) -> dict[str, Any]:
    r = registry.get(f"/v1/imports/{job['id']}/report", headers=auth("integrator", agency.slug))
    assert r.status_code == 200, r.text
    return r.json()


def feature_at(position: list[float], external_id: str, **props: Any) -> dict[str, Any]:
    return feature(position[0], position[1], external_id, **props)


# Owners without an email: the only ones whose credential the report carries (the others are mailed theirs).
NO_EMAIL: dict[str, Any] = {"contact_email": None, "contact_phone": "(414) 555-0123"}
CREDENTIAL = re.compile(r"cvo_[0-9a-f]{32}_[A-Za-z0-9_-]+")


def mailed_credential(mailbox: Mailbox, address: str) -> str:
    """The management credential mailed to an imported owner."""
    mail = mailbox.wait_for(address, lambda m: CREDENTIAL.search(_body(m)) is not None)
    found = CREDENTIAL.search(_body(mail))
    assert found is not None
    return found.group(0)


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(message.get_payload())
