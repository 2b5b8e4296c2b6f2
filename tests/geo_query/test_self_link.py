"""An answer's `self` link is read from the request's scope (not from a URL built and split per request): it must
be the link Starlette's `request.url` gives, on the configured public base URL, for every path and query string a
client can send, and every answer's `timeStamp` is the current second."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi import Request

from services.geo_query import service
from services.geo_query.features import self_url
from services.geo_query.service import now_rfc3339
from shared.settings import get_settings


def _request(path: str, query: bytes) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": [(b"host", b"forged.example:8000")],
        }
    )


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/cameras/nearest", b"lon=-73.9&lat=40.7&k=20"),
        ("/v1/cameras/bbox", b""),
        ("/v1/cameras/bbox", b"bbox=-74.05%2C40.67%2C-73.90%2C40.81&cursor=abc%3D%3D&limit=5"),
        ("/collections/cameras/items", b"a=1?b=2&c=%23"),
        ("/collections/a?b#c\\d/items", b"f=json"),
        ("/collections/caf\u00e9/items", "q=caf\u00e9 x".encode()),
        ("/collections/x/items", b"a=1#fragment"),
        ("/collections/x/items", b"a=1\tb=2"),
        ("/collections/x\n/items", b"a=1\r\n"),
        ("//collections/x/items", b"a=1"),
    ],
)
def test_the_self_link_is_the_one_starlettes_request_url_gives(path: str, query: bytes) -> None:
    request = _request(path, query)
    url = _request(path, query).url
    expected = get_settings().public_base + url.path + (f"?{url.query}" if url.query else "")
    assert self_url(request) == expected


def test_the_time_stamp_is_the_current_second_in_rfc3339(monkeypatch: pytest.MonkeyPatch) -> None:
    """Formatted once a second: the same text within a second, the next second's as soon as it begins."""
    before = int(time.time())
    stamp = now_rfc3339()
    after = int(time.time())
    at = int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    assert before <= at <= after
    clock = iter([1_800_000_000.1, 1_800_000_000.9, 1_800_000_001.0, 1_799_999_999.5])
    monkeypatch.setattr(service.time, "time", lambda: next(clock))
    assert [now_rfc3339() for _ in range(4)] == [
        "2027-01-15T08:00:00Z",
        "2027-01-15T08:00:00Z",
        "2027-01-15T08:00:01Z",
        "2027-01-15T07:59:59Z",
    ]
