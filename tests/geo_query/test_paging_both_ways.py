"""Paging forwards and backwards gives the same cameras as one page, at every `limit`, streamed or not, on the REST
bbox search and the OGC items alike: every page ascending by id, its `next` link the page right after it and its
`prev` link the page right before it, none missing where a page exists on that side.

The collection is an agency of its own with 5,500 cameras inserted in one statement (as registry_api would store
them), so pages of 5,000 (streamed) have a page on either side."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Token
from tests.geo_query.conftest import AgencyFixture, insert_agency, insert_registration
from tests.support import Db

N = 5_500
WEST, SOUTH, SIZE = -89.6, 44.4, 0.2
SMALL_BBOX = f"{WEST},{SOUTH},{WEST + SIZE / 2},{SOUTH + SIZE / 2}"  # about a quarter of them, for limit 7


@pytest.fixture(scope="module")
def many(db: Db) -> AgencyFixture:
    box = [
        [WEST, SOUTH],
        [WEST + SIZE, SOUTH],
        [WEST + SIZE, SOUTH + SIZE],
        [WEST, SOUTH + SIZE],
        [WEST, SOUTH],
    ]
    agency = insert_agency(db, "gp-" + uuid.uuid4().hex[:8], {"type": "MultiPolygon", "coordinates": [[box]]})
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
    db.execute("ANALYZE registry.cameras")
    return agency


def _page(geo: httpx.Client, url: str, params: dict[str, Any] | None, h: dict[str, str]) -> dict[str, Any]:
    r = geo.get(url, params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _link(page: dict[str, Any], rel: str) -> str | None:
    hrefs = [link["href"] for link in page["links"] if link["rel"] == rel]
    assert len(hrefs) <= 1
    return hrefs[0] if hrefs else None


def _ids(page: dict[str, Any]) -> list[str]:
    ids = [f["id"] for f in page["features"]]
    assert ids == sorted(ids, key=uuid.UUID), "a page is ascending by id"
    assert page["numberReturned"] == len(ids)
    return ids


ROUTES = {
    "rest": ("/v1/cameras/bbox", lambda bbox: {"bbox": bbox}),
    "ogc": ("/v1/ogc/collections/cameras/items", lambda bbox: {"bbox": bbox}),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("limit", [7, 1000, 1001, 5000])
def test_walking_forwards_and_backwards_gives_the_cameras_of_one_page(
    geo: httpx.Client, auth: Token, many: AgencyFixture, route: str, limit: int
) -> None:
    h = auth("investigator", many.slug)
    path, params = ROUTES[route]
    bbox = SMALL_BBOX if limit == 7 else f"{WEST},{SOUTH},{WEST + SIZE},{SOUTH + SIZE}"
    everything = _ids(_page(geo, path, {**params(bbox), "limit": 10_000}, h))
    if limit == 7:
        assert 3 * limit < len(everything) < N
    else:
        assert len(everything) == N
    position = {cid: i for i, cid in enumerate(everything)}

    # Forwards from the first page to the last, by `next` links.
    page = _page(geo, path, {**params(bbox), "limit": limit}, h)
    assert _link(page, "prev") is None
    forwards: list[list[str]] = [_ids(page)]
    while (nxt := _link(page, "next")) is not None:
        page = _page(geo, nxt, None, h)
        ids = _ids(page)
        assert ids, "a next link leads to a page with cameras"
        assert position[ids[0]] == position[forwards[-1][-1]] + 1, "next is the page right after"
        assert _link(page, "prev") is not None, "a page after the first has a prev link"
        forwards.append(ids)
    assert [cid for ids in forwards for cid in ids] == everything
    assert all(len(ids) == limit for ids in forwards[:-1])

    # Backwards from the last page to the first, by `prev` links; each page's `next` is the page after it.
    backwards: list[list[str]] = [forwards[-1]]
    while (prev := _link(page, "prev")) is not None:
        page = _page(geo, prev, None, h)
        ids = _ids(page)
        assert ids, "a prev link leads to a page with cameras"
        assert len(ids) == limit or _link(page, "prev") is None, "only the first page may be short"
        assert position[ids[-1]] == position[backwards[-1][0]] - 1, "prev is the page right before"
        nxt = _link(page, "next")
        assert nxt is not None, "a page before another has a next link"
        after = _ids(_page(geo, nxt, None, h))
        assert after[0] == backwards[-1][0] and len(after) == min(limit, len(everything) - position[after[0]])
        backwards.append(ids)
    assert [cid for ids in reversed(backwards) for cid in ids] == everything
    assert position[backwards[-1][0]] == 0
