"""Large answers are gzip-encoded for a client that accepts it (identical once decoded), streamed pages too;
a client that does not accept gzip gets them as they are, and a small answer is never compressed."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import httpx
import orjson
import pytest

from shared.compression import GZIP_MIN_BYTES
from tests.conftest import Token
from tests.geo_query.conftest import AgencyFixture, insert_agency, insert_registration
from tests.support import Db

N = 1_200  # above STREAM_AT (1,000), so a page of all of them is streamed
WEST, SOUTH, SIZE = -91.6, 43.4, 0.1
ITEMS = "/v1/ogc/collections/cameras/items"


@pytest.fixture(scope="module")
def cameras(db: Db) -> AgencyFixture:
    box = [
        [WEST, SOUTH],
        [WEST + SIZE, SOUTH],
        [WEST + SIZE, SOUTH + SIZE],
        [WEST, SOUTH + SIZE],
        [WEST, SOUTH],
    ]
    agency = insert_agency(db, "gz-" + uuid.uuid4().hex[:8], {"type": "MultiPolygon", "coordinates": [[box]]})
    rid, _ = insert_registration(db, agency, WEST + SIZE / 2, SOUTH + SIZE / 2)
    db.execute(
        "INSERT INTO registry.cameras (id, registration_id, geom, retention_days, live_mode, owner_kind, visible_to)"
        " SELECT gen_random_uuid(), $1, ST_SetSRID(ST_MakePoint($2 + random() * $4, $3 + random() * $4), 4326),"
        " 7, 'never', 'residential', ARRAY[$5::uuid] FROM generate_series(1, $6)",
        rid,
        WEST + 0.001,
        SOUTH + 0.001,
        SIZE - 0.002,
        agency.id,
        N,
    )
    return agency


def _raw(geo: httpx.Client, params: dict[str, Any], headers: dict[str, str]) -> tuple[httpx.Headers, bytes]:
    """The answer's headers and its body as it came over the wire (not decoded)."""
    with geo.stream("GET", ITEMS, params=params, headers=headers) as r:
        body = b"".join(r.iter_raw())
    assert r.status_code == 200
    return r.headers, body


def _same_page(a: bytes, b: bytes) -> None:
    pa, pb = orjson.loads(a), orjson.loads(b)
    pa.pop("timeStamp"), pb.pop("timeStamp")  # when each answer was made
    assert pa == pb


@pytest.mark.parametrize("limit", [1000, 5000], ids=["one-body", "streamed"])
def test_a_large_items_page_is_gzipped_for_a_client_that_accepts_it_and_plain_for_one_that_does_not(
    geo: httpx.Client, auth: Token, cameras: AgencyFixture, limit: int
) -> None:
    h = auth("investigator", cameras.slug)
    params = {"limit": limit}
    zipped_headers, zipped = _raw(geo, params, {**h, "Accept-Encoding": "gzip"})
    plain_headers, plain = _raw(geo, params, {**h, "Accept-Encoding": "identity"})
    assert zipped_headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped_headers["vary"].lower()
    assert "content-encoding" not in plain_headers
    assert len(plain) > GZIP_MIN_BYTES
    assert len(zipped) < len(plain) / 3
    decoded = gzip.decompress(zipped)
    _same_page(decoded, plain)
    assert len(orjson.loads(decoded)["features"]) == min(limit, N)


def test_a_small_answer_is_not_compressed(geo: httpx.Client, auth: Token, cameras: AgencyFixture) -> None:
    headers, body = _raw(geo, {"limit": 5}, {**auth("investigator", cameras.slug), "Accept-Encoding": "gzip"})
    assert "content-encoding" not in headers
    assert len(orjson.loads(body)["features"]) == 5
