"""Cursors are opaque: whatever a client makes of them, a forged one is a 400 problem, never a 500."""

from __future__ import annotations

import base64
import uuid

import httpx
import orjson
import pytest

from tests.conftest import Token


def forge(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


FORGED = [
    forge({"id": 3, "at": 5, "slug": 7, "d": "x"}),
    forge({"id": "a\x00b", "at": "2026-01-01T00:00:00+00:00", "slug": "a\x00b", "d": 1.0}),
    forge({"id": ["x"], "at": {"y": 1}, "slug": None, "d": True}),
    forge({"id": "x" * 5000, "at": "x", "slug": "x" * 5000, "d": 1e308}),
    forge([1, 2, 3]),
    "%%%not-base64",
]
# Cursors every listing would take (each finds the keys it reads, valid), made malformed by what lenient base64
# skips or tolerates: trailing NULs, padding, other characters. Refused, so they never reach an audit record.
# One of each length modulo 4, since what lenient decoding lets through depends on it.
GOOD = [
    forge({"id": str(uuid.uuid4()), "at": "2026-01-01T00:00:00+00:00", "slug": "a" * n, "d": 1.0})
    for n in range(1, 5)
]
MALFORMED = [g + tail for g in GOOD for tail in ("%00%00", "%00", "==", "%20", "%0A")] + [
    GOOD[0][:8] + "." + GOOD[0][8:]
]


@pytest.fixture(scope="module")
def agency(registry: httpx.Client, auth: Token) -> str:
    slug = "pg-" + uuid.uuid4().hex[:8]
    ring = [[-88.0, 42.9], [-87.8, 42.9], [-87.8, 43.1], [-88.0, 43.1], [-88.0, 42.9]]
    r = registry.post(
        "/v1/agencies",
        json={"slug": slug, "name": "Paging PD", "jurisdiction": {"type": "Polygon", "coordinates": [ring]}},
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text
    return slug


@pytest.mark.parametrize("cursor", FORGED + MALFORMED)
def test_forged_cursors_are_400_problems_everywhere(
    cursor: str,
    registry: httpx.Client,
    geo: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    agency: str,
) -> None:
    calls = [
        (registry, "/v1/agencies", {}),
        (registry, f"/v1/agencies/{agency}/reconfirmations-due", auth("agency_admin", agency)),
        (geo, "/v1/cameras/radius?lon=-87.9&lat=43.0&radius_m=100", auth("investigator", agency)),
        (geo, "/v1/cameras/bbox?bbox=-88,42.9,-87.8,43.1", auth("investigator", agency)),
        (requests_client, "/v1/requests", auth("investigator", agency)),
    ]
    for client, path, headers in calls:
        sep = "&" if "?" in path else "?"
        r = client.get(f"{path}{sep}cursor={cursor}", headers=headers)
        assert r.status_code in (400, 422), (path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json", (path, r.text)


@pytest.mark.parametrize(
    ("at", "status"),
    [
        ("0001-01-01T00:00:00+14:00", 400),
        ("0001-01-01T00:00:00+01:00", 400),
        ("9999-12-31T23:59:59-12:00", 400),
        ("0001-01-01T00:00:00+00:00", 400),  # the database driver's -infinity
        ("2026-01-01T00:00:00", 400),
        ("0001-01-01T00:00:01+00:00", 200),
        ("9999-12-31T23:59:59+00:00", 200),
    ],
)
def test_an_instant_in_a_cursor_is_read_across_the_calendar_or_refused_with_a_400(
    at: str,
    status: int,
    registry: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    agency: str,
) -> None:
    cursor = forge({"at": at, "id": str(uuid.uuid4())})
    calls = [
        (registry, f"/v1/agencies/{agency}/reconfirmations-due", auth("agency_admin", agency)),
        (requests_client, "/v1/requests", auth("investigator", agency)),
    ]
    for client, path, headers in calls:
        r = client.get(path, params={"cursor": cursor}, headers=headers)
        assert r.status_code == status, (path, r.text)
        if status == 400:
            assert r.headers["content-type"] == "application/problem+json", (path, r.text)
